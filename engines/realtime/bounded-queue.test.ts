import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { BoundedQueue } from './bounded-queue.js';

test('items come out in order; a full queue holds the putter until a take makes room', async () => {
  const q = new BoundedQueue<number>(2);
  await q.put(1);
  await q.put(2);
  let third = false;
  const p = q.put(3).then(() => {
    third = true;
  });
  await tick();
  assert.equal(third, false, 'the third put waits while two are queued');
  assert.equal(q.length, 2);
  assert.equal(await q.take(), 1);
  await p;
  assert.equal(third, true);
  assert.equal(await q.take(), 2);
  assert.equal(await q.take(), 3);
});

test('a waiting taker gets the next put directly', async () => {
  const q = new BoundedQueue<string>(1);
  const taken = q.take();
  await q.put('a');
  assert.equal(await taken, 'a');
  assert.equal(q.length, 0);
});

test('close ends takers, rejects waiting putters and hands back what was queued', async () => {
  const q = new BoundedQueue<number>(1);
  await q.put(1);
  const waiting = q.put(2);
  assert.deepEqual(q.close(), [1]);
  await assert.rejects(waiting);
  assert.equal(await q.take(), undefined);
  await assert.rejects(q.put(3));
});

test('capacity must be a positive integer', () => {
  assert.throws(() => new BoundedQueue(0));
});
