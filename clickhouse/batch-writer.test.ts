import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
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
      await sleep(1);
      if (down) throw new DependencyUnavailableError('sink down');
      batches.push([...rows]);
    },
  };
}

function writer(s: ReturnType<typeof sink>, o: Partial<BatchWriterOptions<number>> = {}): BatchWriter<number> {
  return new BatchWriter<number>({ name: 'test', write: s.write, log: silentLogger, flushIntervalMs: 20, retryDelayMs: 5, maxRetryDelayMs: 20, ...o });
}

void test('writes a full batch as soon as batchRows rows are buffered', async () => {
  const s = sink();
  const w = writer(s, { batchRows: 3, flushIntervalMs: 10_000 });
  for (const r of [1, 2, 3, 4]) assert.equal(w.add(r), true);
  await sleep(30);
  assert.deepEqual(s.batches, [[1, 2, 3]]);
  assert.equal(w.pendingRows, 1);
  await w.close();
  assert.deepEqual(s.batches, [[1, 2, 3], [4]]);
  assert.equal(w.writtenRows, 4);
  assert.equal(w.state, 'closed');
});

void test('writes a partial batch after flushIntervalMs', async () => {
  const s = sink();
  const w = writer(s, { batchRows: 100, flushIntervalMs: 30 });
  w.add(1);
  w.add(2);
  await sleep(10);
  assert.equal(s.calls, 0, 'nothing written before the interval');
  await sleep(60);
  assert.deepEqual(s.batches, [[1, 2]]);
  await w.close();
});

void test('add() returns false when maxPendingRows rows are pending and whenWritable() resolves after a write', async () => {
  const s = sink();
  s.setDown(true);
  const w = writer(s, { batchRows: 2, maxPendingRows: 4 });
  for (const r of [1, 2, 3, 4]) assert.equal(w.add(r), true);
  assert.equal(w.add(5), false);
  assert.equal(w.refusedRows, 1);
  assert.equal(w.pendingRows, 4);
  let writable = false;
  const p = w.whenWritable().then(() => (writable = true));
  await sleep(40);
  assert.equal(writable, false, 'still full while the sink is down');
  assert.ok(w.failedAttempts >= 2, `retried (${w.failedAttempts} failed attempts)`);
  s.setDown(false);
  await p;
  assert.equal(w.add(5), true);
  await w.close();
  assert.deepEqual(s.rows, [1, 2, 3, 4, 5], 'every accepted row exactly once, in order');
});

void test('a failing write is retried with the same batch and no row is lost or duplicated', async () => {
  const s = sink();
  const w = writer(s, { batchRows: 5, maxPendingRows: 1000 });
  s.setDown(true);
  for (let i = 0; i < 23; i++) assert.equal(w.add(i), true);
  await sleep(50);
  assert.equal(s.rows.length, 0);
  assert.ok(w.failedAttempts > 0);
  assert.ok(w.lastError instanceof DependencyUnavailableError);
  s.setDown(false);
  await w.flush();
  assert.deepEqual(s.rows, Array.from({ length: 23 }, (_, i) => i));
  assert.ok(s.batches.every((b) => b.length <= 5), 'batches never exceed batchRows');
  assert.equal(w.lastError, undefined);
  assert.equal(w.pendingRows, 0);
  await w.close();
});

void test('retry delay backs off up to maxRetryDelayMs', async () => {
  const s = sink();
  s.setDown(true);
  const w = writer(s, { retryDelayMs: 10, maxRetryDelayMs: 40, batchRows: 1 });
  w.add(1);
  await sleep(200);
  // Delays 10, 20, 40, 40, 40...: about 6 attempts in 200 ms, far fewer than 20 at a fixed 10 ms.
  assert.ok(s.calls >= 3 && s.calls <= 9, `attempts in 200 ms: ${s.calls}`);
  w.destroy();
});

void test('close() flushes everything, then add() is refused', async () => {
  const s = sink();
  const w = writer(s, { batchRows: 1000, flushIntervalMs: 10_000 });
  for (let i = 0; i < 10; i++) w.add(i);
  await w.close();
  assert.equal(s.rows.length, 10);
  assert.throws(() => w.add(99), IllegalStateError);
  await w.close();
});

void test('close() gives up after closeTimeoutMs and names the rows it could not write', async () => {
  const s = sink();
  s.setDown(true);
  const w = writer(s, { closeTimeoutMs: 50 });
  w.add(1);
  w.add(2);
  await assert.rejects(w.close(), (err: unknown) => err instanceof DependencyUnavailableError && /could not write 2 rows/.test(err.message));
  assert.equal(w.state, 'closed');
  assert.equal(w.pendingRows, 0);
});

void test('invalid options are refused at construction', () => {
  const s = sink();
  assert.throws(() => writer(s, { batchRows: 0 }), IllegalStateError);
  assert.throws(() => writer(s, { batchRows: 10, maxPendingRows: 5 }), IllegalStateError);
});
