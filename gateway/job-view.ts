/**
 * Pure mappings between the actor's `JobState`, the gateway's `JobView` port shape and the JSON the status API
 * returns. The ClickHouse adapter can use `jobViewFromState` / `stagesJson` when it writes a `jobs` row and
 * `parseStagesJson` when it reads one, so the `stages` array is defined in exactly one place.
 */
import type { FailureRecord } from '../core/errors.js';
import { JOB_STATUSES, TASK_STATUSES, type JobState, type JobStatus, type TaskState, type TaskStatus } from '../streams/index.js';
import type { JobView, StageView } from './ports.js';

/** One row of the contract's `stages` array as the API returns it (and as `jobs.stages_json` stores it). */
export interface StageRow {
  readonly stage: string;
  readonly task_id: string;
  readonly engine_id: string;
  readonly status: TaskStatus;
  readonly started_at: string | null;
  readonly completed_at: string | null;
  readonly duration_ms: number | null;
  readonly queue_wait_ms: number | null;
  readonly retries: number;
  readonly error: ApiFailure | null;
}

export interface ApiFailure {
  readonly code: string;
  readonly message: string;
}

export interface TranscriptFields {
  readonly text: string;
  readonly segments: readonly unknown[];
  readonly words: readonly unknown[];
}

/** A word or segment of a transcript with its text and times (and the recogniser's confidence when it gives one). */
export interface TimedItem {
  readonly text: string;
  readonly start: number;
  readonly end: number;
  readonly confidence?: number;
}

/** The well-formed timed items of a transcript list (words or segments); anything else is skipped. */
export function timedItems(list: readonly unknown[]): TimedItem[] {
  return list.flatMap((v) => {
    if (typeof v !== 'object' || v === null) return [];
    const o = v as Record<string, unknown>;
    return typeof o['text'] === 'string' && typeof o['start'] === 'number' && typeof o['end'] === 'number'
      ? [{ text: o['text'], start: o['start'], end: o['end'], ...(typeof o['confidence'] === 'number' ? { confidence: o['confidence'] } : {}) }] : [];
  });
}

/** Body of `GET /v1/audio/transcriptions/:id`. Transcript fields are present only when the job completed. */
export interface JobStatusBody {
  readonly id: string;
  readonly status: JobStatus;
  readonly created_at: string;
  readonly started_at: string | null;
  readonly completed_at: string | null;
  readonly error: ApiFailure | null;
  readonly audio_duration_seconds: number | null;
  readonly language: string | null;
  /** The model the job named; null when it named none (the default engine's model ran: see the transcribe stage). */
  readonly model: string | null;
  readonly request_id: string;
  readonly trace_id: string | null;
  readonly stages: readonly StageRow[];
  /** Given with PATCH; null when unnamed. */
  readonly name: string | null;
  readonly tags: readonly string[];
  /** Present on a job made from a real-time session (`enhance_on_end`): the link back to it. */
  readonly realtime_session_id?: string;
  readonly text?: string;
  readonly segments?: readonly unknown[];
  readonly words?: readonly unknown[];
}

export function isoOrNull(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

export function apiFailure(failure: FailureRecord | undefined): ApiFailure | null {
  return failure ? { code: failure.code, message: failure.message } : null;
}

/** The trace id inside a W3C `traceparent` (`00-<trace>-<span>-<flags>`), or undefined when absent or invalid. */
export function traceIdFromTraceparent(traceparent: string | undefined): string | undefined {
  const m = traceparent === undefined ? null : /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent);
  const id = m?.[1];
  return id !== undefined && !/^0+$/.test(id) ? id : undefined;
}

/** One stage row per task, in DAG order. */
export function stageViewsFromTasks(tasks: readonly TaskState[]): StageView[] {
  return tasks.map((t) => ({
    stage: t.stage,
    taskId: t.taskId,
    engineId: t.engineId,
    status: t.status,
    startedAt: t.startedAt,
    completedAt: t.completedAt,
    durationMs: t.startedAt !== undefined && t.completedAt !== undefined ? Math.max(0, t.completedAt - t.startedAt) : t.processingMs,
    queueWaitMs: t.queueWaitMs,
    retries: t.retries,
    error: t.error,
    outputKey: t.outputKey,
  }));
}

/** The status view of an actor's state (what the ClickHouse `jobs` row should hold). */
export function jobViewFromState(state: JobState): JobView {
  return {
    jobId: state.jobId,
    tenantId: state.tenantId,
    status: state.status,
    createdAt: state.createdAt,
    startedAt: state.startedAt,
    completedAt: state.completedAt,
    audioDurationSeconds: state.audioDurationSeconds,
    language: state.language ?? (state.params.language !== 'auto' ? state.params.language : undefined),
    model: state.params.model,
    requestId: state.requestId,
    traceId: traceIdFromTraceparent(state.traceparent),
    error: state.error,
    stages: stageViewsFromTasks(state.tasks),
    transcriptKey: state.transcriptKey,
    sessionId: state.params.sessionId,
  };
}

export function stageRow(s: StageView): StageRow {
  return {
    stage: s.stage,
    task_id: s.taskId,
    engine_id: s.engineId,
    status: s.status,
    started_at: isoOrNull(s.startedAt),
    completed_at: isoOrNull(s.completedAt),
    duration_ms: s.durationMs ?? null,
    queue_wait_ms: s.queueWaitMs ?? null,
    retries: s.retries,
    error: apiFailure(s.error),
  };
}

