/**
 * The batch pipeline's engines as plain function calls, the way the runner chains them: audio-prepare →
 * pocketsphinx transcribe → merge, on espeak-ng speech (wav and mp3), a LibriVox recording and a stereo file
 * split per channel. Asserts the transcript holds the spoken words (WER bound) and word times lie inside the audio.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import type { Recognizer } from '../asr/recognizer.js';
import { PocketsphinxRecognizer } from '../asr/pocketsphinx/index.js';
import { AudioPrepareEngine, type PrepareOutput } from '../audio-prepare/index.js';
import { MergeEngine, type TranscriptDocument } from '../merge/index.js';
import { ModelError } from '../models/index.js';
import type { Engine, EngineResult, EngineTaskConfig } from '../sdk/engine.js';
import { readWav, writeWav } from '../audio/index.js';
import { librivoxClips, stereoFile, synthesizeSpeech, wordErrors } from '../../test/fixtures/speech.js';
import { childProcesses, waitForChild } from '../../test/support/child-processes.js';
import { TranscribeEngine, type TranscribeOutput } from './transcribe-engine.js';

const ENGINE_ID = 'stt-batch-transcribe-pocketsphinx-en-us';
const SENTENCE = 'many people visit the old castle on the hill every summer';
const SENTENCE_2 = 'the weather today is cold and windy with a chance of rain in the evening';
/**
 * pocketsphinx's 2015 acoustic model hardly understands espeak-ng's default voice (80-100 % WER measured here on
 * these sentences); the Klatt voice variant comes out far better, so these tests speak with en-us+klatt.
 * Bounds are measured WER with head-room: pocketsphinx is a plumbing baseline, not a product.
 */
const VOICE = 'en-us+klatt';
const ESPEAK_WER_BOUND = 0.45;
const LIBRIVOX_WER_BOUND = 0.45;

let root: string;
let taskSeq = 0;
const modelLoads: string[] = [];

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'dalston-pipeline-test-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

interface TaskOutcome {
  readonly result: EngineResult;
  /** Where the runner would have put this task's output.json data. */
  readonly outputPath: string;
}

/** Runs one engine task like the runner does: a fresh work dir, named inputs, output data written as JSON. */
async function runTask(engine: Engine, stage: string, inputs: Record<string, string>, config: EngineTaskConfig = {}, signal?: AbortSignal): Promise<TaskOutcome> {
  const workDir = join(root, `task-${++taskSeq}`);
  await mkdir(workDir);
  const result = await engine.process({
    jobId: 'job-test', taskId: `${stage}-${taskSeq}`, stage, attempt: 1, config, inputs, workDir,
    signal: signal ?? new AbortController().signal, log: silentLogger,
    measureModelLoad: async (model, load) => {
      modelLoads.push(model);
      return load();
    },
  });
  const outputPath = join(workDir, 'output.json');
  await writeFile(outputPath, JSON.stringify(result.data));
  return { result, outputPath };
}

const prepareEngine = new AudioPrepareEngine();
const transcribeEngine = new TranscribeEngine({ engineId: ENGINE_ID, recognizer: new PocketsphinxRecognizer() });
const mergeEngine = new MergeEngine();

/** prepare → transcribe → merge on one upload; returns the transcript document. */
async function pipeline(upload: string): Promise<{ doc: TranscriptDocument; prepared: PrepareOutput }> {
  const prepare = await runTask(prepareEngine, 'prepare', { audio: upload });
  const wav = prepare.result.blobs?.['audio.wav'];
  assert.ok(wav, 'prepare wrote audio.wav');
  const transcribe = await runTask(transcribeEngine, 'transcribe', { audio: wav, prepare: prepare.outputPath }, { language: 'en' });
  assert.equal(transcribe.result.model, 'pocketsphinx-en-us');
  const merge = await runTask(mergeEngine, 'merge', { prepare: prepare.outputPath, transcribe: transcribe.outputPath });
  return { doc: merge.result.data as TranscriptDocument, prepared: prepare.result.data as PrepareOutput };
}

