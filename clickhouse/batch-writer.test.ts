/**
 * The batch writer's rules on a ManualClock: the flush interval, the retry back-off and close()'s deadline run on
 * the injected clock, so every "after N ms" below is exact and no assertion depends on how fast the machine is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { ManualClock } from '../core/clock.js';
import { DependencyUnavailableError, IllegalStateError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { BatchWriter, type BatchWriterOptions } from './batch-writer.js';

/** An in-memory sink that can be switched down, recording every batch it acknowledged. */
function sink() {
  const batches: number[][] = [];
  let down = false;
  let calls = 0;
  return {
    batches,
    get rows(): number[] {
      return batches.flat();
    },
    get calls(): number {
      return calls;
    },
    setDown(v: boolean): void {
      down = v;
    },
    write: async (rows: readonly number[]): Promise<void> => {
      calls++;
      // Asynchronous like a real insert, but without a timer: one tick() lets the whole write settle.
      await Promise.resolve();
      if (down) throw new DependencyUnavailableError('sink down');
      batches.push([...rows]);
    },
  };
}

function writer(s: ReturnType<typeof sink>, clock: ManualClock, o: Partial<BatchWriterOptions<number>> = {}): BatchWriter<number> {
  return new BatchWriter<number>({ name: 'test', write: s.write, log: silentLogger, clock, flushIntervalMs: 20, retryDelayMs: 5, maxRetryDelayMs: 20, ...o });
}

/** Lets what is pending settle, then moves the clock `ms` milliseconds one at a time, settling after each step. */
async function elapse(clock: ManualClock, ms: number): Promise<void> {
  await tick();
  for (let i = 0; i < ms; i++) {
    clock.advance(1);
    await tick();
  }
}

void test('writes a full batch as soon as batchRows rows are buffered, without waiting for the interval', async () => {
  const clock = new ManualClock();
  const s = sink();
  const w = writer(s, clock, { batchRows: 3, flushIntervalMs: 10_000 });
  for (const r of [1, 2, 3, 4]) assert.equal(w.add(r), true);
  await tick();
  assert.deepEqual(s.batches, [[1, 2, 3]], 'written with the clock standing still');
  assert.equal(w.pendingRows, 1);
  assert.deepEqual(clock.pendingTimers(), [10_000], 'the leftover row waits for the interval');
  await w.close();
  assert.deepEqual(s.batches, [[1, 2, 3], [4]]);
  assert.equal(w.writtenRows, 4);
  assert.equal(w.batchesWritten, 2);
  assert.equal(w.state, 'closed');
  assert.deepEqual(clock.pendingTimers(), [], 'close() leaves no timer behind');
});

void test('writes a partial batch when flushIntervalMs has passed, not before', async () => {
  const clock = new ManualClock();
  const s = sink();
  const w = writer(s, clock, { batchRows: 100, flushIntervalMs: 30 });
  w.add(1);
  w.add(2);
  await elapse(clock, 29);
  assert.equal(s.calls, 0, 'nothing written before the interval');
  await elapse(clock, 1);
  assert.deepEqual(s.batches, [[1, 2]]);
  await w.close();
});

void test('add() returns false when maxPendingRows rows are pending and whenWritable() resolves after a write', async () => {
  const clock = new ManualClock();
  const s = sink();
  s.setDown(true);
  const w = writer(s, clock, { batchRows: 2, maxPendingRows: 4 });
  for (const r of [1, 2, 3, 4]) assert.equal(w.add(r), true);
  assert.equal(w.add(5), false);
  assert.equal(w.refusedRows, 1);
  assert.equal(w.pendingRows, 4);
  let writable = false;
  const p = w.whenWritable().then(() => (writable = true));
  await elapse(clock, 40);
  assert.equal(writable, false, 'still full while the sink is down');
  // Retries at 5, 5+10 and 15+20 ms after the first attempt.
  assert.equal(w.failedAttempts, 4);
  s.setDown(false);
  await elapse(clock, 20);
  await p;
  assert.equal(w.add(5), true);
  await w.close();
  assert.deepEqual(s.rows, [1, 2, 3, 4, 5], 'every accepted row exactly once, in order');
});

