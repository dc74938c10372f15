/**
 * The ClickHouse sink: a consumer group that reads job snapshots (jobs.state) and analytics facts (analytics) and
 * writes them in batches to jobs/tasks, task_facts and audit_events. It is never on the request path: if ClickHouse
 * is down the batch writers hold rows (bounded) and retry, and the consumer stops taking messages when they are full,
 * so Kafka keeps everything else until ClickHouse is back.
 *
 * Offsets are committed once the batch holding a message's rows is written (deferred durability), so a message costs
 * no write of its own. Delivery is at-least-once: a redelivered snapshot rewrites a versioned row (ReplacingMergeTree
 * absorbs it), and facts and audit events are de-duplicated by their identity (task + attempt + outcome; event id)
 * against the ids written in the last hour, loaded from ClickHouse whenever partitions are assigned, and checked again
against ClickHouse right before each insert (a member that lost the partition may write a late batch). Partition claims
 * and tombstones in jobs.state are the actors' bookkeeping, not job history: they are skipped.
 */
import type { Logger } from '../core/logger.js';
import {
  ANALYTICS, JOB_STATE, StreamConsumer, checkAnalyticsMessage, checkStateMessage, decodeMessage, prefixed,
  type AnalyticsMessage, type DeadLetterWriter, type DeferredDurability, type Kafka, type StateMessage,
} from '../streams/index.js';
import { BatchWriter } from './batch-writer.js';
import type { ClickHouse } from './client.js';
import { JOB_COLUMNS, TASK_COLUMNS, jobRow, taskRows, type JobRow, type TaskRow } from './job-rows.js';
import { RecentIds } from '../core/recent-ids.js';
import { formatDateTime, qualified, str } from './sql.js';

const FACT_COLUMNS = [
  'time', 'time_ms', 'job_id', 'task_id', 'tenant_id', 'stage', 'engine_id', 'model', 'language', 'status', 'audio_duration_seconds',
  'processing_ms', 'queue_wait_ms', 'model_load_ms', 'retries', 'attempt', 'trace_id', 'request_id',
] as const;
const AUDIT_COLUMNS = [
  'time', 'time_ms', 'event_id', 'event_type', 'tenant_id', 'actor_key_id', 'job_id', 'session_id', 'audio_duration_seconds',
  'request_id', 'trace_id', 'details',
] as const;
type Row = Record<string, string | number>;

export interface ClickHouseSinkOptions {
  readonly kafka: Kafka;
  readonly clickhouse: ClickHouse;
  readonly deadLetter: DeadLetterWriter;
  readonly topicPrefix: string;
  readonly log: Logger;
  /** @default 250 — the status API reads jobs from here, so keep it short. */
  readonly flushIntervalMs?: number;
}

type SinkMessage =
  | { readonly kind: 'state'; readonly msg: StateMessage }
  | { readonly kind: 'analytics'; readonly msg: AnalyticsMessage }
  | { readonly kind: 'tombstone' };

/** How far back the de-duplication of facts and audit events reaches (ids loaded from ClickHouse). */
const DEDUP_WINDOW_SQL = 'INTERVAL 1 HOUR';

/** Identity of a task fact: one row per task attempt and outcome, however often the fact is sent. */
export function factKey(taskId: string, attempt: number, status: string): string {
  return `${taskId}#${attempt}#${status}`;
}

export class ClickHouseSink {
  readonly #consumer: StreamConsumer<SinkMessage>;
  readonly #jobs: BatchWriter<JobRow>;
  readonly #tasks: BatchWriter<TaskRow>;
  readonly #facts: BatchWriter<Row>;
  readonly #audit: BatchWriter<Row>;
  readonly #clickhouse: ClickHouse;
  readonly #log: Logger;
  readonly #factsSeen = new RecentIds(500_000);
  readonly #eventsSeen = new RecentIds(500_000);
  /** Duplicates dropped (tests and the chaos benchmark read it). */
  duplicatesDropped = 0;

