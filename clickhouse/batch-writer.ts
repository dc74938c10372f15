/**
 * A bounded, batching inserter for sink consumers (task facts, audit events, spans...). Rows are buffered and
 * written in batches every `batchRows` rows or `flushIntervalMs`; a failed write is retried with exponential
 * back-off on the same batch, in order, so no row is lost or reordered while ClickHouse is down. The buffer is
 * bounded: when it is full add() returns false and the caller should wait on whenWritable() (for a Kafka consumer:
 * stop taking messages) instead of letting memory climb.
 *
 * The writer knows nothing about ClickHouse beyond the `write` function it is given (clickHouseBatchWriter binds it
 * to a table), so its logic is unit-tested with a plain function and integration-tested against a real server.
 *
 * Delivery: a batch is retried until the server acknowledges it. A failure where the server may have stored the
 * batch but the answer was lost (a timeout mid-response) leads to a duplicate on retry; tables keyed by an id
 * (ReplacingMergeTree) absorb that, plain MergeTree fact tables may count such a batch twice.
 */
import { systemClock, type Timer, type TimerClock } from '../core/clock.js';
import { DependencyUnavailableError, IllegalStateError, toFailureRecord } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ClickHouse, InsertRow } from './client.js';

export interface BatchWriterOptions<Row> {
  /** Name in logs and errors, usually the table. */
  readonly name: string;
  /** Writes one batch; throwing means "not written", and the same batch is retried. */
  readonly write: (rows: readonly Row[]) => Promise<void>;
  readonly log: Logger;
  /** Rows held at most, buffered plus in flight; add() refuses beyond it. @default 10000 */
  readonly maxPendingRows?: number;
  /** Rows per write, and the count that triggers a write without waiting for the interval. @default 1000 */
  readonly batchRows?: number;
  /** Longest time a buffered row waits before a write is attempted. @default 1000 */
  readonly flushIntervalMs?: number;
  /** Delay before the first retry of a failed write; doubles per failure. @default 200 */
  readonly retryDelayMs?: number;
  /** Ceiling of the retry delay. @default 10000 */
  readonly maxRetryDelayMs?: number;
  /** How long close() keeps retrying before it gives up and reports the rows it could not write. @default 30000 */
  readonly closeTimeoutMs?: number;
  /** Runs the flush interval, the retry delays and close()'s deadline; tests pass a ManualClock. @default systemClock */
  readonly clock?: TimerClock;
}

interface Settings {
  readonly maxPendingRows: number;
  readonly batchRows: number;
  readonly flushIntervalMs: number;
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly closeTimeoutMs: number;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) throw new IllegalStateError(`BatchWriter ${name} must be a positive integer, got ${value}`);
  return value;
}

function settings<Row>(o: BatchWriterOptions<Row>): Settings {
  const s = {
    maxPendingRows: positiveInt('maxPendingRows', o.maxPendingRows ?? 10_000),
    batchRows: positiveInt('batchRows', o.batchRows ?? 1000),
    flushIntervalMs: positiveInt('flushIntervalMs', o.flushIntervalMs ?? 1000),
    retryDelayMs: positiveInt('retryDelayMs', o.retryDelayMs ?? 200),
    maxRetryDelayMs: positiveInt('maxRetryDelayMs', o.maxRetryDelayMs ?? 10_000),
    closeTimeoutMs: positiveInt('closeTimeoutMs', o.closeTimeoutMs ?? 30_000),
  };
  if (s.batchRows > s.maxPendingRows) throw new IllegalStateError(`BatchWriter batchRows (${s.batchRows}) exceeds maxPendingRows (${s.maxPendingRows})`);
  return s;
}

/**
 * Lifecycle:
 * - `open`: accepts rows and writes them.
 * - `closing`: close() was called; no new rows, remaining rows are being written.
 * - `closed`: everything written (or given up on); the writer does nothing more.
 */
export type BatchWriterState = 'open' | 'closing' | 'closed';

interface Waiter {
  readonly target: number;
  readonly resolve: () => void;
}

export class BatchWriter<Row> {
  private readonly s: Settings;
  private readonly write: (rows: readonly Row[]) => Promise<void>;
  private readonly log: Logger;
  private readonly name: string;
  private readonly clock: TimerClock;

