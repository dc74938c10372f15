/**
 * ExpiredJobs over ClickHouse `jobs`: ended jobs whose `params.retentionSeconds` has run out since they ended. The
 * newest row of each job decides (argMax by version under aliases of their own, as 18.16 needs); a deleted job's
 * tombstone row has status `deleted`, so it is never found again. Only rows whose parameters name a retention are
 * grouped, so jobs kept for good cost the scan little.
 */
import type { ClickHouse } from '../../clickhouse/client.js';
import { qualified } from '../../clickhouse/sql.js';
import type { JobReader, JobView } from '../ports.js';
import { RETENTION_NONE_GRACE_MS, type ExpiredJobs } from '../retention-purge.js';

export class ClickHouseExpiredJobs implements ExpiredJobs {
  constructor(private readonly ch: ClickHouse, private readonly reader: JobReader) {}

  async expired(now: number, limit: number): Promise<JobView[]> {
    const rows = await this.ch.query<{ job_id: string; r_tenant: string }>(
      `SELECT job_id, r_tenant FROM (
         SELECT job_id, argMax(tenant_id, version) AS r_tenant, argMax(status, version) AS r_status,
                argMax(completed_ms, version) AS r_completed, argMax(params_json, version) AS r_params
         FROM ${qualified(this.ch.database, 'jobs')}
         WHERE position(params_json, 'retentionSeconds') > 0 OR status = 'deleted'
         GROUP BY job_id
       )
       WHERE r_status IN ('completed', 'failed', 'cancelled') AND visitParamHas(r_params, 'retentionSeconds') AND r_completed > 0
         AND r_completed + if(visitParamExtractUInt(r_params, 'retentionSeconds') = 0, ${RETENTION_NONE_GRACE_MS}, visitParamExtractUInt(r_params, 'retentionSeconds') * 1000) <= ${Math.floor(now)}
       LIMIT ${Math.max(1, Math.floor(limit))}`,
    );
    const views = await Promise.all(rows.map((r) => this.reader.getJob(r.job_id, r.r_tenant)));
    return views.filter((v): v is JobView => v !== undefined);
  }
}
