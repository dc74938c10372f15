import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledError, InvalidInputError } from '../../../core/errors.js';
import { readWav } from '../../audio/index.js';
import { ModelError } from '../../models/index.js';
import { parsePocketsphinxOutput } from './pocketsphinx-output.js';
import { PocketsphinxRecognizer } from './pocketsphinx-recognizer.js';
import { childProcesses, waitForChild } from '../../../test/support/child-processes.js';

const LIBRIVOX = '/usr/share/pocketsphinx/test/data/librivox';
const CLIP_0880 = join(LIBRIVOX, 'sense_and_sensibility_01_austen_64kb-0880.wav'); // "he was not an ill disposed young man"
/** pocketsphinx_continuous as the kernel names it (15 characters). */
const PROCESS_NAME = 'pocketsphinx_co';

// Real output of pocketsphinx_continuous -time yes on two LibriVox clips joined by 3 s of silence.
const SAMPLE_OUTPUT = `he was not an illness those young man
<s> 0.000 0.060 0.999500
<sil> 0.070 0.200 0.694306
he 0.210 0.320 0.998701
was(2) 0.330 0.540 0.999800
not 0.550 0.970 0.998701
[SPEECH] 0.980 1.100 0.535598
an(2) 1.110 1.290 0.472940
illness 1.300 1.680 0.834168
those 1.690 2.040 0.055875
young 2.050 2.320 0.050806
man 2.330 2.790 0.905008
</s> 2.800 3.090 1.000000
he might even have been made the amiable himself
<s> 5.870 5.970 0.999800
<sil> 5.980 6.200 0.802498
he 6.210 6.370 0.997303
might 6.380 6.620 0.995609
even 6.630 6.910 1.000000
</s> 9.010 9.270 1.000000
`;

void test('parser drops markers and fillers, strips variants, splits segments at utterances', () => {
  const segments = parsePocketsphinxOutput(SAMPLE_OUTPUT, { durationSeconds: 9.28 });
  assert.equal(segments.length, 2);
  assert.deepEqual(segments.map((s) => s.text), ['he was not an illness those young man', 'he might even']);
  const first = segments[0];
  assert.ok(first);
  assert.equal(first.start, 0.21);
  assert.equal(first.end, 2.79);
  assert.deepEqual(first.words[1], { text: 'was', start: 0.33, end: 0.54, confidence: 0.9998 });
  assert.ok(segments.flatMap((s) => s.words).every((w) => !/[<[(]/.test(w.text)));
});

void test('parser splits at long pauses and caps segment length', () => {
  const out = ['<s> 0.0 0.1 1', 'a 0.1 0.3 1', 'b 0.35 0.5 1', 'c 1.5 1.7 1', 'd 1.75 1.9 1'].join('\n');
  assert.deepEqual(parsePocketsphinxOutput(out, { segmentGapSeconds: 0.5 }).map((s) => s.text), ['a b', 'c d']);
  assert.deepEqual(parsePocketsphinxOutput(out, { segmentGapSeconds: 5, maxSegmentSeconds: 1 }).map((s) => s.text), ['a b', 'c d']);
  assert.deepEqual(parsePocketsphinxOutput(out, { segmentGapSeconds: 5 }).map((s) => s.text), ['a b c d']);
  // times beyond the audio are clamped
  assert.equal(parsePocketsphinxOutput(out, { durationSeconds: 1.8 }).at(-1)?.end, 1.8);
});

void test('recognises a LibriVox clip with word times inside the audio', async () => {
  const r = new PocketsphinxRecognizer();
  assert.equal(r.loaded, false);
  await r.load();
  assert.equal(r.loaded, true);
  const { samples, sampleRate } = await readWav(CLIP_0880);
  assert.equal(sampleRate, 16000);
  const result = await r.recognize({ audio: samples, language: 'en' });
  const duration = samples.length / sampleRate;
  assert.equal(result.language, 'en');
  assert.match(result.text, /\bhe was not\b/);
  assert.match(result.text, /\byoung man\b/);
  const words = result.segments.flatMap((s) => s.words);
  assert.ok(words.length >= 6);
  for (const w of words) assert.ok(w.start >= 0 && w.end <= duration && w.start <= w.end, JSON.stringify(w));
  await r.close();
});

void test('silence gives no segments', async () => {
  const r = new PocketsphinxRecognizer();
  const result = await r.recognize({ audio: new Float32Array(16000 * 2) });
  assert.equal(result.text, '');
  assert.equal(result.segments.length, 0);
});

void test('a missing model directory fails load and recognise with a non-retryable ModelError naming it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dalston-ps-missing-'));
  try {
    const r = new PocketsphinxRecognizer({ modelDir: join(dir, 'nowhere') });
    const named = (err: unknown): boolean =>
      err instanceof ModelError && !err.retryable && err.modelId === 'pocketsphinx-en-us' && err.message.includes(join(dir, 'nowhere'));
    await assert.rejects(r.load(), named);
    await assert.rejects(r.recognize({ audio: new Float32Array(1600) }), named);
    assert.equal(r.loaded, false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('a missing program fails load with a ModelError naming it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dalston-ps-bin-'));
  try {
    await symlink('/usr/share/pocketsphinx/model/en-us', join(dir, 'model'));
    const r = new PocketsphinxRecognizer({ modelDir: join(dir, 'model'), binary: 'no_such_pocketsphinx_binary' });
    await assert.rejects(r.load(), (err: unknown) => err instanceof ModelError && err.message.includes('no_such_pocketsphinx_binary'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('aborting while pocketsphinx runs kills its process and rejects with CancelledError', async () => {
  const r = new PocketsphinxRecognizer();
  await r.load();
  const { samples } = await readWav(CLIP_0880);
  // 24 s of speech: recognition takes seconds, the abort comes as soon as the process is seen.
  const long = new Float32Array(samples.length * 8);
  for (let i = 0; i < 8; i++) long.set(samples, i * samples.length);
  const ac = new AbortController();
  const outcome = r.recognize({ audio: long, signal: ac.signal }).then(() => 'finished', (err: unknown) => err);
  const pid = await waitForChild(PROCESS_NAME);
  // Frozen, pocketsphinx can only end by being killed: an abort that did not kill it would never settle (a
  // generous deadline turns that into a failure), and one that did must have.
  process.kill(pid, 'SIGSTOP');
  try {
    ac.abort(new Error('test cancel'));
    const err = await Promise.race([outcome, sleep(60_000, 'not settled 60 s after the abort', { ref: false })]);
    assert.ok(err instanceof CancelledError, `expected CancelledError, got ${String(err)}`);
    assert.ok(!childProcesses(PROCESS_NAME).includes(pid), `pocketsphinx ${pid} is gone`);
  } finally {
    if (childProcesses(PROCESS_NAME).includes(pid)) process.kill(pid, 'SIGKILL');
  }
});

void test('a language other than English is refused as invalid input', async () => {
  const r = new PocketsphinxRecognizer();
  await assert.rejects(r.recognize({ audio: new Float32Array(1600), language: 'de' }), InvalidInputError);
  // en-US and auto are accepted
  await r.recognize({ audio: new Float32Array(1600), language: 'en-US' });
  await r.recognize({ audio: new Float32Array(1600), language: 'auto' });
});