  constructor(o: ClickHouseSinkOptions) {
    const log = o.log.child({ component: 'clickhouse-sink' });
    this.#clickhouse = o.clickhouse;
    this.#log = log;
    const flushIntervalMs = o.flushIntervalMs ?? 250;
    const writer = <R extends Row>(table: string, columns: readonly string[]) =>
      new BatchWriter<R>({ name: table, log, flushIntervalMs, batchRows: 500, write: (rows) => o.clickhouse.insert(table, rows, columns) });
    this.#jobs = writer<JobRow>('jobs', JOB_COLUMNS);
    this.#tasks = writer<TaskRow>('tasks', TASK_COLUMNS);
    // Facts and audit events are checked against ClickHouse right before each insert as well: a member that lost the
    // partition in a rebalance may write its last batch after this member loaded the seen ids, and this member then
    // re-reads those uncommitted messages (the chaos benchmark once stored one fact twice that way).
    this.#facts = new BatchWriter<Row>({
      name: 'task_facts', log, flushIntervalMs, batchRows: 500,
      write: async (rows) => {
        const fresh = await this.#notYetStored(rows, 'task_facts', 'task_id', 'task_id, attempt, status', (r) => factKey(String(r['task_id']), Number(r['attempt']), String(r['status'])));
        if (fresh.length > 0) await o.clickhouse.insert('task_facts', fresh, FACT_COLUMNS);
      },
    });
    this.#audit = new BatchWriter<Row>({
      name: 'audit_events', log, flushIntervalMs, batchRows: 500,
      write: async (rows) => {
        const fresh = await this.#notYetStored(rows, 'audit_events', 'event_id', 'event_id', (r) => String(r['event_id']));
        if (fresh.length > 0) await o.clickhouse.insert('audit_events', fresh, AUDIT_COLUMNS);
      },
    });
    const stateTopic = prefixed(o.topicPrefix, JOB_STATE.name);
    this.#consumer = new StreamConsumer<SinkMessage>({
      kafka: o.kafka,
      groupId: `${o.topicPrefix.replace(/\.$/, '')}-sink-clickhouse`,
      topics: [stateTopic, prefixed(o.topicPrefix, ANALYTICS.name)],
      // The topic decides the schema: a state snapshot and an analytics fact never share one.
      decode: (value, headers) => {
        void headers;
        try {
          return { kind: 'state', msg: decodeMessage(checkStateMessage, value) };
        } catch {
          return { kind: 'analytics', msg: decodeMessage(checkAnalyticsMessage, value) };
        }
      },
      onTombstone: () => ({ kind: 'tombstone' }),
      handler: (m) => this.#handle(m.value),
      hooks: { onPartitionsAssigned: () => this.#loadSeenIds() },
      deadLetter: o.deadLetter,
      log,
      partitionsConsumedConcurrently: 9,
      // Facts and snapshots wait while ClickHouse is down (the writers retry); they are never dropped for it.
      retry: { maxAttempts: Number.POSITIVE_INFINITY, maxBackoffMs: 5000 },
      maxWaitTimeMs: 100,
    });
  }

  async start(): Promise<void> {
    await this.#consumer.start();
  }

  async close(): Promise<void> {
    await this.#consumer.close();
    await Promise.all([this.#jobs.close(), this.#tasks.close(), this.#facts.close(), this.#audit.close()]);
  }

  /** Rows buffered and not yet acknowledged by ClickHouse (a metric, and a test hook). */
  get pendingRows(): number {
    return this.#jobs.pendingRows + this.#tasks.pendingRows + this.#facts.pendingRows + this.#audit.pendingRows;
  }

  /** Inserts made so far, over all tables (a batch of many messages is one insert). */
  get batchesWritten(): number {
    return this.#jobs.batchesWritten + this.#tasks.batchesWritten + this.#facts.batchesWritten + this.#audit.batchesWritten;
  }

  async flush(): Promise<void> {
    await Promise.all([this.#jobs.flush(), this.#tasks.flush(), this.#facts.flush(), this.#audit.flush()]);
  }

  async #add<R>(writer: BatchWriter<R>, row: R): Promise<void> {
    while (!writer.add(row)) await writer.whenWritable();
  }

  /**
   * The rows of a batch whose identity is not in ClickHouse yet: `lookupColumn` narrows the query to the batch's ids,
   * `columns` are read back, and `keyOf` gives the identity of a batch row and of a stored one alike.
   */
  async #notYetStored(rows: readonly Row[], table: string, lookupColumn: string, columns: string, keyOf: (r: Row) => string): Promise<Row[]> {
    const ids = [...new Set(rows.map((r) => String(r[lookupColumn])))];
    const stored = await this.#clickhouse.query<Row>(
      `SELECT ${columns} FROM ${qualified(this.#clickhouse.database, table)} WHERE ${lookupColumn} IN (${ids.map(str).join(', ')})`,
    );
    const known = new Set(stored.map(keyOf));
    const fresh = rows.filter((r) => !known.has(keyOf(r)));
    if (fresh.length < rows.length) {
      this.duplicatesDropped += rows.length - fresh.length;
      this.#log.info({ table, dropped: rows.length - fresh.length }, 'rows already stored by another sink member dropped');
    }
    return fresh;
  }

  /** Ids written recently, so a fact or event delivered again (redelivery, a re-sent outbox) is not counted twice. */
  async #loadSeenIds(): Promise<void> {
    const db = this.#clickhouse.database;
    const facts = await this.#clickhouse.query<{ task_id: string; attempt: number; status: string }>(
      `SELECT task_id, attempt, status FROM ${qualified(db, 'task_facts')} WHERE time >= now() - ${DEDUP_WINDOW_SQL}`,
    );
    for (const f of facts) this.#factsSeen.add(factKey(f.task_id, Number(f.attempt), f.status));
    const events = await this.#clickhouse.query<{ event_id: string }>(
      `SELECT event_id FROM ${qualified(db, 'audit_events')} WHERE time >= now() - ${DEDUP_WINDOW_SQL}`,
    );
    for (const e of events) this.#eventsSeen.add(e.event_id);
    this.#log.debug({ facts: facts.length, events: events.length }, 'recent fact and event ids loaded for de-duplication');
  }

  async #handle(m: SinkMessage): Promise<DeferredDurability | undefined> {
    // The offset is committed once the batch holding this message's rows is written, not per message.
    if (m.kind === 'tombstone') return undefined;
    if (m.kind === 'state') {
      if (m.msg.type !== 'job.snapshot') return undefined;
      const state = m.msg.state;
      await this.#add(this.#jobs, jobRow(state));
      for (const row of taskRows(state)) await this.#add(this.#tasks, row);
      return { durable: Promise.all([this.#jobs.whenWritten(), this.#tasks.whenWritten()]).then(() => undefined) };
    }
    const a = m.msg;
    if (a.type === 'analytics.task_fact') {
      if (!this.#factsSeen.add(factKey(a.taskId, a.attempt, a.status))) {
        this.duplicatesDropped++;
        return undefined;
      }
      await this.#add(this.#facts, {
        time: formatDateTime(a.time), time_ms: a.time, job_id: a.jobId, task_id: a.taskId, tenant_id: a.tenantId, stage: a.stage,
        engine_id: a.engineId, model: a.model, language: a.language, status: a.status, audio_duration_seconds: a.audioDurationSeconds,
        processing_ms: a.processingMs, queue_wait_ms: a.queueWaitMs, model_load_ms: a.modelLoadMs, retries: a.retries, attempt: a.attempt,
        trace_id: a.traceId, request_id: a.requestId,
      });
      return { durable: this.#facts.whenWritten() };
    }
    if (!this.#eventsSeen.add(a.eventId)) {
      this.duplicatesDropped++;
      return undefined;
    }
    await this.#add(this.#audit, {
      time: formatDateTime(a.time), time_ms: a.time, event_id: a.eventId, event_type: a.eventType, tenant_id: a.tenantId,
      actor_key_id: a.actorKeyId, job_id: a.jobId, session_id: a.sessionId, audio_duration_seconds: a.audioDurationSeconds,
      request_id: a.requestId, trace_id: a.traceId, details: a.details,
    });
    return { durable: this.#audit.whenWritten() };
  }
}
