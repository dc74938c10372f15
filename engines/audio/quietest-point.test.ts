import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom } from '../../core/seeded-random.js';
import { quietestPointInFile, quietestSample } from './quietest-point.js';
import { readPcm16MonoRange, writeWav } from './wav.js';

const RATE = 16000;

/** Noise at `level` everywhere except silent gaps [start, end) seconds. */
function noiseWithGaps(seconds: number, gaps: readonly [number, number][], level = 0.2): Float32Array {
  const random = seededRandom(7);
  const out = new Float32Array(seconds * RATE);
  for (let i = 0; i < out.length; i++) {
    const t = i / RATE;
    out[i] = gaps.some(([a, b]) => t >= a && t < b) ? 0 : (random() * 2 - 1) * level;
  }
  return out;
}

test('the cut goes to the middle of the pause, not to the nominal time inside speech', () => {
  const samples = noiseWithGaps(10, [[6.2, 6.8]]);
  const cut = quietestSample(samples, RATE, 5 * RATE);
  assert.ok(cut > 6.3 * RATE && cut < 6.7 * RATE, `cut at ${cut / RATE} s, inside the pause 6.2–6.8 s`);
});

test('equally quiet points: the one nearest the nominal time wins, so a silent file is cut where asked', () => {
  const silent = new Float32Array(10 * RATE);
  const cut = quietestSample(silent, RATE, 4 * RATE);
  assert.ok(Math.abs(cut - 4 * RATE) <= RATE / 100, `cut at ${cut / RATE} s`);
  const twoPauses = noiseWithGaps(10, [[2, 3], [6.5, 7.5]]);
  const near = quietestSample(twoPauses, RATE, 6 * RATE);
  assert.ok(near > 6.5 * RATE && near < 7.5 * RATE, `the nearer of two equal pauses: ${near / RATE} s`);
});

test('two parts cutting one file at the same nominal time find the same sample, and the two spans tile the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dalston-quiet-'));
  try {
    const path = join(dir, 'long.wav');
    const audio = noiseWithGaps(40, [[18.1, 18.6], [23, 23.2]]);
    await writeWav(path, audio, RATE);
    const a = await quietestPointInFile(path, 20);
    const b = await quietestPointInFile(path, 20);
    assert.equal(a, b, 'deterministic');
    assert.ok(a > 18.1 * RATE && a < 18.6 * RATE, `in the longer pause within 5 s: ${a / RATE} s`);
    const first = await readPcm16MonoRange(path, 0, a);
    const second = await readPcm16MonoRange(path, a, audio.length);
    assert.equal(first.length + second.length, audio.length, 'no sample lost or read twice');
    const whole = await readPcm16MonoRange(path, 0, audio.length);
    assert.deepEqual([...second.slice(0, 50)], [...whole.slice(a, a + 50)], 'the second part starts exactly where the first ends');
    assert.equal((await readPcm16MonoRange(path, audio.length - 10, audio.length + 500)).length, 10, 'reads are clamped to the file');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
