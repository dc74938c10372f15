/**
 * The session sink: a consumer group over sessions.state that writes every session snapshot as a `realtime_sessions`
 * row (the row is a projection of the actor's durable state, as the jobs rows are of jobs.state). A live session's
 * row says `active`, so the history API shows it; its last snapshot writes the final row. Partition claims and
 * tombstones are the actors' bookkeeping: skipped. Offsets are committed once the batch holding a row is written;
 * a redelivered snapshot rewrites the same versioned row (ReplacingMergeTree absorbs it).
 */
import type { Logger } from '../core/logger.js';
import {
  SESSION_STATE, StreamConsumer, checkSessionStateMessage, decodeMessage, prefixed,
  type DeadLetterWriter, type DeferredDurability, type Kafka, type RealtimeSessionState,
} from '../streams/index.js';
import { BatchWriter } from './batch-writer.js';
import type { ClickHouse } from './client.js';
import { SESSION_COLUMNS, sessionRow, type SessionRow } from './session-rows.js';

export interface SessionSinkOptions {
  readonly kafka: Kafka;
  readonly clickhouse: ClickHouse;
  readonly deadLetter: DeadLetterWriter;
  readonly topicPrefix: string;
  readonly log: Logger;
  /** @default 250 — the history API reads sessions from here, so keep it short. */
  readonly flushIntervalMs?: number;
}

export class SessionSink {
  readonly #consumer: StreamConsumer<RealtimeSessionState | undefined>;
  readonly #rows: BatchWriter<SessionRow>;

  constructor(o: SessionSinkOptions) {
    const log = o.log.child({ component: 'session-sink' });
    this.#rows = new BatchWriter<SessionRow>({
      name: 'realtime_sessions', log, flushIntervalMs: o.flushIntervalMs ?? 250, batchRows: 500,
      write: (rows) => o.clickhouse.insert('realtime_sessions', rows, SESSION_COLUMNS),
    });
    this.#consumer = new StreamConsumer<RealtimeSessionState | undefined>({
      kafka: o.kafka,
      groupId: `${o.topicPrefix.replace(/\.$/, '')}-sink-sessions`,
      topics: [prefixed(o.topicPrefix, SESSION_STATE.name)],
      decode: (value) => {
        const msg = decodeMessage(checkSessionStateMessage, value);
        return msg.type === 'rt.session.snapshot' ? msg.state : undefined;
      },
      onTombstone: () => undefined,
      handler: (m) => this.#handle(m.value),
      deadLetter: o.deadLetter,
      log,
      partitionsConsumedConcurrently: 6,
      // Rows wait while ClickHouse is down (the writer retries); they are never dropped for it.
      retry: { maxAttempts: Number.POSITIVE_INFINITY, maxBackoffMs: 5000 },
      maxWaitTimeMs: 100,
    });
  }

  async start(): Promise<void> {
    await this.#consumer.start();
  }

  async close(): Promise<void> {
    await this.#consumer.close();
    await this.#rows.close();
  }

  get pendingRows(): number {
    return this.#rows.pendingRows;
  }

  async #handle(state: RealtimeSessionState | undefined): Promise<DeferredDurability | undefined> {
    if (!state) return undefined;
    while (!this.#rows.add(sessionRow(state))) await this.#rows.whenWritable();
    return { durable: this.#rows.whenWritten() };
  }
}
