/**
 * One queue for the decodes of every session on this engine, so they stop competing.
 *
 * onnxruntime-node runs inference on the event loop (a setImmediate, then a blocking call), so decodes in flight
 * together only interleave their steps: each finishes later, none sooner, and a final waits behind the partials of
 * every other session. Here decodes run `concurrency` at a time (1 by default) in this order:
 *
 * 1. finals, oldest first: a final never waits behind a partial that has not started;
 * 2. first partials of an utterance, oldest first (what a listener waits for most; short audio, cheap);
 * 3. other partials, oldest first: each session has at most one decode waiting (its transcriber is serial), so
 *    oldest-first is round-robin across sessions.
 *
 * Partials give way, finals never: a partial is dropped at once when the work ahead of it (the running decodes'
 * remaining estimate, the queued ones' estimates) would make it wait longer than `partialMaxWaitMs`, and dropped at
 * its turn (or by a timer while it waits) if it did wait that long (finals came in front of it). The transcriber counts a dropped partial as skipped
 * and its cadence stretches with queueDelayMs(), an average of the waits decodes met that fades while none do.
 */
import { CancelledError } from '../../core/errors.js';
import type { Clock } from '../../core/clock.js';
import type { DecodeGate, DecodeRequest, GateOutcome } from '../streaming/decode-gate.js';

export interface DecodeSchedulerOptions {
  readonly clock: Clock;
  /** Decodes running at once. @default 1 */
  readonly concurrency?: number;
  /** Longest a partial may wait for its turn before it gives way. @default 500 */
  readonly partialMaxWaitMs?: number;
  /** Weight of the newest wait in queueDelayMs()'s average. @default 0.2 */
  readonly delaySmoothing?: number;
  /** queueDelayMs() halves every this many ms without decodes, so an engine that went quiet is not still felt as busy. @default 2000 */
  readonly delayHalfLifeMs?: number;
  /**
   * Arms the timer that drops a partial still queued at its limit, so a session is not held behind a long decode to
   * learn its partial gave way. @default setTimeout (unref'd)
   */
  readonly setTimer?: (fn: () => void, ms: number) => { cancel(): void };
  /** Called once per decode that ran or gave way (metrics). */
  readonly onOutcome?: (o: { readonly kind: DecodeRequest['kind']; readonly ran: boolean; readonly queuedMs: number }) => void;
}

export interface DecodeSchedulerStats {
  readonly running: number;
  readonly queuedFinals: number;
  readonly queuedPartials: number;
  readonly ran: number;
  readonly dropped: number;
}

interface Job {
  readonly seq: number;
  readonly request: DecodeRequest;
  readonly enqueuedAt: number;
  /** Starts the work (ran) or resolves it as dropped. */
  readonly start: (queuedMs: number) => void;
  readonly drop: (queuedMs: number) => void;
}

interface Running {
  readonly estimatedMs: number;
  readonly startedAt: number;
}

/** Rank of a queued job: lower runs first. */
function rank(j: Job): number {
  if (j.request.kind === 'final') return 0;
  return j.request.firstOfUtterance === true ? 1 : 2;
}

export class DecodeScheduler implements DecodeGate {
  readonly #clock: Clock;
  readonly #concurrency: number;
  readonly #partialMaxWaitMs: number;
  readonly #smoothing: number;
  readonly #halfLifeMs: number;
  readonly #onOutcome: DecodeSchedulerOptions['onOutcome'];
  readonly #setTimer: NonNullable<DecodeSchedulerOptions['setTimer']>;
  readonly #queue: Job[] = [];
  readonly #running = new Set<Running>();
  #seq = 0;
  #delayMs = 0;
  #delayAt = 0;
  #ran = 0;
  #dropped = 0;

