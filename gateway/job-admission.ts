/**
 * Admission of new jobs under a backlog: once the engines' queues hold more than the configured number of tasks, an
 * HTTP submission is refused with 503 and a Retry-After computed from how fast the queues drain, before its upload is
 * read. A burst is then absorbed by Kafka up to the limit and told when to come back beyond it; nothing queues in
 * memory. Kafka job requests are not refused: their topic is already the queue, read as fast as jobs are accepted.
 */
import { HttpError } from './errors.js';
import type { HttpRequest } from './http-exchange.js';

/** The backlog as last sampled (see adapters/kafka-backlog.ts). */
export interface BacklogSample {
  /** Tasks waiting in every engine queue (consumer-group lag), summed. */
  readonly queuedTasks: number;
  /** Tasks taken from the queues per second since the previous sample; undefined before two samples. */
  readonly drainPerSecond: number | undefined;
}

/** The port the job routes ask before they take an upload. */
export interface JobAdmission {
  /** Undefined when a new job may be queued; otherwise the refusal to answer. */
  refusal(): AdmissionRefusal | undefined;
  /** Counts a job queued since the last sample, so a burst between two samples cannot slip past the limit. */
  admitted(): void;
}

export interface AdmissionRefusal {
  readonly queuedTasks: number;
  readonly limit: number;
  readonly retryAfterSeconds: number;
}

/** Longest Retry-After answered: a client should look again within a minute whatever the estimate says. */
export const MAX_RETRY_AFTER_SECONDS = 60;
/** Retry-After when the queues are not draining at all (no engine taking work): try again shortly. */
export const STALLED_RETRY_AFTER_SECONDS = 10;

/**
 * Whether one more job may be queued: the sampled backlog plus the jobs admitted since (each at least one task) must
 * stay below `limit` (0: no limit). A refusal's Retry-After is how long the queues take to drain below the limit at
 * the measured rate, from 1 s to a minute. Pure.
 */
export function admissionDecision(sample: BacklogSample | undefined, admittedSince: number, limit: number): AdmissionRefusal | undefined {
  if (limit <= 0 || sample === undefined) return undefined;
  const queuedTasks = sample.queuedTasks + admittedSince;
  if (queuedTasks < limit) return undefined;
  const excess = queuedTasks - limit + 1;
  const rate = sample.drainPerSecond;
  const retryAfterSeconds = rate === undefined || rate <= 0
    ? STALLED_RETRY_AFTER_SECONDS
    : Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(excess / rate)));
  return { queuedTasks, limit, retryAfterSeconds };
}

/**
 * Bodies up to this size are read and dropped before a refusal is answered. An answer sent while the client is still
 * uploading closes the connection under it, and HTTP clients (fetch among them) may then report a network failure
 * instead of the 503 and its Retry-After. Larger uploads are cut: reading them would cost more than the client's retry.
 */
export const REFUSAL_DRAIN_MAX_BYTES = 64 * 1024 * 1024;

/** Reads and drops what is left of a request body (up to maxBytes); resolves when it ended, failed or went over. */
export async function dropBody(req: HttpRequest, maxBytes: number): Promise<void> {
  if (req.body.readableEnded) return;
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) return;
  await new Promise<void>((resolve) => {
    let seen = 0;
    const done = (): void => {
      req.body.off('data', onData);
      req.body.off('end', done);
      req.body.off('error', done);
      req.signal.removeEventListener('abort', done);
      req.body.pause();
      resolve();
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > maxBytes) done();
    };
    req.body.on('data', onData);
    req.body.once('end', done);
    req.body.once('error', done);
    req.signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Throws the 503 a refused submission answers with (logged once by the request handler, like every error answer),
 * after dropping the body the client is sending so that it receives the answer.
 */
export async function admitJob(admission: JobAdmission | undefined, req: HttpRequest): Promise<void> {
  const refusal = admission?.refusal();
  if (!refusal) return;
  await dropBody(req, REFUSAL_DRAIN_MAX_BYTES);
  throw new HttpError(
    503, 'service_unavailable',
    `the server is at capacity: ${refusal.queuedTasks} tasks are queued (limit ${refusal.limit}); retry after ${refusal.retryAfterSeconds} s`,
    { headers: { 'retry-after': String(refusal.retryAfterSeconds) } },
  );
}
