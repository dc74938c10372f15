/**
 * The purge worker: every interval it asks for ended jobs whose retention has run out and deletes each through the
 * same path as `DELETE …/{id}` (rows hidden first, then artifacts, then a `job.deleted` that has the job's actor
 * write the Kafka tombstone of its `jobs.state` record), audited as `job.deleted` and `data.deleted` with reason
 * `retention`. Every gateway runs one; two that find the same job both try, and the second finds it gone (404, not
 * an error). ClickHouse deletes rows by mutation, a moment later: ids purged here are remembered so the next round
 * does not pick them again. Ended real-time sessions whose retention ran out are deleted the same way as
 * `DELETE /v1/realtime/sessions/{id}` (artifacts, row, snapshot tombstone), audited with reason `retention`.
 */
import type { Logger } from '../core/logger.js';
import { LOG } from '../core/observability-names.js';
import { HttpError } from './errors.js';
import { newRequestId } from './ids.js';
import type { JobView } from './ports.js';
import { removeJob, type TranscriptionsDeps } from './transcriptions.js';
import { removeSession, type RealtimeSessionsDeps, type SessionView } from './realtime-sessions.js';

/** An ended job with `retentionSeconds: 0` is purged this long after it ended: its outcome has been delivered by then. */
export const RETENTION_NONE_GRACE_MS = 10_000;

export interface ExpiredJobs {
  /** Ended jobs whose retention ran out by `now`, at most `limit`. */
  expired(now: number, limit: number): Promise<JobView[]>;
}

export interface ExpiredSessions {
  /** Ended real-time sessions whose retention ran out by `now`, at most `limit`. */
  expired(now: number, limit: number): Promise<SessionView[]>;
}

export interface RetentionPurgeOptions {
  readonly finder: ExpiredJobs;
  readonly deps: TranscriptionsDeps;
  /** Real-time sessions follow the same rules (their own `retention`, else the tenant's retention_days). */
  readonly sessions?: { readonly finder: ExpiredSessions; readonly deps: RealtimeSessionsDeps };
  readonly log: Logger;
  readonly intervalMs: number;
  /** @default 100 */
  readonly batch?: number;
}

export class RetentionPurge {
  readonly #o: RetentionPurgeOptions;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> = Promise.resolve();
  /** Purged job ids → when, kept for ten minutes (ClickHouse mutations take a moment). */
  readonly #purged = new Map<string, number>();

  constructor(o: RetentionPurgeOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'retention-purge' });
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#round = this.#round.then(async () => { await this.runOnce(); }).catch((err: unknown) => {
        this.#log.warn({ err: err instanceof Error ? err.message : String(err) }, 'purge round failed; the next round tries again');
      });
    }, this.#o.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#round;
  }

  /** One round; resolves with the number of jobs purged. */
  async runOnce(): Promise<number> {
    const now = this.#o.deps.clock.now();
    for (const [id, at] of this.#purged) if (now - at > 600_000) this.#purged.delete(id);
    const expired = (await this.#o.finder.expired(now, this.#o.batch ?? 100)).filter((v) => !this.#purged.has(v.jobId));
    let purged = 0;
    for (const view of expired) {
      const requestId = newRequestId();
      const log = this.#log.child({ [LOG.jobId]: view.jobId, [LOG.requestId]: requestId, [LOG.tenantId]: view.tenantId });
      const origin = {
        principal: { tenantId: view.tenantId, keyId: 'retention', scopes: [] }, requestId, traceId: undefined, log, annotate: () => undefined,
      };
      try {
        await removeJob(this.#o.deps, origin, view, 'retention');
        purged++;
        log.info({}, 'job purged at the end of its retention');
      } catch (err) {
        // Gone already (another gateway purged it, or it was deleted): nothing to do.
        if (!(err instanceof HttpError && err.status === 404)) throw err;
      }
      this.#purged.set(view.jobId, now);
    }
    return purged + (await this.#purgeSessions(now));
  }

  async #purgeSessions(now: number): Promise<number> {
    const sessions = this.#o.sessions;
    if (!sessions) return 0;
    const expired = (await sessions.finder.expired(now, this.#o.batch ?? 100)).filter((v) => !this.#purged.has(v.sessionId));
    let purged = 0;
    for (const view of expired) {
      const requestId = newRequestId();
      const log = this.#log.child({ [LOG.sessionId]: view.sessionId, [LOG.requestId]: requestId, [LOG.tenantId]: view.tenantId });
      try {
        await removeSession(sessions.deps, { principal: { tenantId: view.tenantId, keyId: 'retention', scopes: [] }, requestId, traceId: undefined, log }, view, 'retention');
        purged++;
        log.info({}, 'real-time session purged at the end of its retention');
      } catch (err) {
        if (!(err instanceof HttpError && err.status === 404)) throw err;
      }
      this.#purged.set(view.sessionId, now);
    }
    return purged;
  }
}
