/** AuditReader over ClickHouse `audit_events`: newest first, one row per event id (a re-sent event is stored twice). */
import type { ClickHouse } from '../../clickhouse/client.js';
import { qualified, str } from '../../clickhouse/sql.js';
import type { AuditQuery, AuditReader, AuditRow } from '../audit-routes.js';

interface Selected {
  event_id: string; time_ms: number | string; event_type: string; tenant_id: string; actor_key_id: string; job_id: string; session_id: string;
  request_id: string; trace_id: string; audio_duration_seconds: number; details: string;
}

export class ClickHouseAuditReader implements AuditReader {
  constructor(private readonly ch: ClickHouse) {}

  async list(q: AuditQuery): Promise<AuditRow[]> {
    const where: string[] = ['1 = 1'];
    if (q.tenantId !== undefined) where.push(`tenant_id = ${str(q.tenantId)}`);
    if (q.eventTypes) where.push(`event_type IN (${q.eventTypes.map(str).join(', ')})`);
    if (q.jobId !== undefined) where.push(`job_id = ${str(q.jobId)}`);
    if (q.sessionId !== undefined) where.push(`session_id = ${str(q.sessionId)}`);
    if (q.keyId !== undefined) where.push(`actor_key_id = ${str(q.keyId)}`);
    if (q.since !== undefined) where.push(`time_ms >= ${Math.floor(q.since)}`);
    if (q.until !== undefined) where.push(`time_ms < ${Math.floor(q.until)}`);
    if (q.before) where.push(`(time_ms < ${Math.floor(q.before.timeMs)} OR (time_ms = ${Math.floor(q.before.timeMs)} AND event_id < ${str(q.before.eventId)}))`);
    const rows = await this.ch.query<Selected>(
      `SELECT event_id, time_ms, toString(event_type) AS event_type, tenant_id, actor_key_id, job_id, session_id, request_id, trace_id,
              audio_duration_seconds, details
       FROM ${qualified(this.ch.database, 'audit_events')}
       WHERE ${where.join(' AND ')}
       ORDER BY time_ms DESC, event_id DESC
       LIMIT 1 BY event_id
       LIMIT ${Math.max(1, Math.floor(q.limit))}`,
    );
    return rows.map((r) => ({
      eventId: r.event_id, timeMs: Number(r.time_ms), eventType: r.event_type, tenantId: r.tenant_id, keyId: r.actor_key_id, jobId: r.job_id,
      sessionId: r.session_id, requestId: r.request_id, traceId: r.trace_id, audioDurationSeconds: r.audio_duration_seconds, details: r.details,
    }));
  }
}
