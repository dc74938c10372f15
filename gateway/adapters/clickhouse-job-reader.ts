/** JobReader over ClickHouse `jobs`: the newest version of a job's row is its state. */
import type { ClickHouse } from '../../clickhouse/client.js';
import { JOB_COLUMNS, type JobRow } from '../../clickhouse/job-rows.js';
import { formatDateTime, qualified, str } from '../../clickhouse/sql.js';
import { isJobStatus, parseStagesJson } from '../job-view.js';
import { JOB_STATUSES, type JobStatus } from '../../streams/index.js';
import type { JobLabels, JobListQuery, JobReader, JobView, NewJobRecord } from '../ports.js';

interface JobSelect {
  job_id: string; tenant_id: string; status: string; created_ms: number; started_ms: number; completed_ms: number;
  audio_duration_seconds: number; language: string; model: string; request_id: string; trace_id: string;
  error_code: string; error_message: string; stages_json: string; transcript_key: string; session_id: string;
}

function toView(r: JobSelect, status: JobStatus): JobView {
  const opt = (n: number): number | undefined => (n > 0 ? n : undefined);
  return {
    jobId: r.job_id, tenantId: r.tenant_id, status, createdAt: r.created_ms, startedAt: opt(r.started_ms),
    completedAt: opt(r.completed_ms), audioDurationSeconds: r.audio_duration_seconds > 0 ? r.audio_duration_seconds : undefined,
    language: r.language || undefined, model: r.model || undefined, requestId: r.request_id, traceId: r.trace_id || undefined,
    error: r.error_code ? { name: 'JobError', code: r.error_code, message: r.error_message, retryable: false } : undefined,
    stages: r.stages_json ? parseStagesJson(r.stages_json) : [], transcriptKey: r.transcript_key || undefined,
    sessionId: r.session_id || undefined,
  };
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
    const labels = (await this.#labels(tenantId, [jobId])).get(jobId);
    return { ...toView(r, r.status), ...(labels ? { labels } : {}) };
  }

  /** The newest name and tags of each of `jobIds` that has any. */
  async #labels(tenantId: string, jobIds: readonly string[]): Promise<Map<string, JobLabels>> {
    if (jobIds.length === 0) return new Map();
    const rows = await this.ch.query<{ job_id: string; l_name: string; l_tags: string[] }>(
      `SELECT job_id, argMax(name, updated_ms) AS l_name, argMax(tags, updated_ms) AS l_tags
       FROM ${qualified(this.ch.database, 'job_labels')}
       WHERE tenant_id = ${str(tenantId)} AND job_id IN (${jobIds.map(str).join(', ')})
       GROUP BY job_id`,
    );
    return new Map(rows.map((r) => [r.job_id, { name: r.l_name, tags: r.l_tags }]));
  }

  async setLabels(jobId: string, tenantId: string, labels: JobLabels, at: number): Promise<void> {
    await this.ch.insert('job_labels', [{ tenant_id: tenantId, job_id: jobId, name: labels.name, tags: [...labels.tags], updated_ms: at }],
      ['tenant_id', 'job_id', 'name', 'tags', 'updated_ms']);
  }

  /**
   * Keyset pagination over the newest version of each job (argMax by version: correct before and after
   * ReplacingMergeTree merges, on 18.16 as on current releases). A page continues strictly after the last
   * (created_ms, job_id) it returned, so jobs created meanwhile never shift it: nothing is missed or repeated.
   */
  async listJobs(tenantId: string, q: JobListQuery): Promise<JobView[]> {
    // Aliases differ from the column names: an aggregate aliased as its own argument is a cyclic alias on some releases.
    const latest = (c: string): string => `argMax(${c}, version) AS l_${c}`;
    const cmp = q.order === 'desc' ? '<' : '>';
    const dir = q.order === 'desc' ? 'DESC' : 'ASC';
    const having = [
      `l_status IN (${JOB_STATUSES.map(str).join(', ')})`,
      ...(q.statuses ? [`l_status IN (${q.statuses.map(str).join(', ')})`] : []),
      ...(q.model !== undefined ? [`l_model = ${str(q.model)}`] : []),
      ...(q.after ? [`(l_created_ms ${cmp} ${Math.trunc(q.after.createdAt)} OR (l_created_ms = ${Math.trunc(q.after.createdAt)} AND job_id ${cmp} ${str(q.after.jobId)}))`] : []),
    ];
    const where = [
      `tenant_id = ${str(tenantId)}`,
      ...(q.createdFrom !== undefined ? [`created_ms >= ${Math.trunc(q.createdFrom)}`] : []),
      ...(q.createdUntil !== undefined ? [`created_ms < ${Math.trunc(q.createdUntil)}`] : []),
      ...(q.tag !== undefined
        ? [`job_id IN (SELECT job_id FROM ${qualified(this.ch.database, 'job_labels')} WHERE tenant_id = ${str(tenantId)}
              GROUP BY job_id HAVING has(argMax(tags, updated_ms), ${str(q.tag)}))`]
        : []),
    ];
    const cols = ['status', 'started_ms', 'completed_ms', 'audio_duration_seconds', 'language', 'model', 'request_id', 'trace_id', 'error_code',
      'error_message', 'stages_json', 'transcript_key'];
    const rows = await this.ch.query<Record<string, string | number>>(
      `SELECT job_id, any(tenant_id) AS l_tenant_id, min(created_ms) AS l_created_ms, ${cols.map(latest).join(', ')},
              visitParamExtractString(argMax(params_json, version), 'sessionId') AS l_session_id
       FROM ${qualified(this.ch.database, 'jobs')}
       WHERE ${where.join(' AND ')}
       GROUP BY job_id
       HAVING ${having.join(' AND ')}
       ORDER BY l_created_ms ${dir}, job_id ${dir}
       LIMIT ${Math.max(1, Math.trunc(q.limit))}`,
    );
    const text = (v: string | number | undefined): string => (typeof v === 'string' ? v : '');
    const num = (v: string | number | undefined): number => Number(v ?? 0);
    const labels = await this.#labels(tenantId, rows.map((r) => text(r['job_id'])));
    return rows.flatMap((r) => {
      const status = text(r['l_status']);
      if (!isJobStatus(status)) return [];
      const row: JobSelect = {
        job_id: text(r['job_id']), tenant_id: text(r['l_tenant_id']), status, created_ms: num(r['l_created_ms']), started_ms: num(r['l_started_ms']),
        completed_ms: num(r['l_completed_ms']), audio_duration_seconds: num(r['l_audio_duration_seconds']), language: text(r['l_language']),
        model: text(r['l_model']), request_id: text(r['l_request_id']), trace_id: text(r['l_trace_id']), error_code: text(r['l_error_code']),
        error_message: text(r['l_error_message']), stages_json: text(r['l_stages_json']), transcript_key: text(r['l_transcript_key']),
        session_id: text(r['l_session_id']),
      };
      const l = labels.get(row.job_id);
      return [{ ...toView(row, status), ...(l ? { labels: l } : {}) }];
    });
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
    await this.ch.exec(`ALTER TABLE ${qualified(this.ch.database, 'job_labels')} DELETE WHERE ${where} AND tenant_id = ${str(tenantId)}`);
    // The webhook delivery log keeps each payload (with the job's webhook_metadata): it goes with the job.
    await this.ch.exec(`ALTER TABLE ${qualified(this.ch.database, 'webhook_deliveries')} DELETE WHERE subject_id = ${str(jobId)} AND tenant_id = ${str(tenantId)}`);
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
