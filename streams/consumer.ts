/**
 * StreamConsumer: at-least-once consumption with the offset committed only after the handler's effects are
 * durable. One message per partition at a time (eachMessage, so a tracing instrumentation links each message to
 * its producer's span); bad messages go to the dead-letter sink and never block their partition.
 */
import { context as otelContext, trace } from '@opentelemetry/api';
import { DependencyUnavailableError, IllegalStateError, TimeoutError, toFailureRecord, type FailureRecord } from '../core/errors.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../core/logger.js';
import type { DeadLetterReason, DeadLetterSink } from './dead-letter.js';
import { decodeHeaders, extractTraceContext, rawHeadersToStrings, type MessageHeaders } from './headers.js';
import type { Consumer, EachMessagePayload, Kafka } from './kafka-client.js';
import { MessageDecodeError } from './validate.js';

export interface ConsumedMessage<T> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** Key as UTF-8, or null. */
  readonly key: string | null;
  readonly value: T;
  readonly headers: MessageHeaders;
  /** Broker/producer timestamp of the record, ms since the epoch. */
  readonly timestamp: number;
  /** 1 on first delivery to the handler, 2 on the first retry, and so on. */
  readonly attempt: number;
  /** Aborted when the consumer is destroyed or its drain deadline passes: long work should give up. */
  readonly signal: AbortSignal;
  /** Tells the group coordinator this member is alive (kafkajs rate-limits it; the consumer also calls it periodically). */
  heartbeat(): Promise<void>;
}

/** Resolve only once the message's effects are durable: the offset is committed right after. */
export type MessageHandler<T> = (message: ConsumedMessage<T>) => Promise<void>;

export interface TopicPartitions {
  readonly topic: string;
  readonly partitions: readonly number[];
}

export interface RebalanceHooks {
  /**
   * Partitions newly assigned to this member. No message of any partition is handed to the handler until the
   * returned promise settles (an actor host restores its actors here). A rejection is logged, not retried.
   */
  readonly onPartitionsAssigned?: (assigned: readonly TopicPartitions[]) => Promise<void> | void;
  /** Partitions this member lost (rebalance, crash or close). Runs before a following assignment's hook. */
  readonly onPartitionsRevoked?: (revoked: readonly TopicPartitions[]) => Promise<void> | void;
}

export interface RetryOptions {
  /** Handler attempts for one message, the first included, before it is dead-lettered. @default 5 */
  readonly maxAttempts?: number;
  /** @default 200 */
  readonly initialBackoffMs?: number;
  /** @default 10000 */
  readonly maxBackoffMs?: number;
}

export interface StreamConsumerOptions<T> {
  readonly kafka: Kafka;
  readonly groupId: string;
  readonly topics: readonly string[];
  /** Turns a record value into a message; throw (MessageDecodeError) for bad bytes or an unknown schema version. */
  readonly decode: (value: Buffer, headers: MessageHeaders) => T;
  readonly handler: MessageHandler<T>;
  readonly deadLetter: DeadLetterSink;
  readonly log: Logger;
  /** Partitions whose messages are handled at the same time (within a partition: one at a time). @default 1 */
  readonly partitionsConsumedConcurrently?: number;
  /** Where a group without committed offsets starts. @default true (earliest) */
  readonly fromBeginning?: boolean;
  readonly retry?: RetryOptions;
  /** How long close() lets in-flight handlers finish before it gives up on them (uncommitted). @default 10000 */
  readonly drainTimeoutMs?: number;
  readonly hooks?: RebalanceHooks;
  /** @default 30000 */
  readonly sessionTimeoutMs?: number;
  /** @default 3000 */
  readonly heartbeatIntervalMs?: number;
  /** Bounds what is fetched ahead of the handler per partition. @default 1048576 */
  readonly maxBytesPerPartition?: number;
  /** Bounds one fetch over all partitions. @default 10485760 */
  readonly maxBytes?: number;
  /** Longest a fetch waits at the broker for data (bounds close() latency too). @default 1000 */
  readonly maxWaitTimeMs?: number;
  /** start() gives up when the group has not been joined by then. @default 60000 */
  readonly startTimeoutMs?: number;
}

