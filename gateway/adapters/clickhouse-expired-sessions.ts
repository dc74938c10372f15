/**
 * ExpiredSessions over ClickHouse `realtime_sessions`: ended sessions whose `retention_seconds` has run out since they
 * ended (0: at once, after the same grace as a job's `none`). The newest row of each session decides; a deleted
 * session's hiding row has retention -1 and `deleted` 1, so it is never found again.
 */
import type { ClickHouse } from '../../clickhouse/client.js';
import { qualified } from '../../clickhouse/sql.js';
import type { SessionHistoryReader, SessionView } from '../realtime-sessions.js';
import { RETENTION_NONE_GRACE_MS, type ExpiredSessions } from '../retention-purge.js';

export class ClickHouseExpiredSessions implements ExpiredSessions {
  constructor(private readonly ch: ClickHouse, private readonly reader: SessionHistoryReader) {}

  async expired(now: number, limit: number): Promise<SessionView[]> {
    const rows = await this.ch.query<{ session_id: string; r_tenant: string }>(
      `SELECT session_id, r_tenant FROM (
         SELECT session_id, argMax(tenant_id, version) AS r_tenant, argMax(status, version) AS r_status, argMax(ended_ms, version) AS r_ended,
                argMax(retention_seconds, version) AS r_retention, argMax(deleted, version) AS r_deleted
         FROM ${qualified(this.ch.database, 'realtime_sessions')}
         WHERE retention_seconds >= 0 OR deleted = 1
         GROUP BY session_id
       )
       WHERE r_deleted = 0 AND r_status != 'active' AND r_retention >= 0 AND r_ended > 0
         AND r_ended + if(r_retention = 0, ${RETENTION_NONE_GRACE_MS}, r_retention * 1000) <= ${Math.floor(now)}
       LIMIT ${Math.max(1, Math.floor(limit))}`,
    );
    const views = await Promise.all(rows.map((r) => this.reader.getSession(r.session_id, r.r_tenant)));
    return views.filter((v): v is SessionView => v !== undefined);
  }
}
