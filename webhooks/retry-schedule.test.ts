import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retryDelayMs } from './retry-schedule.js';

void test('retry back-off doubles from the base up to the cap, with jitter between half and all of it, and ends after the last attempt', () => {
  const policy = { baseMs: 1000, maxDelayMs: 10_000, maxAttempts: 6 };
  assert.deepEqual([1, 2, 3, 4, 5].map((a) => retryDelayMs(a, policy, () => 1)), [1000, 2000, 4000, 8000, 10_000]);
  assert.deepEqual([1, 2, 3, 4, 5].map((a) => retryDelayMs(a, policy, () => 0)), [500, 1000, 2000, 4000, 5000]);
  assert.equal(retryDelayMs(6, policy), undefined);
  const spread = new Set(Array.from({ length: 50 }, () => retryDelayMs(3, policy)));
  assert.ok(spread.size > 10, 'jitter spreads retries that failed together');
  for (const d of spread) assert.ok(d !== undefined && d >= 2000 && d <= 4000);
});