interface CompiledOptions<T> {
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly decode: (value: Buffer, headers: MessageHeaders) => T;
  readonly handler: MessageHandler<T>;
  readonly deadLetter: DeadLetterSink;
  readonly concurrency: number;
  readonly fromBeginning: boolean;
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly drainTimeoutMs: number;
  readonly hooks: RebalanceHooks;
  readonly heartbeatIntervalMs: number;
  readonly startTimeoutMs: number;
}

function compile<T>(o: StreamConsumerOptions<T>): CompiledOptions<T> {
  const positiveInt = (v: number | undefined, d: number, name: string): number => {
    const n = v ?? d;
    if (!Number.isInteger(n) || n < 1) throw new IllegalStateError(`StreamConsumer option ${name} must be a positive integer, got ${n}`);
    return n;
  };
  if (o.topics.length === 0) throw new IllegalStateError('StreamConsumer needs at least one topic');
  return {
    groupId: o.groupId,
    topics: [...o.topics],
    decode: o.decode,
    handler: o.handler,
    deadLetter: o.deadLetter,
    concurrency: positiveInt(o.partitionsConsumedConcurrently, 1, 'partitionsConsumedConcurrently'),
    fromBeginning: o.fromBeginning ?? true,
    maxAttempts: positiveInt(o.retry?.maxAttempts, 5, 'retry.maxAttempts'),
    initialBackoffMs: positiveInt(o.retry?.initialBackoffMs, 200, 'retry.initialBackoffMs'),
    maxBackoffMs: positiveInt(o.retry?.maxBackoffMs, 10_000, 'retry.maxBackoffMs'),
    drainTimeoutMs: positiveInt(o.drainTimeoutMs, 10_000, 'drainTimeoutMs'),
    hooks: o.hooks ?? {},
    heartbeatIntervalMs: positiveInt(o.heartbeatIntervalMs, 3000, 'heartbeatIntervalMs'),
    startTimeoutMs: positiveInt(o.startTimeoutMs, 60_000, 'startTimeoutMs'),
  };
}

/**
 * Lifecycle:
 * - `idle`: built; start() not called yet.
 * - `running`: joined the group, handling messages.
 * - `closing`: close() called: no new messages, in-flight handlers get the drain time, then disconnect.
 * - `closed`: disconnected; the instance cannot be restarted (build a new one).
 */
export type ConsumerState = 'idle' | 'running' | 'closing' | 'closed';

type Outcome = { readonly kind: 'done' } | { readonly kind: 'failed'; readonly error: unknown } | { readonly kind: 'abandoned' };

/** Dead-letter writes are retried this often before the message is left uncommitted for redelivery. */
const DEAD_LETTER_ATTEMPTS = 5;

export class StreamConsumer<T> {
  readonly #o: CompiledOptions<T>;
  readonly #log: Logger;
  readonly #consumer: Consumer;
  #state: ConsumerState = 'idle';
  #paused = false;
  /** Aborted when close() begins: retry back-offs stop waiting (the message stays uncommitted). */
  readonly #closing = new AbortController();
  /** Aborted at the drain deadline or by destroy(): handlers are abandoned (uncommitted). */
  readonly #abandon = new AbortController();
  /** Resolves when #abandon aborts (one listener for the consumer's life, not one per message). */
  readonly #abandoned = aborted(this.#abandon.signal);
  readonly #inFlight = new Set<Promise<void>>();
  #assignment = new Map<string, Set<number>>();
  /** Settles when the latest assignment/revocation hooks have run; message handling waits for it. */
  #barrier: Promise<void> = Promise.resolve();
  #closed: Promise<void> | undefined;
  /** Settles on the first group join (resolve) or on a crash kafkajs will not restart from (reject). */
  readonly #firstJoin: Promise<void>;
  #joined: () => void = () => undefined;
  #failed: (err: Error) => void = () => undefined;