type StoredStageRow = StageRow & { readonly output_key?: string; readonly error_detail?: FailureRecord | null };

/** The `stages` array for `jobs.stages_json`: the API rows plus the output key and full failure record. */
export function stagesJson(stages: readonly StageView[]): string {
  const rows: StoredStageRow[] = stages.map((s) => ({
    ...stageRow(s),
    ...(s.outputKey !== undefined ? { output_key: s.outputKey } : {}),
    error_detail: s.error ?? null,
  }));
  return JSON.stringify(rows);
}

function field(o: Record<string, unknown>, k: string, path: string): unknown {
  if (!(k in o)) throw new Error(`${path}.${k} missing`);
  return o[k];
}
function optMs(v: unknown, path: string): number | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string') {
    const ms = Date.parse(v);
    if (Number.isFinite(ms)) return ms;
  }
  throw new Error(`${path}: expected ISO time or null`);
}
function optNum(v: unknown, path: string): number | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  throw new Error(`${path}: expected number or null`);
}
function reqStr(v: unknown, path: string): string {
  if (typeof v === 'string') return v;
  throw new Error(`${path}: expected string`);
}
function optFailure(detail: unknown, brief: unknown, path: string): FailureRecord | undefined {
  const src = detail ?? brief;
  if (src === null || src === undefined) return undefined;
  if (typeof src !== 'object') throw new Error(`${path}: expected error object`);
  const o = src as Record<string, unknown>;
  return {
    name: typeof o['name'] === 'string' ? o['name'] : 'Error',
    code: reqStr(o['code'], `${path}.code`),
    message: reqStr(o['message'], `${path}.message`),
    retryable: typeof o['retryable'] === 'boolean' ? o['retryable'] : false,
  };
}

/** Reads `jobs.stages_json` back into stage views; throws naming the bad field. */
export function parseStagesJson(json: string): StageView[] {
  const parsed: unknown = JSON.parse(json);
  if (!Array.isArray(parsed)) throw new Error('stages_json: expected an array');
  return parsed.map((item: unknown, i) => {
    const path = `stages_json[${i}]`;
    if (typeof item !== 'object' || item === null) throw new Error(`${path}: expected object`);
    const o = item as Record<string, unknown>;
    const status = reqStr(field(o, 'status', path), `${path}.status`);
    if (!(TASK_STATUSES as readonly string[]).includes(status)) throw new Error(`${path}.status: unknown task status ${status}`);
    const retries = optNum(o['retries'], `${path}.retries`) ?? 0;
    const outputKey = o['output_key'];
    return {
      stage: reqStr(field(o, 'stage', path), `${path}.stage`),
      taskId: reqStr(field(o, 'task_id', path), `${path}.task_id`),
      engineId: reqStr(field(o, 'engine_id', path), `${path}.engine_id`),
      status: status as TaskStatus,
      startedAt: optMs(o['started_at'], `${path}.started_at`),
      completedAt: optMs(o['completed_at'], `${path}.completed_at`),
      durationMs: optNum(o['duration_ms'], `${path}.duration_ms`),
      queueWaitMs: optNum(o['queue_wait_ms'], `${path}.queue_wait_ms`),
      retries,
      error: optFailure(o['error_detail'], o['error'], `${path}.error`),
      outputKey: typeof outputKey === 'string' ? outputKey : undefined,
    };
  });
}

export function isJobStatus(s: string): s is JobStatus {
  return (JOB_STATUSES as readonly string[]).includes(s);
}

/** Terminal job states: nothing more will happen to the job. */
export function isTerminal(status: JobStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

export function jobStatusBody(view: JobView, transcript?: TranscriptFields): JobStatusBody {
  return {
    id: view.jobId,
    status: view.status,
    created_at: new Date(view.createdAt).toISOString(),
    started_at: isoOrNull(view.startedAt),
    completed_at: isoOrNull(view.completedAt),
    error: apiFailure(view.error),
    audio_duration_seconds: view.audioDurationSeconds ?? null,
    language: view.language ?? null,
    model: view.model || null,
    request_id: view.requestId,
    trace_id: view.traceId ?? null,
    stages: view.stages.map(stageRow),
    name: view.labels?.name || null,
    tags: view.labels?.tags ?? [],
    ...(view.sessionId ? { realtime_session_id: view.sessionId } : {}),
    ...(transcript ? { text: transcript.text, segments: transcript.segments, words: transcript.words } : {}),
  };
}

/**
 * The transcript fields of a `transcript.json` artifact: `text`, `segments`, and `words` (top-level, or gathered
 * from the segments when the merge stage nests them). Throws when the artifact is not a transcript object.
 */
export function transcriptFields(artifact: unknown): TranscriptFields {
  if (typeof artifact !== 'object' || artifact === null || Array.isArray(artifact)) throw new Error('transcript: expected an object');
  const o = artifact as Record<string, unknown>;
  const text = typeof o['text'] === 'string' ? o['text'] : '';
  const segments: unknown[] = Array.isArray(o['segments']) ? (o['segments'] as unknown[]) : [];
  let words: unknown[];
  if (Array.isArray(o['words'])) {
    words = o['words'] as unknown[];
  } else {
    words = segments.flatMap((seg) => {
      const w = typeof seg === 'object' && seg !== null ? (seg as Record<string, unknown>)['words'] : undefined;
      return Array.isArray(w) ? (w as unknown[]) : [];
    });
  }
  return { text, segments, words };
}
