/**
 * Every message that crosses Kafka, defined once for producer and consumer: a TypeScript type (derived from
 * its runtime checker) per message, one discriminated union per topic, each carrying schema version `v`.
 */
import {
  arrayOf, bool, int, literal, num, object, oneOf, optional, recordOf, str, union, type Check,
} from './validate.js';
import type { RealtimeMessage } from './realtime-messages.js';

export const SCHEMA_VERSION = 1 as const;
const v = literal(SCHEMA_VERSION);

export const STAGES = ['prepare', 'vad', 'transcribe', 'align', 'diarize', 'pii_detect', 'audio_redact', 'merge'] as const;
/** A pipeline stage; per-channel fan-out appends `_ch<N>` to transcribe (transcribe_ch0, …). */
export type Stage = string;

const failure = object({ name: str, code: str, message: str, retryable: bool });

/**
 * Who hears of a job's end by webhook: the tenant's endpoints subscribed to the event (all of them, only
 * `endpointId`, or none: ElevenLabs jobs only with `webhook=true`), and the job's own `url` if it named one.
 */
const jobWebhook = object({
  url: optional(str),
  /** JSON object text, base64url-encoded, echoed in the payload's `data.webhook_metadata`. */
  metadata: optional(str),
  endpoints: oneOf(['all', 'one', 'none'] as const),
  endpointId: optional(str),
});
export type JobWebhook = ReturnType<typeof jobWebhook>;

// ---- Job parameters and audio reference (inside job.created) ----
const jobParams = object({
  /** ISO 639-1 code or 'auto'. */
  language: optional(str),
  /** Catalogue model id or 'auto'. */
  model: optional(str),
  timestampsGranularity: optional(oneOf(['none', 'segment', 'word'] as const)),
  /** Run the vad stage (Silero speech regions, carried into the transcript). */
  vad: optional(bool),
  /** Split channels and transcribe each (transcribe_ch0…N). */
  perChannel: optional(bool),
  /** `translate`: the transcript is the speech translated to English (a multilingual Whisper model). @default transcribe */
  task: optional(oneOf(['transcribe', 'translate'] as const)),
  /** Which API created the job: shapes the response only. */
  api: optional(oneOf(['native', 'openai', 'elevenlabs', 'deepgram', 'kafka'] as const)),
  /** The real-time session whose recording this job enhances (enhance_on_end); links the job back to the session. */
  sessionId: optional(str),
  /**
   * Seconds after the job ends that its data is kept before the purge worker deletes it; 0: deleted as soon as its
   * outcome has been delivered (RETENTION_NONE_GRACE_MS after it ended). Absent: kept until deleted.
   */
  retentionSeconds: optional(int),
  /** Webhook delivery of the job's end (see jobWebhook below). */
  webhook: optional(jobWebhook),
});
export type JobParams = ReturnType<typeof jobParams>;

const audioRef = object({ key: str, filename: str, bytes: int, contentType: str });
export type AudioRef = ReturnType<typeof audioRef>;

// ---- topic jobs.events: everything that moves a job actor ----
const jobCreated = object({
  v, type: literal('job.created'), jobId: str, tenantId: str, keyId: str, createdAt: int, audio: audioRef, params: jobParams,
});
const jobCancelRequested = object({ v, type: literal('job.cancel_requested'), jobId: str, at: int });
const taskStarted = object({
  v, type: literal('task.started'), jobId: str, taskId: str, attempt: int, engineId: str, instanceId: str, at: int, queueWaitMs: int,
});
const taskHeartbeat = object({ v, type: literal('task.heartbeat'), jobId: str, taskId: str, attempt: int, instanceId: str, at: int });
const taskMetrics = object({
  processingMs: int, queueWaitMs: int, modelLoadMs: int,
  audioDurationSeconds: optional(num), language: optional(str), model: optional(str),
});
export type TaskMetrics = ReturnType<typeof taskMetrics>;
const taskCompleted = object({
  v, type: literal('task.completed'), jobId: str, taskId: str, attempt: int, engineId: str, instanceId: str, at: int,
  outputKey: str, metrics: taskMetrics,
});
const taskFailed = object({
  v, type: literal('task.failed'), jobId: str, taskId: str, attempt: int, engineId: str, instanceId: str, at: int,
  error: failure, processingMs: int,
});
/** An engine gave a task back unfinished (it is shutting down): run it again elsewhere at once, not counted as a retry. */
const taskReleased = object({
  v, type: literal('task.released'), jobId: str, taskId: str, attempt: int, engineId: str, instanceId: str, at: int, reason: str,
});
/** A finished job's data was deleted: its owner removes the job's snapshot from jobs.state (a tombstone). */
const jobDeleted = object({ v, type: literal('job.deleted'), jobId: str, at: int });

