import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alignWords, dtw, medianFilter } from './word-alignment.js';

void test('median filter keeps steps and removes single spikes', () => {
  const x = Float32Array.from([0, 0, 0, 9, 0, 0, 0, 1, 1, 1, 1, 1]);
  assert.deepEqual(Array.from(medianFilter(x, 3)), [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
});

void test('DTW follows a diagonal-block cost and covers every row and frame once', () => {
  // 3 rows over 9 frames: row r is cheap on frames 3r..3r+2.
  const cost = [0, 1, 2].map((r) => Float32Array.from({ length: 9 }, (_, f) => (Math.floor(f / 3) === r ? 0 : 1)));
  const { rows, frames } = dtw(cost);
  assert.equal(frames[0], 0);
  assert.equal(frames[frames.length - 1], 8);
  for (let k = 0; k < rows.length; k++) assert.equal(Math.floor((frames[k] ?? 0) / 3), rows[k]);
});

void test('words get the times where their tokens attend', () => {
  // rows: word A (1 token) on frames 10-29, word B (2 tokens) on 30-49 and 50-69, eot row on 70-99.
  const spans = [[10, 30], [30, 50], [50, 70], [70, 100]] as const;
  const matrix = spans.map(([a, b]) => Float32Array.from({ length: 100 }, (_, f) => (f >= a && f < b ? 1 : 0)));
  const words = alignWords(matrix, ['A', 'B'], [1, 2]);
  const expected = [['A', 0, 0.6], ['B', 0.6, 1.4]] as const;
  // Within one 20 ms frame: the path may step rows one frame early, as in whisper's own DTW.
  words.forEach((w, i) => {
    assert.equal(w.word, expected[i]?.[0]);
    assert.ok(Math.abs(w.start - (expected[i]?.[1] ?? 0)) <= 0.02 + 1e-9 && Math.abs(w.end - (expected[i]?.[2] ?? 0)) <= 0.02 + 1e-9, JSON.stringify(w));
  });
});
