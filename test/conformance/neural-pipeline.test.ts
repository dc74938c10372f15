/**
 * The batch pipeline's engine chain with each neural recogniser, built the way the engine process builds it
 * (engine registry by engine id): audio-prepare → transcribe → merge, as plain calls like the runner makes.
 * Checks that segments and word times fall inside the speech Silero VAD finds in the prepared audio, that
 * the model loads once inside the runner's measured load, and that an engine whose model is missing refuses
 * to start (one ModelError naming model and file).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { createEngine } from '../../engines/engine-registry.js';
import { AudioPrepareEngine } from '../../engines/audio-prepare/index.js';
import { MergeEngine, type TranscriptDocument } from '../../engines/merge/index.js';
import { CATALOGUE, batchEngineId, findModel } from '../../engines/models/catalogue.js';
import { ModelError } from '../../engines/models/model-error.js';
import type { Engine, EngineResult, EngineTaskConfig } from '../../engines/sdk/engine.js';
import { SileroVad } from '../../engines/vad/silero-vad.js';
import { wordErrors } from '../../engines/asr/wer.js';
import { availableRecognizerIds } from '../../engines/asr/recognizers.js';
import { synthesizeFile, TESTDATA } from '../../harness/speech-fixtures.js';
import { readWav } from '../../harness/wav.js';

const run = promisify(execFile);
const homeDir = loadConfig().homeDir;
const SENTENCE = 'the committee will meet again next week to discuss the budget';
const installed = new Set(await availableRecognizerIds(homeDir));
/** Neural models set-up installs by default (missing = failure) and optional ones installed here. */
const neural = CATALOGUE.filter((m) => m.task === 'asr' && m.backend === 'onnx' && (m.installByDefault !== false || installed.has(m.id)));

let root: string;
let seq = 0;
let vad: SileroVad;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'dalston-neural-pipeline-'));
  vad = await SileroVad.load(homeDir);
});
after(async () => {
  await vad.close();
  await rm(root, { recursive: true, force: true });
});

async function runTask(engine: Engine, stage: string, inputs: Record<string, string>, loads: string[], config: EngineTaskConfig = {}): Promise<{ result: EngineResult; outputPath: string }> {
  const workDir = join(root, `task-${++seq}`);
  await mkdir(workDir);
  const result = await engine.process({
    jobId: 'job-neural', taskId: `${stage}-${seq}`, stage, attempt: 1, config, inputs, workDir,
    signal: new AbortController().signal, log: silentLogger,
    measureModelLoad: async (model, load) => {
      loads.push(model);
      return load();
    },
  });
  const outputPath = join(workDir, 'output.json');
  await writeFile(outputPath, JSON.stringify(result.data));
  return { result, outputPath };
}

for (const model of neural) {
  void describe(`pipeline with ${model.id}`, () => {
    const loads: string[] = [];
    let transcribe: Engine;
    const prepare = new AudioPrepareEngine();
    const merge = new MergeEngine();
    before(async () => {
      transcribe = await createEngine(batchEngineId(model), { homeDir, log: silentLogger });
    });
    after(async () => {
      await transcribe.close?.();
    });

    async function pipeline(upload: string): Promise<{ doc: TranscriptDocument; wav: string }> {
      const p = await runTask(prepare, 'prepare', { audio: upload }, loads);
      const wav = p.result.blobs?.['audio.wav'];
      assert.ok(wav);
      const t = await runTask(transcribe, 'transcribe', { audio: wav, prepare: p.outputPath }, loads, { language: 'en' });
      assert.equal(t.result.model, model.id);
      const m = await runTask(merge, 'merge', { prepare: p.outputPath, transcribe: t.outputPath }, loads);
      return { doc: m.result.data as TranscriptDocument, wav };
    }

    void test('an mp3 of speech between silences: segments and word times inside the Silero speech', async (t) => {
      const wav = await synthesizeFile(SENTENCE, { padBefore: 2, padAfter: 3 });
      const mp3 = join(root, `upload-${model.id}.mp3`);
      await run('ffmpeg', ['-y', '-loglevel', 'error', '-i', wav, mp3]);
      const { doc, wav: prepared } = await pipeline(mp3);
      const speech = await vad.detectSpeech((await readWav(prepared)).samples, { speechPadMs: 0 });
      assert.equal(speech.length, 1, JSON.stringify(speech));
      const r = speech[0];
      assert.ok(r);
      assert.ok(doc.words.length >= 8, `words: ${doc.words.length}`);
      // 0.3 s: VAD padding of the chunking plus Whisper's 20 ms alignment frames and mp3 codec delay.
      for (const w of [...doc.words, ...doc.segments]) assert.ok(w.start >= r.start - 0.3 && w.end <= r.end + 0.3, `${JSON.stringify(w)} outside speech [${r.start}, ${r.end}]`);
      const wer = wordErrors(SENTENCE, doc.text);
      t.diagnostic(`${model.id} mp3 sentence WER ${(wer.wer * 100).toFixed(1)} % (${wer.errors}/${wer.refWords}): ${doc.text}`);
      assert.ok(wer.wer <= 0.2, doc.text);
    });

    void test('a LibriVox recording: the transcript holds the read words, times ordered inside the audio', async (t) => {
      const { doc } = await pipeline(join(TESTDATA, 'librivox', 'sense_and_sensibility_01_austen_64kb-0870.wav'));
      const ref = 'and mister john dashwood had then leisure to consider how much there might be prudently in his power to do for them';
      const wer = wordErrors(ref, doc.text);
      t.diagnostic(`${model.id} LibriVox 0870 WER ${(wer.wer * 100).toFixed(1)} % (${wer.errors}/${wer.refWords}): ${doc.text}`);
      assert.ok(wer.wer <= 0.1, doc.text);
      let prev = 0;
      for (const w of doc.words) {
        assert.ok(w.start >= prev - 0.05 && w.end >= w.start && w.end <= doc.audio_duration_seconds + 1e-6, JSON.stringify(w));
        prev = w.start;
      }
    });

    void test('the model is loaded once, inside the measured load', () => {
      assert.deepEqual(loads, [model.id]);
    });
  });
}

void test('an engine whose model file is missing refuses to start, naming model and file', async () => {
  const scratch = await mkdtemp(join(tmpdir(), 'dalston-nomodel-'));
  try {
    for (const model of neural) {
      await assert.rejects(createEngine(batchEngineId(model), { homeDir: scratch, log: silentLogger }), (err: unknown) =>
        err instanceof ModelError && err.modelId === model.id && err.file === findModel(model.id)?.files[0]?.name && !err.retryable);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
});
