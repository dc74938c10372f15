/**
 * Maps a session actor's snapshot onto the `realtime_sessions` row the history API reads (one row per revision; the
 * highest version wins), and reads rows back. Both sides live here so what the sink writes is what the API parses.
 */
import type { RealtimeSessionState } from '../streams/index.js';
import { formatDateTime } from './sql.js';

export const SESSION_COLUMNS = [
  'session_id', 'tenant_id', 'key_id', 'started_at', 'started_ms', 'ended_at', 'ended_ms', 'duration_seconds', 'audio_seconds', 'status',
  'engine_id', 'model', 'language', 'dialect', 'utterances', 'first_partial_p50_ms', 'first_partial_p95_ms', 'final_p50_ms', 'final_p95_ms',
  'close_code', 'close_reason', 'retention', 'audio_key', 'transcript_key', 'enhance_job_id', 'deleted', 'deleted_ms', 'trace_id',
  'request_id', 'version', 'retention_seconds',
] as const;
export type SessionRow = Record<(typeof SESSION_COLUMNS)[number], string | number>;

/** Version of the row that hides a deleted session: above any revision the actor can reach. */
export const DELETED_ROW_VERSION = Number.MAX_SAFE_INTEGER;

export function sessionRow(state: RealtimeSessionState): SessionRow {
  const ended = state.endedAt ?? 0;
  return {
    session_id: state.sessionId, tenant_id: state.tenantId, key_id: state.keyId,
    started_at: formatDateTime(state.startedAt), started_ms: state.startedAt,
    ended_at: formatDateTime(ended), ended_ms: ended,
    duration_seconds: ended > 0 ? Math.max(0, (ended - state.startedAt) / 1000) : 0,
    audio_seconds: state.audioSeconds, status: state.status, engine_id: '', model: state.config.model, language: state.config.language ?? '',
    dialect: state.config.dialect, utterances: state.finals.length,
    first_partial_p50_ms: state.latency?.firstPartialP50Ms ?? 0, first_partial_p95_ms: state.latency?.firstPartialP95Ms ?? 0,
    final_p50_ms: state.latency?.finalP50Ms ?? 0, final_p95_ms: state.latency?.finalP95Ms ?? 0,
    close_code: state.closeCode ?? 0, close_reason: state.closeReason ?? '', retention: state.config.retention ? 1 : 0,
    audio_key: state.config.retention ? state.audioKey ?? '' : '', transcript_key: state.transcriptKey ?? '', enhance_job_id: state.enhanceJobId ?? '',
    deleted: 0, deleted_ms: 0, trace_id: state.traceparent?.split('-')[1] ?? '', request_id: state.requestId,
    version: state.revision,
    retention_seconds: state.config.retention ? state.config.retentionSeconds ?? -1 : -1,
  };
}
