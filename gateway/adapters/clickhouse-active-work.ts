/**
 * ActiveWork over ClickHouse: a tenant's jobs (or real-time sessions) that have not ended, as the newest row of each
 * says, which of a set of ids have a row at all, and the audio of the day so far. Rows are read as argMax(…, version) under their own alias and
 * filtered outside (correct whether or not ReplacingMergeTree has merged; 18.16 resolves an alias equal to a source
 * column inside the aggregate). Jobs created more than a day ago are not looked at: a job queued that long is not
 * what a concurrency limit is for, and the scan stays bounded.
 */
import type { ClickHouse } from '../../clickhouse/client.js';
import { qualified, str } from '../../clickhouse/sql.js';
import type { AdmissionKind } from '../../streams/index.js';
import type { ActiveWork } from '../limits/tenant-admission.js';

const LOOKBACK_MS = 24 * 3600 * 1000;
const JOB_RUNNING = ['pending', 'running', 'cancelling'];

export class ClickHouseActiveWork implements ActiveWork {
  constructor(private readonly ch: ClickHouse, private readonly now: () => number = Date.now) {}

  async active(tenantId: string, kind: AdmissionKind, candidates: readonly string[]): Promise<{ running: ReadonlySet<string>; known: ReadonlySet<string> }> {
    const since = this.now() - LOOKBACK_MS;
    const ids = candidates.length > 0 ? candidates.map(str).join(', ') : `''`;
    const sql = kind === 'job'
      ? `SELECT id, r_status FROM (
           SELECT job_id AS id, argMax(status, version) AS r_status FROM ${qualified(this.ch.database, 'jobs')}
           WHERE tenant_id = ${str(tenantId)} AND created_ms >= ${since} GROUP BY job_id
         ) WHERE r_status IN (${JOB_RUNNING.map(str).join(', ')}) OR id IN (${ids})`
      : `SELECT id, r_status FROM (
           SELECT session_id AS id, argMax(status, version) AS r_status, argMax(deleted, version) AS r_deleted FROM ${qualified(this.ch.database, 'realtime_sessions')}
           WHERE tenant_id = ${str(tenantId)} AND started_ms >= ${since} GROUP BY session_id
         ) WHERE (r_status = 'active' AND r_deleted = 0) OR id IN (${ids})`;
    const rows = await this.ch.query<{ id: string; r_status: string }>(sql);
    const running = new Set<string>();
    const known = new Set<string>();
    for (const r of rows) {
      known.add(r.id);
      if (kind === 'job' ? JOB_RUNNING.includes(r.r_status) : r.r_status === 'active') running.add(r.id);
    }
    return { running, known };
  }

  async audioSecondsSince(tenantId: string, since: number): Promise<number> {
    const t = str(tenantId);
    const from = Math.floor(since);
    const [jobs, sessions] = await Promise.all([
      this.ch.query<{ s: number | string }>(
        `SELECT sum(r_audio) AS s FROM (
           SELECT job_id, argMax(audio_duration_seconds, version) AS r_audio FROM ${qualified(this.ch.database, 'jobs')}
           WHERE tenant_id = ${t} AND created_ms >= ${from} GROUP BY job_id
         )`,
      ),
      this.ch.query<{ s: number | string }>(
        `SELECT sum(r_audio) AS s FROM (
           SELECT session_id, argMax(audio_seconds, version) AS r_audio FROM ${qualified(this.ch.database, 'realtime_sessions')}
           WHERE tenant_id = ${t} AND started_ms >= ${from} GROUP BY session_id
         )`,
      ),
    ]);
    return Number(jobs[0]?.s ?? 0) + Number(sessions[0]?.s ?? 0);
  }
}
