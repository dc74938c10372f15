/**
 * Maps a job actor's snapshot onto the `jobs` and `tasks` rows the status API reads. The stage view (the
 * contract's `stages` array) is the gateway's, so what the sink stores is exactly what the API parses back.
 */
import { jobViewFromState, stagesJson } from '../gateway/job-view.js';
import type { JobState } from '../streams/index.js';
import { formatDateTime } from './sql.js';

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

export function jobRow(state: JobState): JobRow {
  const view = jobViewFromState(state);
  return {
    job_id: view.jobId, tenant_id: view.tenantId, status: view.status, created_at: formatDateTime(view.createdAt),
    created_ms: view.createdAt, started_ms: view.startedAt ?? 0, completed_ms: view.completedAt ?? 0,
    audio_duration_seconds: view.audioDurationSeconds ?? 0, language: view.language ?? '', model: view.model ?? '',
    request_id: view.requestId, trace_id: view.traceId ?? '', error_code: view.error?.code ?? '', error_message: view.error?.message ?? '',
    stages_json: stagesJson(view.stages), params_json: JSON.stringify(state.params), transcript_key: view.transcriptKey ?? '',
    // The gateway writes the first row with version 0; every snapshot revision supersedes it.
    version: state.revision + 1,
  };
}

export function taskRows(state: JobState): TaskRow[] {
  return jobViewFromState(state).stages.map((s) => {
    const task = state.tasks.find((t) => t.taskId === s.taskId);
    return {
      job_id: state.jobId, task_id: s.taskId, stage: s.stage, engine_id: s.engineId, status: s.status, retries: s.retries,
      ready_ms: task?.readyAt ?? 0, started_ms: s.startedAt ?? 0, completed_ms: s.completedAt ?? 0, queue_wait_ms: s.queueWaitMs ?? 0,
      duration_ms: s.durationMs ?? 0, error_json: s.error ? JSON.stringify(s.error) : '', created_at: formatDateTime(state.createdAt),
      version: state.revision + 1,
    };
  });
}
