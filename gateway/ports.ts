/**
 * The gateway's ports: what it needs from Kafka (JobEventPublisher), from ClickHouse (JobReader) and from the
 * artifact store. The gateway never imports a Kafka or ClickHouse client; `gateway/main.ts` plugs adapters in.
 * Shapes stay close to `JobState` (streams/messages.ts) and to the ClickHouse `jobs` columns so the adapters are
 * thin: timestamps are epoch milliseconds, ids are strings, absent values are `undefined`.
 */
import type { FailureRecord } from '../core/errors.js';
import type { AudioRef, AuditEvent, JobCreated, JobEvent, JobOutcome, JobParams, JobStatus, TaskStatus, TranscriptProgress } from '../streams/index.js';

export type { ArtifactStore } from '../storage/index.js';

/** `job.cancel_requested` on the jobs.events topic. */
export type JobCancelRequested = Extract<JobEvent, { type: 'job.cancel_requested' }>;
/** `job.deleted` on the jobs.events topic: the job's actor removes its snapshot from Kafka. */
export type JobDeleted = Extract<JobEvent, { type: 'job.deleted' }>;

/** A job's outcome as the actor published it on jobs.results: how a synchronous answer learns that its job ended. */
export interface JobOutcomeWaiter {
  /** The job's outcome, or undefined when none arrives within timeoutMs. Outcomes that came shortly before count too. */
  wait(jobId: string, timeoutMs: number): Promise<JobOutcome | undefined>;
  /** The job's outcome if this gateway has read it in the last few minutes, without waiting. */
  recent(jobId: string): JobOutcome | undefined;
}

/** Transcript text of running jobs as their windows finish (jobs.progress), for streamed answers. */
export interface JobProgressFeed {
  /** Calls `listener` with each progress record of `jobId` from now on; returns the unsubscribe. */
  subscribe(jobId: string, listener: (progress: TranscriptProgress) => void): () => void;
}

/** Correlation carried as Kafka headers (`request_id`, `tenant_id`); trace context comes from the active span. */
export interface PublishHeaders {
  readonly requestId: string;
  readonly tenantId: string;
}

export interface JobEventPublisher {
  /** Publishes `job.created` keyed by job id. Resolves once the broker has acknowledged it. */
  publishJobCreated(msg: JobCreated, headers: PublishHeaders): Promise<void>;
  /** Publishes `job.cancel_requested` keyed by job id. The actor decides what the cancellation does. */
  publishCancelRequested(msg: JobCancelRequested, headers: PublishHeaders): Promise<void>;
  /** Publishes `job.deleted` keyed by job id, once the job's artifacts and rows are gone. */
  publishJobDeleted(msg: JobDeleted, headers: PublishHeaders): Promise<void>;
  /** Publishes an audit event to the analytics topic (ClickHouse `audit_events`). */
  publishAudit(event: AuditEvent): Promise<void>;
}

/**
 * One row of the job's `stages` array (observability contract), in the ports' units. One row per task; a task's
 * retries are folded into `retries`.
 */
export interface StageView {
  readonly stage: string;
  readonly taskId: string;
  readonly engineId: string;
  readonly status: TaskStatus;
  /** Epoch ms when the current (last) attempt started. */
  readonly startedAt?: number | undefined;
  /** Epoch ms when the task reached a terminal state. */
  readonly completedAt?: number | undefined;
  readonly durationMs?: number | undefined;
  readonly queueWaitMs?: number | undefined;
  readonly retries: number;
  readonly error?: FailureRecord | undefined;
  /** Artifact key of the task's output.json once it has one. @default artifactKeys.taskOutput(job, task) */
  readonly outputKey?: string | undefined;
}