  constructor(options: StreamConsumerOptions<T>) {
    this.#o = compile(options);
    this.#log = options.log.child({ component: 'stream-consumer', group_id: options.groupId });
    options.deadLetter.watch?.(this.#o.topics);
    this.#consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: this.#o.heartbeatIntervalMs,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 1024 * 1024,
      maxBytes: options.maxBytes ?? 10 * 1024 * 1024,
      maxWaitTimeInMs: options.maxWaitTimeMs ?? 1000,
      allowAutoTopicCreation: false,
    });
    this.#firstJoin = new Promise<void>((resolve, reject) => {
      this.#joined = resolve;
      this.#failed = reject;
    });
    this.#firstJoin.catch(() => undefined); // observed by start(); a late crash must not be an unhandled rejection
    const ev = this.#consumer.events;
    this.#consumer.on(ev.GROUP_JOIN, (e) => this.#onGroupJoin(e.payload.memberAssignment));
    this.#consumer.on(ev.REBALANCING, () => this.#log.info({}, 'consumer group is rebalancing'));
    this.#consumer.on(ev.CRASH, (e) => {
      // kafkajs restarts after retriable crashes (e.g. "coordinator is loading" right after the broker started).
      const fields = { err: e.payload.error.message, restart: e.payload.restart };
      if (e.payload.restart) this.#log.warn(fields, 'Kafka consumer crashed; kafkajs restarts it');
      else {
        this.#log.error(fields, 'Kafka consumer crashed and will not restart');
        this.#failed(e.payload.error);
      }
      // kafkajs disconnects on a crash: whatever we held is gone; a restart joins again and re-assigns.
      this.#revokeAll();
    });
  }

  get state(): ConsumerState {
    return this.#state;
  }

  /** Messages being handled right now (at most partitionsConsumedConcurrently). */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Partitions currently assigned to this member. */
  get assignment(): TopicPartitions[] {
    return [...this.#assignment].map(([topic, ps]) => ({ topic, partitions: [...ps].sort((a, b) => a - b) }));
  }

  /** Connects, subscribes and joins the group; resolves once the first assignment is known (startTimeoutMs). */
  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new IllegalStateError(`consumer cannot start when ${this.#state}`);
    this.#state = 'running';
    try {
      await this.#consumer.connect();
      await this.#consumer.subscribe({ topics: [...this.#o.topics], fromBeginning: this.#o.fromBeginning });
      await this.#consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: this.#o.concurrency,
        eachMessage: (payload) => this.#onMessage(payload),
      });
      const timer = new AbortController();
      await Promise.race([
        this.#firstJoin,
        sleep(this.#o.startTimeoutMs, undefined, { signal: timer.signal }).then(() => {
          throw new TimeoutError(`group not joined within ${this.#o.startTimeoutMs} ms`);
        }),
      ]).finally(() => timer.abort());
    } catch (err) {
      this.#state = 'closed';
      await this.#consumer.disconnect().catch(() => undefined);
      throw new DependencyUnavailableError(`Kafka consumer ${this.#o.groupId} could not start: ${errorText(err)}`, { cause: err });
    }
  }

  /** Stops fetching from every subscribed topic; messages already being handled finish. */
  pause(): void {
    if (this.#state !== 'running') return;
    this.#consumer.pause(this.#o.topics.map((topic) => ({ topic })));
    this.#paused = true;
  }

  resume(): void {
    if (this.#state !== 'running') return;
    this.#consumer.resume(this.#o.topics.map((topic) => ({ topic })));
    this.#paused = false;
  }

  /**
   * Drains: stops fetching, lets in-flight handlers finish and commits them (up to drainTimeoutMs; later ones
   * are abandoned uncommitted and will be redelivered), leaves the group and disconnects. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= this.#shutdown(this.#o.drainTimeoutMs);
    return this.#closed;
  }

  /** Abandons in-flight handlers at once (their messages stay uncommitted) and disconnects. */
  destroy(reason?: unknown): Promise<void> {
    this.#abandon.abort(reason ?? new IllegalStateError('consumer destroyed'));
    return this.close();
  }

  async #shutdown(drainTimeoutMs: number): Promise<void> {
    if (this.#state === 'idle' || this.#state === 'closed') {
      this.#state = 'closed';
      return;
    }
    this.#state = 'closing';
    this.#closing.abort();
    const deadline = setTimeout(() => this.#abandon.abort(new TimeoutError(`drain exceeded ${drainTimeoutMs} ms`)), drainTimeoutMs);
    try {
      // Drain while kafkajs still runs: its commitOffsets() is a silent no-op once stop() has begun. Pausing stops
      // fetching; messages already fetched are skipped uncommitted by #onMessage (state is no longer running).
      this.#consumer.pause(this.#o.topics.map((topic) => ({ topic })));
      await Promise.race([Promise.allSettled([...this.#inFlight]), this.#abandoned]);
      await this.#consumer.stop();
      await this.#consumer.disconnect();
    } catch (err) {
      this.#log.warn({ err: errorText(err) }, 'consumer disconnect failed');
    } finally {
      clearTimeout(deadline);
    }
    if (this.#abandon.signal.aborted && this.#inFlight.size > 0) {
      this.#log.warn({ abandoned: this.#inFlight.size }, 'consumer closed with handlers still running; their messages stay uncommitted');
    }
    this.#revokeAll();
    await this.#barrier;
    this.#state = 'closed';
  }

  #onGroupJoin(memberAssignment: Readonly<Record<string, readonly number[]>>): void {
    const next = new Map<string, Set<number>>();
    for (const [topic, ps] of Object.entries(memberAssignment)) if (ps.length > 0) next.set(topic, new Set(ps));
    const revoked = difference(this.#assignment, next);
    const assigned = difference(next, this.#assignment);
    this.#assignment = next;
    this.#joined();
    this.#log.info({ assignment: this.assignment }, 'consumer joined the group');
    this.#runHooks(revoked, assigned);
  }

  #revokeAll(): void {
    const revoked = difference(this.#assignment, new Map());
    this.#assignment = new Map();
    this.#runHooks(revoked, []);
  }

  #runHooks(revoked: TopicPartitions[], assigned: TopicPartitions[]): void {
    const { onPartitionsRevoked, onPartitionsAssigned } = this.#o.hooks;
    this.#barrier = this.#barrier.then(async () => {
      try {
        if (revoked.length > 0 && onPartitionsRevoked) await onPartitionsRevoked(revoked);
      } catch (err) {
        this.#log.error({ err: errorText(err) }, 'onPartitionsRevoked failed');
      }
      try {
        if (assigned.length > 0 && onPartitionsAssigned) await onPartitionsAssigned(assigned);
      } catch (err) {
        this.#log.error({ err: errorText(err) }, 'onPartitionsAssigned failed');
      }
    });
  }

  async #onMessage(payload: EachMessagePayload): Promise<void> {
    // Closing: leave the message uncommitted for the partition's next owner.
    if (this.#state !== 'running') return;
    // Wait for assignment hooks (actor restore), but never past an abandon (destroy / drain deadline).
    await Promise.race([this.#barrier, this.#abandoned]);
    if (this.#state !== 'running') return;
    const work = this.#process(payload);
    this.#inFlight.add(work);
    try {
      await work;
    } finally {
      this.#inFlight.delete(work);
    }
  }

  async #process(payload: EachMessagePayload): Promise<void> {
    const { topic, partition, message } = payload;
    let headers: MessageHeaders;
    let value: T;
    try {
      if (message.value === null) throw new MessageDecodeError('record has no value');
      headers = decodeHeaders(message.headers);
      value = this.#o.decode(message.value, headers);
    } catch (err) {
      if (await this.#deadLetter(payload, 'undecodable', err, 0)) await this.#commit(topic, partition, message.offset);
      return;
    }
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#runHandler(payload, headers, value, attempt);
      if (outcome.kind === 'abandoned') return;
      if (outcome.kind === 'done') {
        await this.#commit(topic, partition, message.offset);
        return;
      }
      const failure = toFailureRecord(outcome.error);
      const reason: DeadLetterReason | undefined = !failure.retryable
        ? 'handler_rejected'
        : attempt >= this.#o.maxAttempts
          ? 'retries_exhausted'
          : undefined;
      if (reason !== undefined) {
        if (await this.#deadLetter(payload, reason, outcome.error, attempt)) await this.#commit(topic, partition, message.offset);
        return;
      }
      const backoffMs = this.#backoff(attempt);
      this.#log.warn({ topic, partition, offset: message.offset, attempt, backoff_ms: backoffMs, code: failure.code }, 'handler failed, retrying');
      if (!(await this.#sleep(backoffMs, payload))) return; // closing: redelivered later
    }
  }

  async #runHandler(payload: EachMessagePayload, headers: MessageHeaders, value: T, attempt: number): Promise<Outcome> {
    const { topic, partition, message } = payload;
    const signal = this.#abandon.signal;
    if (signal.aborted) return { kind: 'abandoned' };
    const msg: ConsumedMessage<T> = {
      topic,
      partition,
      offset: message.offset,
      key: message.key === null ? null : message.key.toString('utf8'),
      value,
      headers,
      timestamp: Number(message.timestamp),
      attempt,
      signal,
      heartbeat: () => payload.heartbeat(),
    };
    // An instrumentation (kafkajs auto-instrumentation) may already run us under a `process` span linked to the
    // producer; only without one do we continue the producer's trace from the headers ourselves.
    const ctx = trace.getActiveSpan() ? otelContext.active() : extractTraceContext(headers);
    const beat = setInterval(() => {
      payload.heartbeat().catch((err: unknown) => this.#log.debug({ err: errorText(err) }, 'heartbeat failed'));
    }, this.#o.heartbeatIntervalMs);
    beat.unref();
    let onAbort: (() => void) | undefined;
    const abandoned = new Promise<Outcome>((resolve) => {
      onAbort = () => resolve({ kind: 'abandoned' });
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const run = otelContext.with(ctx, () => this.#o.handler(msg)).then(
        (): Outcome => ({ kind: 'done' }),
        (error: unknown): Outcome => ({ kind: 'failed', error }),
      );
      return await Promise.race([run, abandoned]);
    } finally {
      clearInterval(beat);
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  /** True once the dead letter is durable. False means: leave the message uncommitted (closing, or Kafka down). */
  async #deadLetter(payload: EachMessagePayload, reason: DeadLetterReason, err: unknown, attempts: number): Promise<boolean> {
    const { topic, partition, message } = payload;
    const error: FailureRecord = toFailureRecord(err);
    const record = {
      v: 1,
      type: 'dead_letter',
      reason,
      error,
      attempts,
      source: { topic, partition, offset: message.offset, timestamp: message.timestamp, groupId: this.#o.groupId },
      key: message.key === null ? null : message.key.toString('utf8'),
      headers: rawHeadersToStrings(message.headers),
      payloadBase64: message.value === null ? null : message.value.toString('base64'),
      deadLetteredAt: Date.now(),
    } as const;
    for (let i = 1; ; i++) {
      try {
        await this.#o.deadLetter.write(record);
        this.#log.warn({ topic, partition, offset: message.offset, reason, code: error.code, attempts }, 'message dead-lettered');
        return true;
      } catch (writeErr) {
        if (i >= DEAD_LETTER_ATTEMPTS) {
          // Throwing makes kafkajs re-fetch the message later instead of committing past it.
          throw new DependencyUnavailableError(`dead-letter write failed: ${errorText(writeErr)}`, { cause: writeErr });
        }
        this.#log.warn({ topic, partition, offset: message.offset, err: errorText(writeErr) }, 'dead-letter write failed, retrying');
        if (!(await this.#sleep(this.#backoff(i), payload))) return false;
      }
    }
  }

  async #commit(topic: string, partition: number, offset: string): Promise<void> {
    const next = (BigInt(offset) + 1n).toString();
    try {
      await this.#consumer.commitOffsets([{ topic, partition, offset: next }]);
    } catch (err) {
      // The effects are done; a lost commit only means a redelivery (at-least-once), so do not re-run the handler.
      this.#log.warn({ topic, partition, offset, err: errorText(err) }, 'offset commit failed; the message may be redelivered');
    }
  }

  #backoff(attempt: number): number {
    const exp = Math.min(this.#o.maxBackoffMs, this.#o.initialBackoffMs * 2 ** (attempt - 1));
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  /** Waits, heart-beating; false if the consumer started closing meanwhile. */
  async #sleep(ms: number, payload: EachMessagePayload): Promise<boolean> {
    const signal = this.#closing.signal;
    if (signal.aborted) return false;
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        clearInterval(beat);
        signal.removeEventListener('abort', onAbort);
        resolve(ok);
      };
      const onAbort = (): void => done(false);
      const timer = setTimeout(() => done(true), ms);
      const beat = setInterval(() => {
        payload.heartbeat().catch(() => undefined);
      }, this.#o.heartbeatIntervalMs);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function difference(a: ReadonlyMap<string, ReadonlySet<number>>, b: ReadonlyMap<string, ReadonlySet<number>>): TopicPartitions[] {
  const out: TopicPartitions[] = [];
  for (const [topic, ps] of a) {
    const other = b.get(topic);
    const only = [...ps].filter((p) => !other?.has(p)).sort((x, y) => x - y);
    if (only.length > 0) out.push({ topic, partitions: only });
  }
  return out;
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