export const checkJobEvent = union({
  'job.created': jobCreated,
  'job.cancel_requested': jobCancelRequested,
  'task.started': taskStarted,
  'task.heartbeat': taskHeartbeat,
  'task.completed': taskCompleted,
  'task.failed': taskFailed,
  'task.released': taskReleased,
  'job.deleted': jobDeleted,
});
export type JobEvent = ReturnType<typeof checkJobEvent>;
export type JobCreated = ReturnType<typeof jobCreated>;
export type TaskStarted = ReturnType<typeof taskStarted>;
export type TaskCompleted = ReturnType<typeof taskCompleted>;
export type TaskFailed = ReturnType<typeof taskFailed>;
export type TaskReleased = ReturnType<typeof taskReleased>;

// ---- topic tasks.<stage>.<engine_id>: work for one engine ----
const taskConfig = object({
  language: optional(str), model: optional(str), channel: optional(int), timestampsGranularity: optional(str),
  /** transcribe stages: `translate` asks for English text whatever was spoken. */
  task: optional(oneOf(['transcribe', 'translate'] as const)),
  /** prepare: also write one WAV per channel (audio_ch<N>.wav). */
  perChannel: optional(bool),
  /**
   * transcribe parts of a long file: the part's nominal span in seconds of the prepared audio. The engine moves each
   * inner end to the quietest point near it, the same point its neighbour finds, so parts meet in a pause.
   */
  chunkStart: optional(num), chunkEnd: optional(num),
});
export type TaskConfig = ReturnType<typeof taskConfig>;
const taskDispatch = object({
  v, type: literal('task.dispatch'), jobId: str, taskId: str, stage: str, engineId: str, attempt: int,
  enqueuedAt: int, deadlineAt: int,
  /** Named inputs: 'audio' for the original upload, otherwise the upstream stage name → its output artifact key. */
  inputs: recordOf(str),
  config: taskConfig,
  audioDurationSeconds: optional(num),
});
export const checkTaskMessage = union({ 'task.dispatch': taskDispatch });
export type TaskDispatch = ReturnType<typeof taskDispatch>;
export type TaskMessage = ReturnType<typeof checkTaskMessage>;

// ---- topic tasks.control: broadcast to every engine instance ----
const taskCancel = object({ v, type: literal('task.cancel'), jobId: str, taskId: str, attempt: int, at: int });
export const checkControlMessage = union({ 'task.cancel': taskCancel });
export type TaskCancel = ReturnType<typeof taskCancel>;
export type ControlMessage = ReturnType<typeof checkControlMessage>;