  private buffer: Row[] = [];
  /** The batch being written or waiting for its retry; null when none. */
  private batch: Row[] | null = null;
  private pumping = false;
  private timer: Timer | undefined;
  private wakeRetry: (() => void) | undefined;
  private retryDelay: number;
  private lifecycle: BatchWriterState = 'open';

  private accepted = 0;
  private written = 0;
  private failed = 0;
  private refused = 0;
  private batches = 0;
  private lastFailure: Error | undefined;
  private flushWaiters: Waiter[] = [];
  private writableWaiters: (() => void)[] = [];

  constructor(options: BatchWriterOptions<Row>) {
    this.s = settings(options);
    this.write = options.write;
    this.log = options.log.child({ batch_writer: options.name });
    this.name = options.name;
    this.clock = options.clock ?? systemClock;
    this.retryDelay = this.s.retryDelayMs;
  }

  get state(): BatchWriterState {
    return this.lifecycle;
  }
  /** Rows accepted and not yet written (buffered plus in flight). */
  get pendingRows(): number {
    return this.buffer.length + (this.batch?.length ?? 0);
  }
  /** Write attempts that failed (each is retried). */
  get failedAttempts(): number {
    return this.failed;
  }
  /** Rows acknowledged by the server. */
  get writtenRows(): number {
    return this.written;
  }
  /** add() calls refused because the buffer was full. */
  get refusedRows(): number {
    return this.refused;
  }
  /** Successful writes. */
  get batchesWritten(): number {
    return this.batches;
  }
  /** The error of the most recent failed attempt, cleared by the next success. */
  get lastError(): Error | undefined {
    return this.lastFailure;
  }

  /**
   * Buffers one row. Returns false, and keeps nothing, when maxPendingRows rows are already pending: the caller
   * keeps the row and waits on whenWritable(). Throws once close() was called.
   */
  add(row: Row): boolean {
    if (this.lifecycle !== 'open') throw new IllegalStateError(`BatchWriter ${this.name} is ${this.lifecycle}; add() is not allowed`);
    if (this.pendingRows >= this.s.maxPendingRows) {
      this.refused++;
      return false;
    }
    this.buffer.push(row);
    this.accepted++;
    if (this.buffer.length >= this.s.batchRows) this.kick();
    else this.armTimer();
    return true;
  }

  /** Resolves when add() would accept a row again (at once if it would now). */
  whenWritable(): Promise<void> {
    if (this.pendingRows < this.s.maxPendingRows || this.lifecycle !== 'open') return Promise.resolve();
    return new Promise((resolve) => this.writableWaiters.push(resolve));
  }

