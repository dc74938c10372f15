import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../core/config.js';
import { CATALOGUE } from '../engines/models/catalogue.js';
import { knownEngineIds } from '../engines/engine-registry.js';
import { engineIds, serviceSpecs } from './up.js';

test('DALSTON_ENGINES=auto (the default) starts audio-prepare, the VAD when installed, one transcribe engine per installed recogniser, and merge', () => {
  const auto = loadConfig({});
  assert.equal(auto.engines, 'auto');
  // The default install: every recogniser but the optional multilingual Whisper, and the VAD.
  assert.deepEqual(engineIds(auto, ['silero-vad-v5', 'moonshine-tiny', 'whisper-tiny.en', 'pocketsphinx-en-us']), [
    'audio-prepare', 'silero-vad-v5',
    'stt-batch-transcribe-onnx-moonshine-tiny', 'stt-batch-transcribe-onnx-whisper-tiny.en', 'stt-batch-transcribe-pocketsphinx-en-us',
    'merge',
  ]);
  // Only what is installed, in catalogue order whatever the order set-up reports; ids that are no model are ignored.
  assert.deepEqual(engineIds(auto, ['pocketsphinx-en-us', 'whisper-base', 'not-a-model']), [
    'audio-prepare', 'stt-batch-transcribe-onnx-whisper-base', 'stt-batch-transcribe-pocketsphinx-en-us', 'merge',
  ]);
  assert.deepEqual(engineIds(auto, []), ['audio-prepare', 'merge'], 'nothing installed: no transcribe engine (up then refuses DALSTON_TRANSCRIBE_ENGINE)');
  // Everything installed: every engine this build has, each once.
  const all = engineIds(auto, CATALOGUE.map((m) => m.id));
  assert.deepEqual([...all].sort(), [...knownEngineIds()].sort());
  assert.equal(new Set(all).size, all.length);
  assert.ok(all.includes(auto.transcribeEngine), 'the default transcribe engine is among them');
});

test('an explicit DALSTON_ENGINES list is started as given, whatever is installed; each engine gets the next port', () => {
  const config = loadConfig({ DALSTON_ENGINES: ' audio-prepare, stt-batch-transcribe-pocketsphinx-en-us ,,merge', DALSTON_ENGINE_PORT: '9100' });
  const ids = engineIds(config, CATALOGUE.map((m) => m.id));
  assert.deepEqual(ids, ['audio-prepare', 'stt-batch-transcribe-pocketsphinx-en-us', 'merge']);
  assert.deepEqual(engineIds(loadConfig({ DALSTON_ENGINES: ' auto ' }), []), ['audio-prepare', 'merge'], '`auto` with spaces is still auto');
  const engines = serviceSpecs(config, ids).filter((s) => s.kind === 'engine');
  assert.deepEqual(engines.map((s) => [s.name, s.engineId, s.port]), [
    ['engine-audio-prepare', 'audio-prepare', 9100],
    ['engine-stt-batch-transcribe-pocketsphinx-en-us', 'stt-batch-transcribe-pocketsphinx-en-us', 9101],
    ['engine-merge', 'merge', 9102],
  ]);
});
