import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planWindows, splitLongRegion } from './windows.js';
import { estimateWordTimes } from './word-timing.js';

const F = 0.032;

void test('close regions merge up to the target length, distant ones stay apart', () => {
  const regions = [{ start: 0, end: 4 }, { start: 4.5, end: 8 }, { start: 8.4, end: 14 }, { start: 14.2, end: 18 }, { start: 25, end: 27 }];
  const w = planWindows(regions, new Float32Array(1000), F, { targetSeconds: 15, maxSeconds: 25, maxGapSeconds: 1 });
  assert.deepEqual(w.map((x) => [x.start, x.end]), [[0, 14], [14.2, 18], [25, 27]]);
  assert.equal(w[0]?.speech.length, 3);
});

void test('a region longer than the maximum is cut at its quietest frame in the second half', () => {
  const probs = new Float32Array(Math.ceil(60 / F)).fill(0.9);
  const quiet = Math.round(20 / F);
  probs[quiet] = 0.1;
  const parts = splitLongRegion({ start: 0, end: 60 }, probs, F, 25);
  assert.ok(parts.every((p) => p.end - p.start <= 25 + 1e-9), JSON.stringify(parts));
  assert.ok(Math.abs((parts[0]?.end ?? 0) - (quiet + 0.5) * F) < 1e-9);
  assert.equal(parts[parts.length - 1]?.end, 60);
  for (let i = 1; i < parts.length; i++) assert.equal(parts[i]?.start, parts[i - 1]?.end);
});

void test('estimated word times stay in the speech, in order, and skip silences', () => {
  const speech = [{ start: 1, end: 2 }, { start: 3, end: 4 }];
  const words = estimateWordTimes([{ text: 'aaa' }, { text: 'bbb' }, { text: 'ccc' }, { text: 'ddd' }], speech);
  assert.equal(words.length, 4);
  for (const w of words) assert.ok(speech.some((r) => w.start >= r.start && w.end <= r.end && w.end >= w.start), JSON.stringify(w));
  for (let i = 1; i < words.length; i++) assert.ok((words[i]?.start ?? 0) >= (words[i - 1]?.end ?? 0));
  assert.deepEqual(words.map((w) => w.start), [1, 1.5, 3, 3.5]);
});
