import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { REPO_ROOT } from '../core/config.js';
import { HttpError } from './errors.js';
import { ModelInventory, checkedAliases } from './models.js';
import { UnknownModelError, parseSubmitFields } from './transcriptions.js';

test('a job may name a catalogue model; an unknown model is a 400, never a silent fallback', () => {
  assert.equal(parseSubmitFields([['model', 'moonshine-tiny']]).params.model, 'moonshine-tiny');
  assert.equal(parseSubmitFields([['model', 'auto']]).params.model, 'auto');
  assert.throws(() => parseSubmitFields([['model', 'whisper-huge-v9']]), (e: unknown) => e instanceof HttpError && e.status === 400 && /GET \/v1\/models/.test(e.message));
});

test('GET /v1/models lists the recognisers with installed flags (set-up installed them before the suite)', async () => {
  const models = await new ModelInventory(process.env['DALSTON_HOME'] ?? join(REPO_ROOT, '.dalston')).list();
  const byId = new Map(models.map((m) => [m.id, m]));
  assert.equal(byId.get('pocketsphinx-en-us')?.engine_id, 'stt-batch-transcribe-pocketsphinx-en-us');
  assert.equal(byId.get('moonshine-tiny')?.engine_id, 'stt-batch-transcribe-onnx-moonshine-tiny');
  assert.equal(byId.get('pocketsphinx-en-us')?.installed, true);
  assert.equal(byId.get('moonshine-tiny')?.installed, true);
  assert.ok(models.every((m) => m.languages.length > 0));
});

test('OpenAI names follow the alias table: auto leaves the model to the default, a target names it; targets are checked at start-up', () => {
  const aliases = new Map([['whisper-1', 'auto'], ['fast', 'moonshine-tiny']]);
  assert.deepEqual(parseSubmitFields([['model', 'whisper-1']], aliases).params, { api: 'openai' });
  const fast = parseSubmitFields([['model', 'fast']], aliases);
  assert.equal(fast.openAiMode, true);
  assert.deepEqual(fast.params, { api: 'openai', model: 'moonshine-tiny' });
  assert.throws(() => parseSubmitFields([['model', 'gpt-4o-transcribe']], aliases), (e: unknown) => e instanceof UnknownModelError && e.status === 400 && /whisper-1, fast/.test(e.message));
  assert.equal(checkedAliases(aliases), aliases);
  assert.throws(() => checkedAliases(new Map([['whisper-1', 'whisper-giant']])), /maps "whisper-1" to "whisper-giant", which is not a model id/);
  assert.throws(() => checkedAliases(new Map([['moonshine-tiny', 'auto']])), /already a model id/);
});
