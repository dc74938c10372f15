/**
 * SessionHistoryReader over ClickHouse `realtime_sessions`: the newest version of a session's rows is its state. Each
 * column is read with argMax(…, version) under its own alias (18.16 resolves an alias equal to a source column inside
 * the aggregate), grouped by session, and filtered outside: correct whether or not ReplacingMergeTree has merged.
 */
import type { ClickHouse } from '../../clickhouse/client.js';
import { DELETED_ROW_VERSION, SESSION_COLUMNS, type SessionRow } from '../../clickhouse/session-rows.js';
import { formatDateTime, num, qualified, str } from '../../clickhouse/sql.js';
import { SESSION_STATUSES, type SessionStatus } from '../../streams/index.js';
import type { SessionHistoryReader, SessionListFilter, SessionView } from '../realtime-sessions.js';

/** Columns read back, each as `r_<column>`. */
const READ = [
  'tenant_id', 'key_id', 'status', 'model', 'language', 'dialect', 'started_ms', 'ended_ms', 'audio_seconds', 'utterances', 'close_code',
  'close_reason', 'retention', 'audio_key', 'transcript_key', 'enhance_job_id', 'first_partial_p50_ms', 'first_partial_p95_ms', 'final_p50_ms',
  'final_p95_ms', 'request_id', 'trace_id', 'deleted', 'retention_seconds',
] as const;
type Selected = { session_id: string } & Record<`r_${(typeof READ)[number]}`, string | number>;

function isStatus(s: string): s is SessionStatus {
  return (SESSION_STATUSES as readonly string[]).includes(s);
}

export class ClickHouseSessionReader implements SessionHistoryReader {
  constructor(private readonly ch: ClickHouse) {}

  #select(tenantId: string, inner: string, outer: readonly string[], tail: string): string {
    const columns = READ.map((c) => `argMax(${c}, version) AS r_${c}`).join(', ');
    return `SELECT * FROM (
        SELECT session_id, ${columns} FROM ${qualified(this.ch.database, 'realtime_sessions')}
        WHERE tenant_id = ${str(tenantId)}${inner} GROUP BY session_id
      ) WHERE ${['r_deleted = 0', ...outer].join(' AND ')} ${tail}`;
  }

  async listSessions(tenantId: string, f: SessionListFilter): Promise<SessionView[]> {
    const outer: string[] = [];
    if (f.status) outer.push(`r_status = ${str(f.status)}`);
    if (f.model) outer.push(`r_model = ${str(f.model)}`);
    if (f.since !== undefined) outer.push(`r_started_ms >= ${num(Math.max(0, Math.floor(f.since)))}`);
    if (f.until !== undefined) outer.push(`r_started_ms < ${num(Math.max(0, Math.floor(f.until)))}`);
    if (f.after) {
      outer.push(`(r_started_ms < ${num(f.after.startedAt)} OR (r_started_ms = ${num(f.after.startedAt)} AND session_id < ${str(f.after.sessionId)}))`);
    }
    const rows = await this.ch.query<Selected>(this.#select(tenantId, '', outer, `ORDER BY r_started_ms DESC, session_id DESC LIMIT ${num(f.limit)}`));
    return rows.map(toView).filter((v): v is SessionView => v !== undefined);
  }

  async getSession(sessionId: string, tenantId: string): Promise<SessionView | undefined> {
    const rows = await this.ch.query<Selected>(this.#select(tenantId, ` AND session_id = ${str(sessionId)}`, [], 'LIMIT 1'));
    return rows[0] ? toView(rows[0]) : undefined;
  }

  async markSessionDeleted(view: SessionView, at: number): Promise<void> {
    const ended = view.endedAt ?? 0;
    const row: SessionRow = {
      session_id: view.sessionId, tenant_id: view.tenantId, key_id: view.keyId, started_at: formatDateTime(view.startedAt), started_ms: view.startedAt,
      ended_at: formatDateTime(ended), ended_ms: ended, duration_seconds: ended > 0 ? (ended - view.startedAt) / 1000 : 0,
      audio_seconds: view.audioSeconds, status: view.status, engine_id: '', model: view.model, language: view.language ?? '', dialect: view.dialect,
      utterances: view.utterances, first_partial_p50_ms: 0, first_partial_p95_ms: 0, final_p50_ms: 0, final_p95_ms: 0, close_code: view.closeCode ?? 0,
      close_reason: view.closeReason ?? '', retention: view.retention ? 1 : 0, audio_key: '', transcript_key: '', enhance_job_id: view.enhanceJobId ?? '',
      deleted: 1, deleted_ms: at, trace_id: view.traceId ?? '', request_id: view.requestId, version: DELETED_ROW_VERSION, retention_seconds: -1,
    };
    await this.ch.insert('realtime_sessions', [row], SESSION_COLUMNS);
  }
}

function toView(r: Selected): SessionView | undefined {
  const status = String(r.r_status);
  if (!isStatus(status)) return undefined;
  const n = (v: string | number): number => Number(v);
  const s = (v: string | number): string | undefined => (String(v) !== '' ? String(v) : undefined);
  const measured = n(r.r_first_partial_p50_ms) > 0 || n(r.r_final_p50_ms) > 0;
  return {
    sessionId: r.session_id, tenantId: String(r.r_tenant_id), keyId: String(r.r_key_id), status, model: String(r.r_model),
    language: s(r.r_language), dialect: String(r.r_dialect), startedAt: n(r.r_started_ms), endedAt: n(r.r_ended_ms) > 0 ? n(r.r_ended_ms) : undefined,
    audioSeconds: n(r.r_audio_seconds), utterances: n(r.r_utterances), closeCode: status === 'active' ? undefined : n(r.r_close_code) || undefined,
    closeReason: s(r.r_close_reason), retention: n(r.r_retention) === 1, audioKey: s(r.r_audio_key), transcriptKey: s(r.r_transcript_key),
    enhanceJobId: s(r.r_enhance_job_id), requestId: String(r.r_request_id), traceId: s(r.r_trace_id),
    retentionSeconds: n(r.r_retention_seconds) >= 0 ? n(r.r_retention_seconds) : undefined,
    latency: measured
      ? { firstPartialP50Ms: n(r.r_first_partial_p50_ms), firstPartialP95Ms: n(r.r_first_partial_p95_ms), finalP50Ms: n(r.r_final_p50_ms), finalP95Ms: n(r.r_final_p95_ms) }
      : undefined,
  };
}
