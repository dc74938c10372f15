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
import { removeSession, type RealtimeSessionsDeps, type SessionOrigin, type SessionView } from './realtime-sessions.js';

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

  /** One round; resolves with the number of jobs and sessions purged. */
  async runOnce(): Promise<number> {
    const now = this.#o.deps.clock.now();
    for (const [id, at] of this.#purged) if (now - at > 600_000) this.#purged.delete(id);
    const batch = this.#o.batch ?? 100;
    let purged = await this.#purgeEach(now, await this.#o.finder.expired(now, batch), (v) => ({ id: v.jobId, field: LOG.jobId, what: 'job' }),
      (v, origin) => removeJob(this.#o.deps, { ...origin, annotate: () => undefined }, v, 'retention'));
    const sessions = this.#o.sessions;
    if (sessions) {
      purged += await this.#purgeEach(now, await sessions.finder.expired(now, batch), (v) => ({ id: v.sessionId, field: LOG.sessionId, what: 'real-time session' }),
        (v, origin) => removeSession(sessions.deps, origin, v, 'retention'));
    }
    return purged;
  }

  /** Deletes each expired item not purged lately, as the retention worker; one already gone (404) is skipped. */
  async #purgeEach<V extends { readonly tenantId: string }>(
    now: number, expired: readonly V[], name: (v: V) => { id: string; field: string; what: string },
    remove: (v: V, origin: SessionOrigin) => Promise<void>,
  ): Promise<number> {
    let purged = 0;
    for (const view of expired) {
      const { id, field, what } = name(view);
      if (this.#purged.has(id)) continue;
      const requestId = newRequestId();
      const log = this.#log.child({ [field]: id, [LOG.requestId]: requestId, [LOG.tenantId]: view.tenantId });
      try {
        await remove(view, { principal: { tenantId: view.tenantId, keyId: 'retention', scopes: [] }, requestId, traceId: undefined, log });
        purged++;
        log.info({}, `${what} purged at the end of its retention`);
      } catch (err) {
        // Gone already (another gateway purged it, or it was deleted): nothing to do.
        if (!(err instanceof HttpError && err.status === 404)) throw err;
      }
      this.#purged.set(id, now);
    }
    return purged;
  }
}
