/**
 * In-memory implementations of the gateway's ports, for unit tests of the gateway and for anyone who needs a
 * gateway without Kafka or ClickHouse. They keep what they are given; nothing moves a job on its own.
 */
import type { AuditEvent, JobCreated } from '../streams/index.js';
import type { JobCancelRequested, JobDeleted, JobEventPublisher, JobLabels, JobListQuery, JobReader, JobView, NewJobRecord, PublishHeaders } from './ports.js';

export class RecordingPublisher implements JobEventPublisher {
  readonly created: { msg: JobCreated; headers: PublishHeaders }[] = [];
  readonly cancels: { msg: JobCancelRequested; headers: PublishHeaders }[] = [];
  readonly deletions: { msg: JobDeleted; headers: PublishHeaders }[] = [];
  readonly audits: AuditEvent[] = [];
  /** When set, every publish rejects with this error (simulates Kafka being down). */
  failWith: Error | undefined;

  async publishJobCreated(msg: JobCreated, headers: PublishHeaders): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.created.push({ msg, headers });
  }
  async publishCancelRequested(msg: JobCancelRequested, headers: PublishHeaders): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.cancels.push({ msg, headers });
  }
  async publishJobDeleted(msg: JobDeleted, headers: PublishHeaders): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.deletions.push({ msg, headers });
  }
  async publishAudit(event: AuditEvent): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.audits.push(event);
  }
}

export class InMemoryJobReader implements JobReader {
  readonly records: NewJobRecord[] = [];
  private readonly jobs = new Map<string, JobView>();

  async getJob(jobId: string, tenantId: string): Promise<JobView | undefined> {
    const job = this.jobs.get(jobId);
    return job && job.tenantId === tenantId ? job : undefined;
  }

  async createJobRecord(record: NewJobRecord): Promise<void> {
    this.records.push(record);
    this.jobs.set(record.jobId, {
      jobId: record.jobId, tenantId: record.tenantId, status: 'pending', createdAt: record.createdAt,
      requestId: record.requestId, traceId: record.traceId, model: record.params.model,
      language: record.params.language !== 'auto' ? record.params.language : undefined, stages: [],
    });
  }

  async deleteJob(jobId: string, tenantId: string): Promise<void> {
    if (this.jobs.get(jobId)?.tenantId === tenantId) this.jobs.delete(jobId);
  }

  async setLabels(jobId: string, tenantId: string, labels: JobLabels): Promise<void> {
    const job = this.jobs.get(jobId);
    if (job?.tenantId === tenantId) this.jobs.set(jobId, { ...job, labels });
  }

  async listJobs(tenantId: string, q: JobListQuery): Promise<JobView[]> {
    const sign = q.order === 'desc' ? -1 : 1;
    const cmp = (a: { createdAt: number; jobId: string }, b: { createdAt: number; jobId: string }): number =>
      a.createdAt - b.createdAt || (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0);
    return [...this.jobs.values()]
      .filter((j) => j.tenantId === tenantId && (!q.statuses || q.statuses.includes(j.status)) && (q.model === undefined || j.model === q.model))
      .filter((j) => (q.createdFrom === undefined || j.createdAt >= q.createdFrom) && (q.createdUntil === undefined || j.createdAt < q.createdUntil))
      .filter((j) => !q.after || sign * cmp(j, q.after) > 0)
      .filter((j) => q.tag === undefined || (j.labels?.tags ?? []).includes(q.tag))
      .sort((a, b) => sign * cmp(a, b))
      .slice(0, q.limit);
  }

  /** Replaces a job's view, as the actor's state writes would. */
  put(view: JobView): void {
    this.jobs.set(view.jobId, view);
  }
}
