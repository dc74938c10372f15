/**
 * Parts of a long file: each part transcribes only its span, the spans tile the file exactly (a boundary moved into
 * the same pause by both neighbours), and word and progress times come out on the file's clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../core/logger.js';
import { seededRandom } from '../../core/seeded-random.js';
import type { RecognitionRequest, RecognitionResult, Recognizer } from '../asr/recognizer.js';
import { writeWav } from '../audio/wav.js';
import type { EngineTaskConfig } from '../sdk/engine.js';
import { TranscribeEngine, type TranscribeOutput } from './transcribe-engine.js';

const RATE = 16000;

/** A recogniser that hears one word half a second into whatever it is given, and remembers how much it was given. */
function fakeRecognizer(): Recognizer & { readonly heard: number[] } {
  const heard: number[] = [];
  return {
    modelId: 'fake', loaded: true, heard,
    async load() {},
    async close() {},
    async recognize(req: RecognitionRequest): Promise<RecognitionResult> {
      heard.push(req.audio.length);
      const segment = { start: 0.5, end: 1, text: 'word', words: [{ text: 'word', start: 0.5, end: 1 }] };
      req.onWindow?.([segment]);
      return { language: 'en', text: 'word', segments: [segment] };
    },
  };
}

test('two parts of a 40 s file meet in its pause, read every sample once, and report times on the file\'s clock', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dalston-parts-'));
  try {
    // Noise (speech stand-in) with a pause at 18.1–18.6 s, near the nominal boundary at 20 s.
    const random = seededRandom(3);
    const audio = new Float32Array(40 * RATE).map((_, i) => (i >= 18.1 * RATE && i < 18.6 * RATE ? 0 : (random() * 2 - 1) * 0.2));
    const path = join(dir, 'audio.wav');
    await writeWav(path, audio, RATE);
    const recognizer = fakeRecognizer();
    const engine = new TranscribeEngine({ engineId: 'stt-fake', recognizer });
    const progress: number[] = [];
    const run = async (config: EngineTaskConfig) => (await engine.process({
      jobId: 'job_1', taskId: 't', stage: 'transcribe', attempt: 1, config, inputs: { audio: path }, workDir: dir,
      signal: new AbortController().signal, log: silentLogger, measureModelLoad: (_m, load) => load(),
      progress: (segments) => progress.push(...segments.map((s) => s.start)),
    })).data as TranscribeOutput;

    const first = await run({ chunkStart: 0, chunkEnd: 20 });
    const second = await run({ chunkStart: 20, chunkEnd: 40 });
    assert.ok(first.span && second.span);
    assert.equal(first.span.start, 0);
    assert.equal(first.span.end, second.span.start, 'the parts meet');
    assert.ok(first.span.end > 18.1 && first.span.end < 18.6, `…in the pause: ${first.span.end} s`);
    assert.equal(second.span.end, 40);
    assert.equal((recognizer.heard[0] ?? 0) + (recognizer.heard[1] ?? 0), audio.length, 'every sample transcribed once');
    assert.equal(second.segments[0]?.words[0]?.start, Math.round((second.span.start + 0.5) * 1000) / 1000, 'word times on the file\'s clock');
    assert.equal(second.audio_duration_seconds, Math.round((40 - second.span.start) * 1000) / 1000);
    assert.deepEqual(progress, [0.5, second.segments[0]?.start], 'progress too');

    const whole = await run({});
    assert.equal(recognizer.heard[2], audio.length, 'a task that is not a part reads the whole file');
    assert.equal(whole.span, undefined);
    assert.equal(whole.segments[0]?.start, 0.5);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