function assertTimesInside(doc: TranscriptDocument): void {
  assert.ok(doc.words.length > 0, 'words with times');
  for (const w of doc.words) {
    assert.ok(w.start >= 0 && w.end >= w.start && w.end <= doc.audio_duration_seconds + 1e-6, `word ${JSON.stringify(w)} inside ${doc.audio_duration_seconds} s`);
  }
  for (const s of doc.segments) assert.ok(s.start >= 0 && s.end <= doc.audio_duration_seconds + 1e-6 && s.start <= s.end);
}

function report(t: TestContext, what: string, reference: string, hypothesis: string): number {
  const wer = wordErrors(reference, hypothesis);
  t.diagnostic(`${what}: WER ${(wer.wer * 100).toFixed(1)} % (${wer.errors}/${wer.refWords}); hypothesis "${hypothesis}"`);
  return wer.wer;
}

for (const format of ['wav', 'mp3'] as const) {
  void test(`espeak-ng sentence as ${format}: the transcript holds the spoken words`, async (t) => {
    const dir = join(root, `espeak-${format}`);
    await mkdir(dir);
    const upload = await synthesizeSpeech(SENTENCE, { format, dir, voice: VOICE });
    const { doc, prepared } = await pipeline(upload);
    assert.equal(doc.audio_duration_seconds, prepared.duration_seconds);
    assert.equal(doc.language, 'en');
    assert.deepEqual(doc.metadata.pipeline_stages, ['prepare', 'transcribe', 'merge']);
    assertTimesInside(doc);
    assert.ok(report(t, `espeak ${format}`, SENTENCE, doc.text) <= ESPEAK_WER_BOUND);
    for (const word of ['people', 'castle', 'summer']) assert.match(doc.text, new RegExp(`\\b${word}\\b`));
  });
}

void test('LibriVox recordings: the transcript holds the read words', async (t) => {
  const clips = await librivoxClips();
  assert.equal(clips.length, 5);
  // 0870 is the longest clip (23 words): one real, unprepared recording through the whole pipeline.
  const clip = clips.find((c) => c.id.endsWith('0870'));
  assert.ok(clip);
  const { doc } = await pipeline(clip.path);
  assertTimesInside(doc);
  assert.ok(report(t, `LibriVox ${clip.id}`, clip.text, doc.text) <= LIBRIVOX_WER_BOUND);
});

void test('the model is loaded once, lazily, inside a measured model load', () => {
  assert.deepEqual(modelLoads, ['pocketsphinx-en-us']);
});

void test('per-channel job: each channel is transcribed on its own and merged with channel labels', async (t) => {
  const dir = join(root, 'stereo');
  await mkdir(dir);
  const left = await synthesizeSpeech(SENTENCE, { format: 'wav', dir, name: 'left', voice: VOICE });
  const right = await synthesizeSpeech(SENTENCE_2, { format: 'wav', dir, name: 'right', voice: VOICE });
  const upload = await stereoFile(left, right, join(dir, 'call.wav'));
  const prepare = await runTask(prepareEngine, 'prepare', { audio: upload }, { perChannel: true });
  const transcripts: Record<string, string> = {};
  for (const ch of [0, 1]) {
    const wav = prepare.result.blobs?.[`audio_ch${ch}.wav`];
    assert.ok(wav);
    const out = await runTask(transcribeEngine, `transcribe_ch${ch}`, { audio: wav }, { channel: ch });
    assert.equal((out.result.data as TranscribeOutput).channel, ch);
    transcripts[`transcribe_ch${ch}`] = out.outputPath;
  }
  const merge = await runTask(mergeEngine, 'merge', { prepare: prepare.outputPath, ...transcripts });
  const doc = merge.result.data as TranscriptDocument;
  assert.equal(doc.metadata.channels, 2);
  const byChannel = (ch: number): string => doc.segments.filter((s) => s.channel === ch).map((s) => s.text).join(' ');
  assert.ok(report(t, 'left channel', SENTENCE, byChannel(0)) <= ESPEAK_WER_BOUND);
  assert.ok(report(t, 'right channel', SENTENCE_2, byChannel(1)) <= 0.6);
  // Each channel holds only its own speaker's words.
  assert.match(byChannel(0), /\bcastle\b/);
  assert.doesNotMatch(byChannel(0), /\b(weather|rain|chance)\b/);
  assert.match(byChannel(1), /\b(weather|rain|chance)\b/);
  assert.doesNotMatch(byChannel(1), /\bcastle\b/);
});

