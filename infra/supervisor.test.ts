import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_RESTART_POLICY, restartDecision } from './supervisor.js';

const policy = { baseDelayMs: 1000, maxDelayMs: 30_000, maxRestarts: 5, windowMs: 300_000 };

void test('issue 11 defect 17: a first crash is restarted after the base back-off, which doubles per crash in the window', () => {
  assert.deepEqual(restartDecision([], 10_000, policy), { kind: 'restart', delayMs: 1000, recentCrashes: 1 });
  assert.deepEqual(restartDecision([1000], 10_000, policy), { kind: 'restart', delayMs: 2000, recentCrashes: 2 });
  assert.deepEqual(restartDecision([1000, 2000, 3000, 4000], 10_000, policy), { kind: 'restart', delayMs: 16_000, recentCrashes: 5 });
});

void test('a crash loop (more than maxRestarts crashes inside the window) gives up', () => {
  assert.deepEqual(restartDecision([1, 2, 3, 4, 5], 10_000, policy), { kind: 'give_up', recentCrashes: 6 });
});

void test('crashes older than the window are forgotten: a service that crashes now and then is always restarted', () => {
  const old = [0, 1, 2, 3, 4, 5, 6];
  assert.deepEqual(restartDecision(old, 400_000, policy), { kind: 'restart', delayMs: 1000, recentCrashes: 1 });
});

void test('the back-off never exceeds maxDelayMs', () => {
  const d = restartDecision([1, 2, 3, 4, 5, 6, 7, 8, 9], 10, { ...policy, maxRestarts: 100 });
  assert.deepEqual(d, { kind: 'restart', delayMs: 30_000, recentCrashes: 10 });
  assert.equal(DEFAULT_RESTART_POLICY.maxRestarts, 5, 'the README documents 5 crashes in 5 minutes');
  assert.equal(DEFAULT_RESTART_POLICY.windowMs, 300_000);
});