// ---- topic analytics: facts for the ClickHouse sink, never on the request path ----
const taskFact = object({
  v, type: literal('analytics.task_fact'), time: int, jobId: str, taskId: str, tenantId: str, stage: str, engineId: str,
  model: str, language: str, status: oneOf(['success', 'failure', 'cancelled'] as const), audioDurationSeconds: num,
  processingMs: int, queueWaitMs: int, modelLoadMs: int, retries: int, attempt: int, traceId: str, requestId: str,
});
export const AUDIT_EVENT_TYPES = [
  'job.created', 'job.completed', 'job.failed', 'job.cancelled', 'job.deleted', 'artifact.read', 'transcript.exported',
  'pii.redaction_run', 'data.deleted', 'realtime.session.completed', 'realtime.session.deleted',
  'api_key.created', 'api_key.revoked', 'access.denied', 'webhook.changed',
] as const;
const auditEvent = object({
  v, type: literal('analytics.audit_event'), time: int, eventId: str, eventType: oneOf(AUDIT_EVENT_TYPES), tenantId: str,
  actorKeyId: str, jobId: str, sessionId: str, audioDurationSeconds: num, requestId: str, traceId: str, details: str,
});
export const checkAnalyticsMessage = union({ 'analytics.task_fact': taskFact, 'analytics.audit_event': auditEvent });
export type TaskFact = ReturnType<typeof taskFact>;
export type AuditEvent = ReturnType<typeof auditEvent>;
export type AnalyticsMessage = ReturnType<typeof checkAnalyticsMessage>;

// ---- topic jobs.requests: jobs submitted by Kafka producers (JSON, signed; see streams/request-signature.ts) ----
/**
 * A job request from outside Dalston. The value is UTF-8 JSON (not msgpack) so any Kafka client can write it. The
 * audio is exactly one of: inline bytes (`base64`, up to DALSTON_KAFKA_INLINE_AUDIO_MAX_BYTES), a `url` the gateway
 * fetches (the same SSRF rules as `audio_url`), or the `key` of an object the producer put in the artifact store
 * under `incoming/`. `requestId` is the producer's own correlation id: the job's outcome on jobs.results carries it
 * back.
 */
const jobRequest = object({
  v, type: literal('job.request'), requestId: str,
  audio: object({ base64: optional(str), url: optional(str), key: optional(str), filename: optional(str) }),
  params: optional(object({
    language: optional(str), model: optional(str), timestampsGranularity: optional(oneOf(['none', 'segment', 'word'] as const)), vad: optional(bool),
  })),
});
export const checkJobRequest = union({ 'job.request': jobRequest });
export type JobRequest = ReturnType<typeof jobRequest>;

// ---- topic jobs.results: every job's outcome, keyed by job id ----
/**
 * Published by the job's actor when the job ends (at least once: a takeover may send it again, unchanged). Gateways
 * answering synchronously wait for it, and Kafka clients read it instead of polling the HTTP API.
 */
const jobOutcome = object({
  v, type: literal('job.outcome'), jobId: str, tenantId: str, requestId: str,
  status: oneOf(['completed', 'failed', 'cancelled'] as const), createdAt: int, completedAt: int,
  audioDurationSeconds: optional(num), language: optional(str),
  /** Artifact-store key of transcript.json (completed jobs). */
  transcriptKey: optional(str),
  error: optional(failure),
  /** Absent: the tenant's subscribed endpoints hear of it, nobody else. */
  webhook: optional(jobWebhook),
});
export const checkJobResult = union({ 'job.outcome': jobOutcome });
export type JobOutcome = ReturnType<typeof jobOutcome>;
export type JobResult = ReturnType<typeof checkJobResult>;

// ---- topic jobs.progress: transcript text as a transcribe task's windows finish, keyed by job id ----
/**
 * Best effort and short-lived: a gateway streaming a job's transcript (OpenAI `stream=true`) forwards these as they
 * come; the transcript itself is the merged one the job's outcome names. `seq` counts the task's windows from 0;
 * `start`/`end` are seconds of the job's audio.
 */
const transcriptProgress = object({
  v, type: literal('transcript.progress'), jobId: str, taskId: str, stage: str, seq: int, start: num, end: num, text: str,
});
export const checkJobProgress = union({ 'transcript.progress': transcriptProgress });
export type TranscriptProgress = ReturnType<typeof transcriptProgress>;

// ---- topic jobs.state (compacted): the durable state of each job actor ----
export const JOB_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelling', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TASK_STATUSES = ['pending', 'ready', 'running', 'completed', 'failed', 'cancelled', 'skipped'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