void test('transcribe decodes audio that was not prepared (an mp3 given as audio)', async () => {
  const dir = join(root, 'raw');
  await mkdir(dir);
  const upload = await synthesizeSpeech(SENTENCE, { format: 'mp3', dir, voice: VOICE });
  const out = await runTask(transcribeEngine, 'transcribe', { audio: upload });
  const data = out.result.data as TranscribeOutput;
  assert.ok(wordErrors(SENTENCE, data.text).wer <= ESPEAK_WER_BOUND, data.text);
});

void test('a transcribe task cancelled while pocketsphinx runs stops with CancelledError and leaves no process', async () => {
  const clip = (await librivoxClips())[0];
  assert.ok(clip);
  // The clip eight times over (about 24 s): recognition takes seconds, the cancel comes once the process is seen.
  const { samples } = await readWav(clip.path);
  const long = new Float32Array(samples.length * 8);
  for (let i = 0; i < 8; i++) long.set(samples, i * samples.length);
  const upload = join(root, 'long.wav');
  await writeWav(upload, long, 16000);
  const ac = new AbortController();
  const outcome = runTask(transcribeEngine, 'transcribe', { audio: upload }, {}, ac.signal).then(() => 'finished', (err: unknown) => err);
  const pid = await waitForChild('pocketsphinx_co');
  // Frozen, pocketsphinx can only end by being killed: an abort that did not kill it would never settle (a
  // generous deadline turns that into a failure), and one that did must have.
  process.kill(pid, 'SIGSTOP');
  try {
    ac.abort(new Error('cancel'));
    const err = await Promise.race([outcome, sleep(60_000, 'not settled 60 s after the abort', { ref: false })]);
    assert.ok(err instanceof CancelledError, `expected CancelledError, got ${String(err)}`);
    assert.ok(!childProcesses('pocketsphinx_co').includes(pid), `pocketsphinx ${pid} is gone`);
  } finally {
    if (childProcesses('pocketsphinx_co').includes(pid)) process.kill(pid, 'SIGKILL');
  }
});

void test('a recogniser that cannot load fails the task, not retryable, instead of returning empty text', async () => {
  const missing = new TranscribeEngine({ engineId: ENGINE_ID, recognizer: new PocketsphinxRecognizer({ modelDir: join(root, 'no-model') }) });
  const clip = (await librivoxClips())[0];
  assert.ok(clip);
  await assert.rejects(runTask(missing, 'transcribe', { audio: clip.path }), (err: unknown) => err instanceof ModelError && !err.retryable && err.message.includes('no-model'));

  // Any load error, even one its recogniser calls retryable, becomes a non-retryable ModelError.
  const flaky: Recognizer = {
    modelId: 'flaky-model', loaded: false,
    load: () => Promise.reject(new Error('weights are garbage')),
    recognize: () => Promise.resolve({ language: 'en', text: '', segments: [] }),
    close: () => Promise.resolve(),
  };
  const engine = new TranscribeEngine({ engineId: 'stt-batch-transcribe-flaky', recognizer: flaky });
  await assert.rejects(runTask(engine, 'transcribe', { audio: clip.path }), (err: unknown) =>
    err instanceof ModelError && !err.retryable && err.modelId === 'flaky-model' && /weights are garbage/.test(err.message));
});
