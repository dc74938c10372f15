import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newLatencySamples, percentile, summarizeLatency } from './session-latency.js';

test('nearest-rank percentiles: one sample is every percentile; p95 of twenty is the nineteenth', () => {
  assert.equal(percentile([], 50), 0);
  assert.equal(percentile([42], 50), 42);
  assert.equal(percentile([42], 95), 42);
  const twenty = Array.from({ length: 20 }, (_, i) => (20 - i) * 10); // 200, 190, … 10: unsorted on purpose
  assert.equal(percentile(twenty, 50), 100);
  assert.equal(percentile(twenty, 95), 190);
  assert.equal(percentile(twenty, 100), 200);
});

test('a session with no utterance reports nothing; a kind without samples reports 0 (not measured)', () => {
  assert.equal(summarizeLatency(newLatencySamples()), undefined);
  assert.deepEqual(summarizeLatency({ firstPartialMs: [], finalMs: [300.4, 500.6] }), {
    firstPartialP50Ms: 0, firstPartialP95Ms: 0, finalP50Ms: 300, finalP95Ms: 501,
  });
  assert.deepEqual(summarizeLatency({ firstPartialMs: [120, 80, 100], finalMs: [400] }), {
    firstPartialP50Ms: 100, firstPartialP95Ms: 120, finalP50Ms: 400, finalP95Ms: 400,
  });
});
