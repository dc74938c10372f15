/**
 * Maps a job actor's snapshot onto the `jobs` and `tasks` rows the status API reads. The stages array of the
 * observability contract is computed here once and stored as stages_json.
 */
import type { JobState, TaskState } from '../streams/index.js';
import { formatDateTime } from './sql.js';

export interface StageView {
  readonly stage: string;
  readonly task_id: string;
  readonly engine_id: string;
  readonly status: TaskState['status'];
  readonly started_at: string | null;
  readonly completed_at: string | null;
  readonly duration_ms: number | null;
  readonly queue_wait_ms: number | null;
  readonly retries: number;
  readonly error: { readonly code: string; readonly message: string; readonly retryable: boolean } | null;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

export function stageView(task: TaskState): StageView {
  const finished = task.status === 'completed' || task.status === 'failed' || task.status === 'cancelled';
  return {
    stage: task.stage,
    task_id: task.taskId,
    engine_id: task.engineId,
    status: task.status,
    started_at: iso(task.startedAt),
    completed_at: finished ? iso(task.completedAt) : null,
    duration_ms: task.processingMs ?? (finished && task.startedAt !== undefined && task.completedAt !== undefined ? task.completedAt - task.startedAt : null),
    queue_wait_ms: task.queueWaitMs ?? null,
    retries: task.retries,
    error: task.error && task.status !== 'completed' ? { code: task.error.code, message: task.error.message, retryable: task.error.retryable } : null,
  };
}

export const JOB_COLUMNS = [
  'job_id', 'tenant_id', 'status', 'created_at', 'created_ms', 'started_ms', 'completed_ms', 'audio_duration_seconds', 'language',
  'model', 'request_id', 'trace_id', 'error_code', 'error_message', 'stages_json', 'params_json', 'transcript_key', 'version',
] as const;
export type JobRow = Record<(typeof JOB_COLUMNS)[number], string | number>;

export const TASK_COLUMNS = [
  'job_id', 'task_id', 'stage', 'engine_id', 'status', 'retries', 'ready_ms', 'started_ms', 'completed_ms', 'queue_wait_ms',
  'duration_ms', 'error_json', 'created_at', 'version',
] as const;
export type TaskRow = Record<(typeof TASK_COLUMNS)[number], string | number>;

export function traceIdOf(traceparent: string | undefined): string {
  return traceparent?.split('-')[1] ?? '';
}

export function jobRow(state: JobState): JobRow {
  return {
    job_id: state.jobId, tenant_id: state.tenantId, status: state.status, created_at: formatDateTime(state.createdAt),
    created_ms: state.createdAt, started_ms: state.startedAt ?? 0, completed_ms: state.completedAt ?? 0,
    audio_duration_seconds: state.audioDurationSeconds ?? 0, language: state.language ?? state.params.language ?? '',
    model: state.params.model ?? '', request_id: state.requestId, trace_id: traceIdOf(state.traceparent),
    error_code: state.error?.code ?? '', error_message: state.error?.message ?? '',
    stages_json: JSON.stringify(state.tasks.map(stageView)), params_json: JSON.stringify(state.params),
    transcript_key: state.transcriptKey ?? '', version: state.revision,
  };
}

export function taskRows(state: JobState): TaskRow[] {
  return state.tasks.map((t) => {
    const v = stageView(t);
    return {
      job_id: state.jobId, task_id: t.taskId, stage: t.stage, engine_id: t.engineId, status: t.status, retries: t.retries,
      ready_ms: t.readyAt ?? 0, started_ms: t.startedAt ?? 0, completed_ms: t.completedAt ?? 0, queue_wait_ms: t.queueWaitMs ?? 0,
      duration_ms: v.duration_ms ?? 0, error_json: v.error ? JSON.stringify(v.error) : '', created_at: formatDateTime(state.createdAt),
      version: state.revision,
    };
  });
}