  /** Writes everything accepted so far; resolves when the server acknowledged it (retrying as long as it takes). */
  flush(): Promise<void> {
    const target = this.accepted;
    if (this.written >= target) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.flushWaiters.push({ target, resolve }));
    this.kick(true);
    return p;
  }

  /**
   * Resolves once every row accepted so far has been written, at the writer's own pace (batch size or interval): a
   * consumer commits offsets on it without forcing one write per message.
   */
  whenWritten(): Promise<void> {
    const target = this.accepted;
    if (this.written >= target) return Promise.resolve();
    return new Promise<void>((resolve) => this.flushWaiters.push({ target, resolve }));
  }

  /**
   * Stops accepting rows and writes the rest. If ClickHouse stays unavailable beyond closeTimeoutMs, gives up and
   * rejects with a DependencyUnavailableError naming how many rows were not written.
   */
  async close(): Promise<void> {
    if (this.lifecycle === 'closed') return;
    this.lifecycle = 'closing';
    this.releaseWritable();
    let timeout: Timer | undefined;
    const gaveUp = new Promise<boolean>((resolve) => {
      timeout = this.clock.setTimer(() => resolve(true), this.s.closeTimeoutMs);
    });
    try {
      const timedOut = await Promise.race([this.flush().then(() => false), gaveUp]);
      if (timedOut) {
        const lost = this.destroy();
        throw new DependencyUnavailableError(
          `BatchWriter ${this.name} could not write ${lost} rows within ${this.s.closeTimeoutMs} ms of close()`,
          { cause: this.lastFailure },
        );
      }
    } finally {
      timeout?.cancel();
    }
    this.finish();
  }

  /** Stops at once, dropping whatever is pending; returns how many rows were dropped. */
  destroy(): number {
    const dropped = this.pendingRows;
    this.buffer = [];
    this.batch = null;
    this.finish();
    if (dropped > 0) this.log.warn({ dropped_rows: dropped }, 'batch writer destroyed with rows pending');
    return dropped;
  }

  /** A method, not a field check, because destroy() can close the writer while the write loop awaits. */
  private isClosed(): boolean {
    return this.lifecycle === 'closed';
  }

  private finish(): void {
    this.lifecycle = 'closed';
    this.timer?.cancel();
    this.timer = undefined;
    this.wakeRetry?.();
    this.releaseWritable();
    // Flush waiters of dropped rows are released too: nothing more will be written for them.
    for (const w of this.flushWaiters) w.resolve();
    this.flushWaiters = [];
  }

  private armTimer(): void {
    if (this.timer !== undefined || this.pumping) return;
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      this.kick(true);
    }, this.s.flushIntervalMs);
  }

  /** Starts the write loop if it is idle. `all` writes even a partial batch (interval, flush, close). */
  private kick(all = false): void {
    if (this.timer !== undefined) {
      this.timer.cancel();
      this.timer = undefined;
    }
    if (this.pumping || this.lifecycle === 'closed') return;
    this.pumping = true;
    void this.pump(all);
  }

  private async pump(all: boolean): Promise<void> {
    try {
      while (!this.isClosed()) {
        if (this.batch === null) {
          const drainAll = all || this.lifecycle === 'closing' || this.flushWaiters.length > 0;
          if (this.buffer.length === 0 || (!drainAll && this.buffer.length < this.s.batchRows)) break;
          this.batch = this.buffer.splice(0, this.s.batchRows);
        }
        const batch = this.batch;
        try {
          await this.write(batch);
        } catch (err) {
          if (this.isClosed()) return;
          this.failed++;
          this.lastFailure = err instanceof Error ? err : new Error(String(err));
          const failure = toFailureRecord(err);
          this.log.warn(
            { rows: batch.length, pending_rows: this.pendingRows, failed_attempts: this.failed, retry_in_ms: this.retryDelay, error_code: failure.code, retryable: failure.retryable, err: failure.message },
            'batch write failed; retrying',
          );
          await this.sleep(this.retryDelay);
          this.retryDelay = Math.min(this.retryDelay * 2, this.s.maxRetryDelayMs);
          continue;
        }
        if (this.isClosed()) return;
        this.batch = null;
        this.written += batch.length;
        this.batches++;
        if (this.lastFailure !== undefined) this.log.info({ rows: batch.length, failed_attempts: this.failed }, 'batch write recovered');
        this.lastFailure = undefined;
        this.retryDelay = this.s.retryDelayMs;
        this.releaseFlushed();
        this.releaseWritable();
      }
    } finally {
      this.pumping = false;
    }
    // Rows that arrived while the loop was busy but do not fill a batch wait for the interval.
    if (this.lifecycle !== 'closed' && this.buffer.length > 0) {
      if (this.buffer.length >= this.s.batchRows || this.flushWaiters.length > 0) this.kick(true);
      else this.armTimer();
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = this.clock.setTimer(() => {
        this.wakeRetry = undefined;
        resolve();
      }, ms);
      this.wakeRetry = () => {
        t.cancel();
        this.wakeRetry = undefined;
        resolve();
      };
    });
  }

  private releaseFlushed(): void {
    if (this.flushWaiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.flushWaiters) {
      if (this.written >= w.target) w.resolve();
      else still.push(w);
    }
    this.flushWaiters = still;
  }

  private releaseWritable(): void {
    if (this.writableWaiters.length === 0) return;
    if (this.lifecycle === 'open' && this.pendingRows >= this.s.maxPendingRows) return;
    const waiters = this.writableWaiters;
    this.writableWaiters = [];
    for (const w of waiters) w();
  }
}

export type ClickHouseBatchWriterOptions<Row> = Omit<BatchWriterOptions<Row>, 'write' | 'name'>;

/** A BatchWriter inserting into `table` of the client's database, always naming `columns`. */
export function clickHouseBatchWriter<Row extends InsertRow>(
  client: ClickHouse,
  table: string,
  columns: readonly (keyof Row & string)[],
  options: ClickHouseBatchWriterOptions<Row>,
): BatchWriter<Row> {
  return new BatchWriter<Row>({ ...options, name: table, write: (rows) => client.insert(table, rows, columns) });
}
