/**
 * The ClickHouse sink: a consumer group that reads job snapshots (jobs.state) and analytics facts (analytics)
 * and writes them in batches to jobs/tasks, task_facts and audit_events. It is never on the request path: if
 * ClickHouse is down the batch writers hold rows (bounded) and retry, and the consumer stops taking messages
 * when they are full, so Kafka keeps everything else until ClickHouse is back.
 */
import type { Logger } from '../core/logger.js';
import {
  ANALYTICS, JOB_STATE, StreamConsumer, checkAnalyticsMessage, checkStateMessage, decodeMessage, prefixed,
  type AnalyticsMessage, type DeadLetterWriter, type Kafka, type StateMessage,
} from '../streams/index.js';
import { BatchWriter } from './batch-writer.js';
import type { ClickHouse } from './client.js';
import { JOB_COLUMNS, TASK_COLUMNS, jobRow, taskRows, type JobRow, type TaskRow } from './job-rows.js';
import { formatDateTime } from './sql.js';

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

type SinkMessage = { readonly kind: 'state'; readonly msg: StateMessage } | { readonly kind: 'analytics'; readonly msg: AnalyticsMessage };

export class ClickHouseSink {
  readonly #consumer: StreamConsumer<SinkMessage>;
  readonly #jobs: BatchWriter<JobRow>;
  readonly #tasks: BatchWriter<TaskRow>;
  readonly #facts: BatchWriter<Row>;
  readonly #audit: BatchWriter<Row>;

  constructor(o: ClickHouseSinkOptions) {
    const log = o.log.child({ component: 'clickhouse-sink' });
    const flushIntervalMs = o.flushIntervalMs ?? 250;
    const writer = <R extends Row>(table: string, columns: readonly string[]) =>
      new BatchWriter<R>({ name: table, log, flushIntervalMs, batchRows: 500, write: (rows) => o.clickhouse.insert(table, rows, columns) });
    this.#jobs = writer<JobRow>('jobs', JOB_COLUMNS);
    this.#tasks = writer<TaskRow>('tasks', TASK_COLUMNS);
    this.#facts = writer('task_facts', FACT_COLUMNS);
    this.#audit = writer('audit_events', AUDIT_COLUMNS);
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
      handler: (m) => this.#handle(m.value),
      deadLetter: o.deadLetter,
      log,
      partitionsConsumedConcurrently: 9,
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

  async flush(): Promise<void> {
    await Promise.all([this.#jobs.flush(), this.#tasks.flush(), this.#facts.flush(), this.#audit.flush()]);
  }

  async #add<R>(writer: BatchWriter<R>, row: R): Promise<void> {
    while (!writer.add(row)) await writer.whenWritable();
  }

  async #handle(m: SinkMessage): Promise<void> {
    // The offset is committed when this resolves; rows are durable once their batch is written. To keep the
    // "commit after durable" rule we wait for the batch that holds this message's rows.
    if (m.kind === 'state') {
      const state = m.msg.state;
      await this.#add(this.#jobs, jobRow(state));
      for (const row of taskRows(state)) await this.#add(this.#tasks, row);
      await Promise.all([this.#jobs.flush(), this.#tasks.flush()]);
      return;
    }
    const a = m.msg;
    if (a.type === 'analytics.task_fact') {
      await this.#add(this.#facts, {
        time: formatDateTime(a.time), time_ms: a.time, job_id: a.jobId, task_id: a.taskId, tenant_id: a.tenantId, stage: a.stage,
        engine_id: a.engineId, model: a.model, language: a.language, status: a.status, audio_duration_seconds: a.audioDurationSeconds,
        processing_ms: a.processingMs, queue_wait_ms: a.queueWaitMs, model_load_ms: a.modelLoadMs, retries: a.retries, attempt: a.attempt,
        trace_id: a.traceId, request_id: a.requestId,
      });
      await this.#facts.flush();
    } else {
      await this.#add(this.#audit, {
        time: formatDateTime(a.time), time_ms: a.time, event_id: a.eventId, event_type: a.eventType, tenant_id: a.tenantId,
        actor_key_id: a.actorKeyId, job_id: a.jobId, session_id: a.sessionId, audio_duration_seconds: a.audioDurationSeconds,
        request_id: a.requestId, trace_id: a.traceId, details: a.details,
      });
      await this.#audit.flush();
    }
  }
}