const attemptRecord = object({
  attempt: int, engineId: str, instanceId: optional(str), startedAt: optional(int), endedAt: int,
  outcome: oneOf(['completed', 'failed', 'timed_out', 'cancelled', 'released'] as const), error: optional(failure),
});
export type AttemptRecord = ReturnType<typeof attemptRecord>;

const taskState = object({
  taskId: str, stage: str, engineId: str, dependsOn: arrayOf(str), required: bool,
  status: oneOf(TASK_STATUSES), attempt: int, retries: int,
  config: taskConfig,
  readyAt: optional(int), enqueuedAt: optional(int), startedAt: optional(int), completedAt: optional(int),
  lastHeartbeatAt: optional(int), deadlineAt: optional(int), retryAt: optional(int),
  instanceId: optional(str), queueWaitMs: optional(int), processingMs: optional(int), modelLoadMs: optional(int),
  outputKey: optional(str), error: optional(failure), attempts: arrayOf(attemptRecord),
});
export type TaskState = ReturnType<typeof taskState>;

/**
 * What a transition decided to send, stored in the snapshot that records the transition: a host that persisted the
 * snapshot and then failed (or died) before sending re-sends these, so no effect is ever lost. Receivers tolerate the
 * duplicate (dispatches by task and attempt, cancels by attempt, analytics by their deterministic ids).
 */
const outboxEntry = union({
  dispatch: object({ type: literal('dispatch'), topic: str, task: taskDispatch }),
  cancel: object({ type: literal('cancel'), cancel: taskCancel }),
  analytics: object({ type: literal('analytics'), message: checkAnalyticsMessage }),
  outcome: object({ type: literal('outcome'), outcome: jobOutcome }),
});
export type OutboxEntry = ReturnType<typeof outboxEntry>;

const jobState = object({
  jobId: str, tenantId: str, keyId: str, requestId: str, traceparent: optional(str),
  status: oneOf(JOB_STATUSES), createdAt: int, startedAt: optional(int), completedAt: optional(int),
  cancelRequestedAt: optional(int), params: jobParams, audio: audioRef,
  audioDurationSeconds: optional(num), language: optional(str), transcriptKey: optional(str),
  error: optional(failure), tasks: arrayOf(taskState), revision: int,
  /** Ownership epoch of the partition's owner that wrote this snapshot (see partition.claim); 0 for old snapshots. */
  epoch: optional(int),
  /** Effects of the transition that produced this revision (sent after the snapshot is durable). */
  outbox: optional(arrayOf(outboxEntry)),
  /** When this record was written (epoch ms): a takeover re-sends the outbox only of a recent snapshot. */
  persistedAt: optional(int),
});
export type JobState = ReturnType<typeof jobState>;

const jobSnapshot = object({ v, type: literal('job.snapshot'), state: jobState });
/**
 * An actor host took over a jobs.events partition: written to the same jobs.state partition (explicit partition,
 * key `claim:<partition>`) once the host has read everything before it. Epochs only grow, so a snapshot from an owner
 * that lost the partition (a lower epoch) is recognised as stale by every reader, and that owner fences itself when it
 * reads the newer claim.
 */
const partitionClaim = object({ v, type: literal('partition.claim'), partition: int, epoch: int, owner: str, at: int });
export const checkStateMessage = union({ 'job.snapshot': jobSnapshot, 'partition.claim': partitionClaim });
export type JobSnapshot = ReturnType<typeof jobSnapshot>;
export type PartitionClaim = ReturnType<typeof partitionClaim>;
export type StateMessage = ReturnType<typeof checkStateMessage>;
/** Key of a partition's claim record in jobs.state. */
export function claimKey(partition: number): string {
  return `claim:${partition}`;
}

export type AnyMessage = JobEvent | TaskMessage | ControlMessage | StateMessage | AnalyticsMessage | JobResult | TranscriptProgress | RealtimeMessage;
export type { Check };