  constructor(options: DecodeSchedulerOptions) {
    this.#clock = options.clock;
    this.#concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
    this.#partialMaxWaitMs = options.partialMaxWaitMs ?? 500;
    this.#smoothing = options.delaySmoothing ?? 0.2;
    this.#halfLifeMs = options.delayHalfLifeMs ?? 2000;
    this.#onOutcome = options.onOutcome;
    this.#setTimer = options.setTimer ?? ((fn, ms) => {
      const t = setTimeout(fn, ms);
      t.unref();
      return { cancel: () => clearTimeout(t) };
    });
  }

  get stats(): DecodeSchedulerStats {
    const queuedFinals = this.#queue.filter((j) => j.request.kind === 'final').length;
    return { running: this.#running.size, queuedFinals, queuedPartials: this.#queue.length - queuedFinals, ran: this.#ran, dropped: this.#dropped };
  }

  queueDelayMs(): number {
    const idle = Math.max(0, this.#clock.now() - this.#delayAt);
    return this.#delayMs * 0.5 ** (idle / this.#halfLifeMs);
  }

  /** Predicted wait of a job of this rank submitted now: the work ahead of it spread over the slots. */
  predictedWaitMs(request: DecodeRequest): number {
    const now = this.#clock.now();
    const r = rank({ seq: 0, request, enqueuedAt: now, start: () => undefined, drop: () => undefined });
    let ahead = 0;
    for (const j of this.#queue) if (rank(j) <= r) ahead += j.request.estimatedMs;
    if (this.#running.size + this.#queue.filter((j) => rank(j) <= r).length < this.#concurrency) return 0;
    for (const x of this.#running) ahead += Math.max(0, x.estimatedMs - (now - x.startedAt));
    return ahead / this.#concurrency;
  }

  run<T>(request: DecodeRequest, work: () => Promise<T>, signal?: AbortSignal): Promise<GateOutcome<T>> {
    if (signal?.aborted === true) return Promise.reject(new CancelledError('decode cancelled'));
    if (request.kind === 'partial' && this.predictedWaitMs(request) > this.#partialMaxWaitMs) {
      this.#settle(request, false, 0);
      return Promise.resolve({ ran: false, queuedMs: 0 });
    }
    return new Promise<GateOutcome<T>>((resolve, reject) => {
      let timer: { cancel(): void } | undefined;
      const onAbort = (): void => {
        timer?.cancel();
        const i = this.#queue.indexOf(job);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(new CancelledError('decode cancelled'));
      };
      const job: Job = {
        seq: this.#seq++,
        request,
        enqueuedAt: this.#clock.now(),
        drop: (queuedMs) => {
          timer?.cancel();
          signal?.removeEventListener('abort', onAbort);
          resolve({ ran: false, queuedMs });
        },
        start: (queuedMs) => {
          timer?.cancel();
          signal?.removeEventListener('abort', onAbort);
          const slot: Running = { estimatedMs: request.estimatedMs, startedAt: this.#clock.now() };
          this.#running.add(slot);
          let result: Promise<T>;
          try {
            result = work();
          } catch (err) {
            result = Promise.reject(err instanceof Error ? err : new Error(String(err)));
          }
          result
            .then((value) => resolve({ ran: true, value, queuedMs }), reject)
            .finally(() => {
              this.#running.delete(slot);
              this.#pump();
            });
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(job);
      this.#pump();
      if (request.kind === 'partial' && this.#queue.includes(job)) timer = this.#setTimer(() => this.#expire(job), this.#partialMaxWaitMs + 1);
    });
  }

  /** Starts queued jobs while slots are free, best rank first; stale partials give way on the way. */
  #pump(): void {
    while (this.#running.size < this.#concurrency && this.#queue.length > 0) {
      let best = 0;
      for (let i = 1; i < this.#queue.length; i++) {
        const a = this.#queue[i];
        const b = this.#queue[best];
        if (a !== undefined && b !== undefined && (rank(a) < rank(b) || (rank(a) === rank(b) && a.seq < b.seq))) best = i;
      }
      const [job] = this.#queue.splice(best, 1);
      if (job === undefined) return;
      const queuedMs = Math.max(0, this.#clock.now() - job.enqueuedAt);
      if (job.request.kind === 'partial' && queuedMs > this.#partialMaxWaitMs) {
        this.#settle(job.request, false, queuedMs);
        job.drop(queuedMs);
        continue;
      }
      this.#settle(job.request, true, queuedMs);
      job.start(queuedMs);
    }
  }

  /** A partial still queued at its limit gives way now rather than at its turn. */
  #expire(job: Job): void {
    const i = this.#queue.indexOf(job);
    if (i < 0) return;
    this.#queue.splice(i, 1);
    const queuedMs = Math.max(0, this.#clock.now() - job.enqueuedAt);
    this.#settle(job.request, false, queuedMs);
    job.drop(queuedMs);
  }

  #settle(request: DecodeRequest, ran: boolean, queuedMs: number): void {
    if (ran) this.#ran += 1;
    else this.#dropped += 1;
    // A partial dropped at submit would have waited at least the limit: that is the delay the cadence must feel.
    const felt = ran || queuedMs > 0 ? queuedMs : this.#partialMaxWaitMs;
    const current = this.queueDelayMs();
    this.#delayMs = current + this.#smoothing * (felt - current);
    this.#delayAt = this.#clock.now();
    this.#onOutcome?.({ kind: request.kind, ran, queuedMs });
  }
}