/** What the status API needs of a job: a projection of `JobState` / one ClickHouse `jobs` row (FINAL). */
export interface JobView {
  readonly jobId: string;
  readonly tenantId: string;
  readonly status: JobStatus;
  /** Epoch ms (`created_ms`). */
  readonly createdAt: number;
  readonly startedAt?: number | undefined;
  readonly completedAt?: number | undefined;
  readonly audioDurationSeconds?: number | undefined;
  /** Detected or requested language (ISO 639-1). */
  readonly language?: string | undefined;
  readonly model?: string | undefined;
  readonly requestId: string;
  /** 32 hex characters, absent when the job was created without tracing. */
  readonly traceId?: string | undefined;
  readonly error?: FailureRecord | undefined;
  readonly stages: readonly StageView[];
  /** Artifact key of transcript.json, set when the job completed. */
  readonly transcriptKey?: string | undefined;
  /** The real-time session this job enhances (`enhance_on_end`), if any. */
  readonly sessionId?: string | undefined;
  /** Name and tags given with PATCH; absent when never set. */
  readonly labels?: JobLabels | undefined;
}

/** What a caller names and tags a job with (PATCH /v1/audio/transcriptions/{id}). */
export interface JobLabels {
  /** '' when unnamed. */
  readonly name: string;
  readonly tags: readonly string[];
}

/** The initial `jobs` row written by the gateway (span `create_job`) once `job.created` is published. */
export interface NewJobRecord {
  readonly jobId: string;
  readonly tenantId: string;
  /** API key id of the creator (audit `actor_key_id`). */
  readonly keyId: string;
  readonly status: 'pending';
  /** Epoch ms. */
  readonly createdAt: number;
  readonly requestId: string;
  readonly traceId?: string | undefined;
  readonly params: JobParams;
  readonly audio: AudioRef;
}

/** Which jobs a listing wants, and from where (keyset pagination: a position, never an offset). */
export interface JobListQuery {
  readonly limit: number;
  readonly order: 'desc' | 'asc';
  /** Continue after this (created_ms, job_id) position, in `order`. */
  readonly after?: { readonly createdAt: number; readonly jobId: string } | undefined;
  readonly statuses?: readonly JobStatus[] | undefined;
  readonly model?: string | undefined;
  /** created_ms >= createdFrom and < createdUntil. */
  readonly createdFrom?: number | undefined;
  readonly createdUntil?: number | undefined;
  /** Only jobs whose current tags include this one. */
  readonly tag?: string | undefined;
}

export interface JobReader {
  /** The job as `tenantId` may see it; undefined when unknown or owned by another tenant. */
  getJob(jobId: string, tenantId: string): Promise<JobView | undefined>;
  /** The tenant's jobs in (created_ms, job_id) order, at most `limit` of them (deleted jobs never). */
  listJobs(tenantId: string, query: JobListQuery): Promise<JobView[]>;
  /** Writes the initial `pending` row so a status request right after the 201 finds the job. */
  createJobRecord(record: NewJobRecord): Promise<void>;
  /** Replaces the job's name and tags (newest `at` wins). */
  setLabels(jobId: string, tenantId: string, labels: JobLabels, at: number): Promise<void>;
  /** Removes a finished job's rows (job and tasks); from then on getJob answers undefined. */
  deleteJob(jobId: string, tenantId: string): Promise<void>;
}

/** One span of the optional ClickHouse span store (`spans` table, DALSTON_OTEL_SPAN_STORE=clickhouse). */
export interface StoredSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** `service.name` of the process that recorded it. */
  readonly service: string;
  /** INTERNAL | SERVER | CLIENT | PRODUCER | CONSUMER */
  readonly kind: string;
  /** Epoch microseconds. */
  readonly startUs: number;
  readonly durationUs: number;
  /** UNSET | OK | ERROR */
  readonly statusCode: string;
  readonly statusMessage: string;
  readonly attributes: Readonly<Record<string, string>>;
}

export interface TraceReader {
  /** Spans of one trace in start order, at most `limit` of them; [] when none are stored (yet). */
  getTrace(traceId: string, limit: number): Promise<readonly StoredSpan[]>;
}
