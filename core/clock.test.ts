import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from './clock.js';

void test('ManualClock fires timers in due order inside advance(), reading each due time, and skips cancelled ones', () => {
  const clock = new ManualClock(1000);
  const fired: string[] = [];
  clock.setTimer(() => fired.push(`b@${clock.now()}`), 20);
  clock.setTimer(() => fired.push(`a@${clock.now()}`), 10);
  const cancelled = clock.setTimer(() => fired.push('cancelled'), 5);
  clock.setTimer(() => fired.push(`a2@${clock.now()}`), 10);
  cancelled.cancel();
  assert.deepEqual(clock.pendingTimers(), [10, 10, 20]);
  clock.advance(9);
  assert.equal(fired.length, 0);
  clock.advance(1);
  assert.deepEqual(fired, ['a@1010', 'a2@1010']);
  // A timer set by a firing one fires in the same advance() when it falls due within it.
  clock.setTimer(() => clock.setTimer(() => fired.push(`nested@${clock.now()}`), 3), 1);
  clock.advance(15);
  assert.deepEqual(fired, ['a@1010', 'a2@1010', 'nested@1014', 'b@1020']);
  assert.equal(clock.now(), 1025);
  assert.deepEqual(clock.pendingTimers(), []);
});