void test('a failing write is retried with the same batch and no row is lost or duplicated', async () => {
  const clock = new ManualClock();
  const s = sink();
  const w = writer(s, clock, { batchRows: 5, maxPendingRows: 1000 });
  s.setDown(true);
  for (let i = 0; i < 23; i++) assert.equal(w.add(i), true);
  await elapse(clock, 5);
  assert.equal(s.rows.length, 0);
  assert.equal(s.calls, 2, 'the first attempt and one retry');
  assert.equal(w.failedAttempts, 2);
  assert.ok(w.lastError instanceof DependencyUnavailableError);
  s.setDown(false);
  const flushed = w.flush();
  await elapse(clock, 10);
  await flushed;
  assert.deepEqual(s.batches, [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14], [15, 16, 17, 18, 19], [20, 21, 22]]);
  assert.equal(w.lastError, undefined);
  assert.equal(w.pendingRows, 0);
  await w.close();
});

void test('retry delay doubles up to maxRetryDelayMs, and starts again from retryDelayMs after a success', async () => {
  const clock = new ManualClock();
  const s = sink();
  s.setDown(true);
  const w = writer(s, clock, { retryDelayMs: 10, maxRetryDelayMs: 40, batchRows: 1 });
  w.add(1);
  await tick();
  assert.equal(s.calls, 1);
  for (const [i, delay] of [10, 20, 40, 40, 40].entries()) {
    assert.deepEqual(clock.pendingTimers(), [delay], `retry ${i + 1} is due in ${delay} ms`);
    await elapse(clock, delay - 1);
    assert.equal(s.calls, i + 1, `no attempt before ${delay} ms`);
    await elapse(clock, 1);
    assert.equal(s.calls, i + 2, `attempt ${i + 2} after ${delay} ms`);
  }
  s.setDown(false);
  await elapse(clock, 40);
  assert.deepEqual(s.rows, [1]);
  s.setDown(true);
  w.add(2);
  await tick();
  assert.deepEqual(clock.pendingTimers(), [10], 'the back-off was reset by the success');
  w.destroy();
  assert.deepEqual(clock.pendingTimers(), [], 'destroy() cancels the retry');
});

void test('close() flushes everything, then add() is refused', async () => {
  const clock = new ManualClock();
  const s = sink();
  const w = writer(s, clock, { batchRows: 1000, flushIntervalMs: 10_000 });
  for (let i = 0; i < 10; i++) w.add(i);
  await w.close();
  assert.deepEqual(s.batches, [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]);
  assert.throws(() => w.add(99), IllegalStateError);
  await w.close();
});

void test('close() gives up at closeTimeoutMs, not before, and names the rows it could not write', async () => {
  const clock = new ManualClock();
  const s = sink();
  s.setDown(true);
  const w = writer(s, clock, { closeTimeoutMs: 50 });
  w.add(1);
  w.add(2);
  const closing = w.close();
  let settled = false;
  closing.then(() => (settled = true), () => (settled = true));
  await elapse(clock, 49);
  assert.equal(settled, false, 'still retrying before the deadline');
  assert.equal(w.state, 'closing');
  assert.ok(w.failedAttempts >= 3, `retried while closing (${w.failedAttempts} failed attempts)`);
  await elapse(clock, 1);
  await assert.rejects(closing, (err: unknown) => err instanceof DependencyUnavailableError && /could not write 2 rows within 50 ms/.test(err.message));
  assert.equal(w.state, 'closed');
  assert.equal(w.pendingRows, 0);
  assert.deepEqual(s.rows, []);
});

void test('invalid options are refused at construction', () => {
  const clock = new ManualClock();
  const s = sink();
  assert.throws(() => writer(s, clock, { batchRows: 0 }), IllegalStateError);
  assert.throws(() => writer(s, clock, { batchRows: 10, maxPendingRows: 5 }), IllegalStateError);
});
