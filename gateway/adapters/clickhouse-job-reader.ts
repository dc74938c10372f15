/** JobReader over ClickHouse `jobs`: the newest version of a job's row is its state. */
import type { ClickHouse } from '../../clickhouse/client.js';
import { JOB_COLUMNS, type JobRow } from '../../clickhouse/job-rows.js';
import { formatDateTime, qualified, str } from '../../clickhouse/sql.js';
import { isJobStatus, parseStagesJson } from '../job-view.js';
import type { JobReader, JobView, NewJobRecord } from '../ports.js';

interface JobSelect {
  job_id: string; tenant_id: string; status: string; created_ms: number; started_ms: number; completed_ms: number;
  audio_duration_seconds: number; language: string; model: string; request_id: string; trace_id: string;
  error_code: string; error_message: string; stages_json: string; transcript_key: string; session_id: string;
}

export class ClickHouseJobReader implements JobReader {
  constructor(private readonly ch: ClickHouse) {}

  async getJob(jobId: string, tenantId: string): Promise<JobView | undefined> {
    // ORDER BY version DESC LIMIT 1 reads the newest row whether or not ReplacingMergeTree has merged yet.
    const rows = await this.ch.query<JobSelect>(
      `SELECT job_id, tenant_id, status, created_ms, started_ms, completed_ms, audio_duration_seconds, language, model, request_id,
              trace_id, error_code, error_message, stages_json, transcript_key,
              visitParamExtractString(params_json, 'sessionId') AS session_id
       FROM ${qualified(this.ch.database, 'jobs')}
       WHERE job_id = ${str(jobId)} AND tenant_id = ${str(tenantId)}
       ORDER BY version DESC LIMIT 1`,
    );
    const r = rows[0];
    if (!r || !isJobStatus(r.status)) return undefined;
    const opt = (n: number): number | undefined => (n > 0 ? n : undefined);
    return {
      jobId: r.job_id, tenantId: r.tenant_id, status: r.status, createdAt: r.created_ms, startedAt: opt(r.started_ms),
      completedAt: opt(r.completed_ms), audioDurationSeconds: r.audio_duration_seconds > 0 ? r.audio_duration_seconds : undefined,
      language: r.language || undefined, model: r.model || undefined, requestId: r.request_id, traceId: r.trace_id || undefined,
      error: r.error_code ? { name: 'JobError', code: r.error_code, message: r.error_message, retryable: false } : undefined,
      stages: r.stages_json ? parseStagesJson(r.stages_json) : [], transcriptKey: r.transcript_key || undefined,
      sessionId: r.session_id || undefined,
    };
  }

  /**
   * A tombstone row with the highest version hides the job at once (its status is not a job status, so getJob
   * answers undefined); ALTER … DELETE mutations then remove the rows for good, asynchronously, on 18.16 as on
   * current releases. The mutations are issued first so they cannot remove the tombstone inserted after them.
   */
  async deleteJob(jobId: string, tenantId: string): Promise<void> {
    const where = `job_id = ${str(jobId)}`;
    await this.ch.exec(`ALTER TABLE ${qualified(this.ch.database, 'jobs')} DELETE WHERE ${where} AND tenant_id = ${str(tenantId)}`);
    await this.ch.exec(`ALTER TABLE ${qualified(this.ch.database, 'tasks')} DELETE WHERE ${where}`);
    const now = Date.now();
    const tombstone: JobRow = {
      job_id: jobId, tenant_id: tenantId, status: 'deleted', created_at: formatDateTime(now), created_ms: now, started_ms: 0,
      completed_ms: 0, audio_duration_seconds: 0, language: '', model: '', request_id: '', trace_id: '', error_code: '',
      error_message: '', stages_json: '[]', params_json: '{}', transcript_key: '', version: Number.MAX_SAFE_INTEGER,
    };
    await this.ch.insert('jobs', [tombstone], [...JOB_COLUMNS]);
  }

  async createJobRecord(record: NewJobRecord): Promise<void> {
    const row: JobRow = {
      job_id: record.jobId, tenant_id: record.tenantId, status: record.status, created_at: formatDateTime(record.createdAt),
      created_ms: record.createdAt, started_ms: 0, completed_ms: 0, audio_duration_seconds: 0,
      language: record.params.language ?? '', model: record.params.model ?? '', request_id: record.requestId,
      trace_id: record.traceId ?? '', error_code: '', error_message: '', stages_json: '[]', params_json: JSON.stringify(record.params),
      transcript_key: '', version: 0,
    };
    await this.ch.insert('jobs', [row], [...JOB_COLUMNS]);
  }
}
