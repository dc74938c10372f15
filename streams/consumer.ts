/**
 * StreamConsumer: at-least-once consumption with the offset committed only after the handler's effects are
 * durable. One message per partition at a time (eachMessage, so a tracing instrumentation links each message to
 * its producer's span); bad messages go to the dead-letter sink and never block their partition. A running consumer
 * never stays dead: after a crash kafkajs will not restart from (a long broker outage), it rejoins by itself.
 */
import { context as otelContext, trace } from '@opentelemetry/api';
import { DependencyUnavailableError, IllegalStateError, TimeoutError, toFailureRecord, type FailureRecord } from '../core/errors.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../core/logger.js';
import type { DeadLetterReason, DeadLetterSink } from './dead-letter.js';
import { decodeHeaders, externalHeaders, extractTraceContext, rawHeadersToStrings, type MessageHeaders } from './headers.js';
import { fetchTopicOffsets, type Admin, type Consumer, type EachMessagePayload, type Kafka } from './kafka-client.js';
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
  /**
   * Leaves this message uncommitted and fetches it again from its offset: the handler could not take it now (e.g. every
   * task slot is busy). Pair it with pause(); the message comes back after resume().
   */
  requeue(): void;
}

/**
 * What a handler may hand back instead of finishing its work inline: a promise that settles once the message's effects
 * are durable (e.g. its rows are in a batch that was written). The consumer goes on with the next message at once and
 * commits offsets in order as they become durable, so batching sinks do not pay one write per message.
 */
export interface DeferredDurability {
  readonly durable: Promise<void>;
}

/** Resolve only once the message's effects are durable (the offset is committed right after), or defer durability. */
export type MessageHandler<T> = (message: ConsumedMessage<T>) => Promise<void | DeferredDurability>;

export interface TopicPartitions {
  readonly topic: string;
  readonly partitions: readonly number[];
}

export interface RebalanceHooks {
  /**
   * Partitions newly assigned to this member. No message of any partition is handed to the handler until the
   * returned promise resolves (an actor host restores its actors here); the consumer keeps heart-beating meanwhile. A
   * rejection is logged and the hook is called again with back-off (for the partitions still assigned) until it
   * succeeds, the assignment changes or the consumer closes: a failed restore never lets events through.
   */
  readonly onPartitionsAssigned?: (assigned: readonly TopicPartitions[]) => Promise<void> | void;
  /** Partitions this member lost (rebalance, crash or close). Runs before a following assignment's hook. */
  readonly onPartitionsRevoked?: (revoked: readonly TopicPartitions[]) => Promise<void> | void;
}

export interface RetryOptions {
  /**
   * Handler attempts for one message, the first included, before a retryable failure is dead-lettered. Infinity: a
   * retryable failure (a dependency down) is retried with back-off until it succeeds and is never dead-lettered; only
   * non-retryable failures are. @default 5
   */
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
  /**
   * Turns a record value into a message; throw (MessageDecodeError) for bad bytes or an unknown schema version.
   * `raw`: every record header as a string, with externalProducers only (empty otherwise).
   */
  readonly decode: (value: Buffer, headers: MessageHeaders, raw: Readonly<Record<string, string>>) => T;
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
  /** How long the coordinator waits for members to rejoin a rebalance. @default 60000 (kafkajs) */
  readonly rebalanceTimeoutMs?: number;
  /**
   * Commit offsets to the group. false for readers that always start from the beginning (a state tail, a control
   * stream): they leave no offsets, so their per-instance groups vanish from the broker once empty. @default true
   */
  readonly commitOffsets?: boolean;
  /**
   * Records come from producers outside Dalston (a public request topic): Dalston's own headers are optional (the
   * message id and enqueue time are then taken from the record's position and timestamp). @default false
   */
  readonly externalProducers?: boolean;
  /**
   * Turns a record without a value (a compaction tombstone) into a message for the handler. Without it such a record
   * is dead-lettered as undecodable.
   */
  readonly onTombstone?: (key: string | null) => T;
}

interface CompiledOptions<T> {
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly decode: (value: Buffer, headers: MessageHeaders, raw: Readonly<Record<string, string>>) => T;
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
  readonly sessionTimeoutMs: number;
  readonly commitOffsets: boolean;
  readonly externalProducers: boolean;
  readonly onTombstone: ((key: string | null) => T) | undefined;
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
/** Back-off of #rejoin() after a crash kafkajs gave up on: first wait, and the most it doubles to. */
const REJOIN_FIRST_DELAY_MS = 1000;
const REJOIN_MAX_DELAY_MS = 30_000;

function compile<T>(o: StreamConsumerOptions<T>): CompiledOptions<T> {
  const positiveInt = (v: number | undefined, d: number, name: string): number => {
    const n = v ?? d;
    if (!Number.isInteger(n) || n < 1) throw new IllegalStateError(`StreamConsumer option ${name} must be a positive integer, got ${n}`);
    return n;
  };
  const maxAttempts = o.retry?.maxAttempts === Number.POSITIVE_INFINITY ? Number.POSITIVE_INFINITY : positiveInt(o.retry?.maxAttempts, 5, 'retry.maxAttempts');
  if (o.topics.length === 0) throw new IllegalStateError('StreamConsumer needs at least one topic');
  return {
    groupId: o.groupId,
    topics: [...o.topics],
    decode: o.decode,
    handler: o.handler,
    deadLetter: o.deadLetter,
    concurrency: positiveInt(o.partitionsConsumedConcurrently, 1, 'partitionsConsumedConcurrently'),
    fromBeginning: o.fromBeginning ?? true,
    maxAttempts,
    initialBackoffMs: positiveInt(o.retry?.initialBackoffMs, 200, 'retry.initialBackoffMs'),
    maxBackoffMs: positiveInt(o.retry?.maxBackoffMs, 10_000, 'retry.maxBackoffMs'),
    drainTimeoutMs: positiveInt(o.drainTimeoutMs, 10_000, 'drainTimeoutMs'),
    hooks: o.hooks ?? {},
    heartbeatIntervalMs: positiveInt(o.heartbeatIntervalMs, 3000, 'heartbeatIntervalMs'),
    startTimeoutMs: positiveInt(o.startTimeoutMs, 60_000, 'startTimeoutMs'),
    sessionTimeoutMs: positiveInt(o.sessionTimeoutMs, 30_000, 'sessionTimeoutMs'),
    commitOffsets: o.commitOffsets ?? true,
    externalProducers: o.externalProducers ?? false,
    onTombstone: o.onTombstone,
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

type Outcome =
  | { readonly kind: 'done'; readonly durable?: Promise<void> }
  | { readonly kind: 'requeued' }
  | { readonly kind: 'failed'; readonly error: unknown }
  | { readonly kind: 'abandoned' };

/** Offsets handled but not yet durable, per partition, in arrival order: committed as a contiguous prefix. */
interface PendingOffset {
  readonly offset: string;
  state: 'waiting' | 'durable' | 'failed';
}

/** Dead-letter writes are retried this often before the message is left uncommitted for redelivery. */
const DEAD_LETTER_ATTEMPTS = 5;

export class StreamConsumer<T> {
  readonly #o: CompiledOptions<T>;
  readonly #log: Logger;
  readonly #kafka: Kafka;
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
  /** Hook runs queued or running: while 0, messages need not wait on the barrier (the hot path). */
  #hooksPending = 0;
  /** Bumped on every group join: a retrying assignment hook stops once a newer assignment exists. */
  #joins = 0;
  /** Between the coordinator announcing a rebalance and our next join: handlers should let go rather than wait. */
  #rebalancing = false;
  /** Last time the coordinator confirmed our membership (join, heartbeat, commit): the ownership lease. */
  #aliveAt = 0;
  readonly #pending = new Map<string, PendingOffset[]>();
  /** Next offset to read per `topic:partition`, whatever became of the record (handled, dead-lettered, skipped). */
  readonly #positions = new Map<string, bigint>();
  readonly #durableWork = new Set<Promise<void>>();
  /**
   * Requeues (seeks) kafkajs has not applied yet, by `topic:partition`. kafkajs applies a seek at the partition's next
   * fetch, and only while the partition is assigned: a seek made as its partition is revoked stays pending in kafkajs
   * and is applied when the partition comes back, however long after and however far the group has read since.
   */
  readonly #seeks = new Set<string>();
  /** Partitions revoked with a seek still pending in kafkajs: when they come back, that seek must be overridden. */
  readonly #staleSeeks = new Set<string>();
  /** Per partition: the group's committed offset when a stale seek was overridden; records below it are past. */
  readonly #floors = new Map<string, bigint>();
  /**
   * Highest offset the broker acknowledged per `topic:partition` (kafkajs's commit event). kafkajs returns from a
   * commit it drops (its fetch loop stopped by a crash) as from one it made: only this tells them apart.
   */
  readonly #acked = new Map<string, bigint>();
  #closed: Promise<void> | undefined;
  /** Settles on the first group join (resolve) or on a crash kafkajs will not restart from (reject). */
  readonly #firstJoin: Promise<void>;
  #joined: () => void = () => undefined;
  /** True once the group was joined: a later crash kafkajs gives up on is recovered from by #rejoin(). */
  #everJoined = false;
  #rejoining = false;
  #failed: (err: Error) => void = () => undefined;

  constructor(options: StreamConsumerOptions<T>) {
    this.#o = compile(options);
    this.#log = options.log.child({ component: 'stream-consumer', group_id: options.groupId });
    this.#kafka = options.kafka;
    options.deadLetter.watch?.(this.#o.topics);
    this.#consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: this.#o.sessionTimeoutMs,
      ...(options.rebalanceTimeoutMs !== undefined ? { rebalanceTimeout: options.rebalanceTimeoutMs } : {}),
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
    this.#consumer.on(ev.REBALANCING, () => {
      this.#rebalancing = true;
      this.#log.info({}, 'consumer group is rebalancing');
    });
    this.#consumer.on(ev.COMMIT_OFFSETS, (e) => {
      for (const t of e.payload.topics) {
        for (const p of t.partitions) {
          const key = `${t.topic}:${p.partition}`;
          const offset = BigInt(p.offset);
          if (offset > (this.#acked.get(key) ?? -1n)) this.#acked.set(key, offset);
        }
      }
    });
    this.#consumer.on(ev.HEARTBEAT, () => {
      this.#aliveAt = Date.now();
    });
    this.#consumer.on(ev.CRASH, (e) => {
      // kafkajs restarts after retriable crashes (e.g. "coordinator is loading" right after the broker started).
      const fields = { err: e.payload.error.message, restart: e.payload.restart };
      if (e.payload.restart) this.#log.warn(fields, 'Kafka consumer crashed; kafkajs restarts it');
      else if (this.#everJoined && this.#state === 'running') {
        // kafkajs gives up on some errors a long broker outage causes ("Failed to find group coordinator"); a
        // running service must not be left with a dead consumer while its process looks healthy: rejoin ourselves.
        this.#log.error(fields, 'Kafka consumer crashed and kafkajs will not restart it; rejoining');
        void this.#rejoin();
      } else {
        this.#log.error(fields, 'Kafka consumer crashed and will not restart');
        this.#failed(e.payload.error);
      }
      // kafkajs disconnects on a crash: whatever we held is gone (pending seeks too: a restart builds a new group
      // member); a restart joins again and re-assigns.
      this.#seeks.clear();
      this.#staleSeeks.clear();
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

  /**
   * Until when this member may act as the owner of its partitions: the coordinator evicts a member only after a full
   * session timeout without a heartbeat, so ownership is certain until (last confirmation + session timeout). 0 when
   * the member holds nothing.
   */
  get leaseUntil(): number {
    return this.#assignment.size === 0 || this.#aliveAt === 0 ? 0 : this.#aliveAt + this.#o.sessionTimeoutMs;
  }

  /** True while a rebalance is under way: the group waits for this member's handlers before it can finish. */
  get rebalancing(): boolean {
    return this.#rebalancing;
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
      await this.#run();
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

  /** Starts kafkajs's fetch loop over our handler (at start, and again after a crash). */
  #run(): Promise<void> {
    return this.#consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: this.#o.concurrency,
      eachMessage: (payload) => this.#onMessage(payload),
    });
  }

  /**
   * After a crash kafkajs does not restart from (it has disconnected the consumer): connects and runs it again, with
   * a doubling back-off, until it runs or the consumer is closed. The subscription is kept by kafkajs.
   */
  async #rejoin(): Promise<void> {
    if (this.#rejoining) return;
    this.#rejoining = true;
    try {
      for (let delayMs = REJOIN_FIRST_DELAY_MS; this.#state === 'running'; delayMs = Math.min(delayMs * 2, REJOIN_MAX_DELAY_MS)) {
        await sleep(delayMs, undefined, { signal: this.#closing.signal }).catch(() => undefined);
        if (this.#state !== 'running') return;
        try {
          await this.#consumer.connect();
          await this.#run();
          if (this.#paused) this.#consumer.pause(this.#o.topics.map((topic) => ({ topic })));
          this.#log.info({}, 'consumer running again after the crash');
          return;
        } catch (err) {
          this.#log.warn({ err: errorText(err), retry_in_ms: Math.min(delayMs * 2, REJOIN_MAX_DELAY_MS) }, 'consumer could not rejoin yet');
          await this.#consumer.disconnect().catch(() => undefined);
        }
      }
    } finally {
      this.#rejoining = false;
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
      await Promise.race([Promise.allSettled([...this.#durableWork]), this.#abandoned]);
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
    this.#rebalancing = false;
    this.#joins++;
    this.#aliveAt = Date.now();
    for (const r of revoked) {
      for (const p of r.partitions) {
        const key = `${r.topic}:${p}`;
        this.#pending.delete(key);
        this.#floors.delete(key);
        if (this.#seeks.delete(key)) this.#staleSeeks.add(key);
      }
    }
    this.#everJoined = true;
    this.#joined();
    this.#log.info({ assignment: this.assignment }, 'consumer joined the group');
    this.#runHooks(revoked, assigned);
  }

  #revokeAll(): void {
    const revoked = difference(this.#assignment, new Map());
    this.#assignment = new Map();
    this.#joins++;
    this.#pending.clear();
    this.#runHooks(revoked, []);
  }

  #stillAssigned(assigned: readonly TopicPartitions[]): TopicPartitions[] {
    return assigned
      .map((a) => ({ topic: a.topic, partitions: a.partitions.filter((p) => this.#assignment.get(a.topic)?.has(p)) }))
      .filter((a) => a.partitions.length > 0);
  }

  #runHooks(revoked: TopicPartitions[], assigned: TopicPartitions[]): void {
    const { onPartitionsRevoked, onPartitionsAssigned } = this.#o.hooks;
    this.#hooksPending++;
    this.#barrier = this.#barrier.then(() => this.#hooks(revoked, assigned, onPartitionsRevoked, onPartitionsAssigned)).finally(() => {
      this.#hooksPending--;
    });
  }

  async #hooks(
    revoked: TopicPartitions[], assigned: TopicPartitions[],
    onPartitionsRevoked: RebalanceHooks['onPartitionsRevoked'], onPartitionsAssigned: RebalanceHooks['onPartitionsAssigned'],
  ): Promise<void> {
    try {
      if (revoked.length > 0 && onPartitionsRevoked) await onPartitionsRevoked(revoked);
    } catch (err) {
      this.#log.error({ err: errorText(err) }, 'onPartitionsRevoked failed');
    }
    const staleSeeks = assigned.some((a) => a.partitions.some((p) => this.#staleSeeks.has(`${a.topic}:${p}`)));
    if (assigned.length === 0 || (!onPartitionsAssigned && !staleSeeks)) return;
    const joins = this.#joins;
    for (let attempt = 1; ; attempt++) {
      // A newer assignment or revocation queued its own hooks; stop retrying this one.
      if (this.#joins !== joins || this.#state !== 'running') return;
      const still = this.#stillAssigned(assigned);
      if (still.length === 0) return;
      let step = 'overriding a stale seek';
      try {
        await this.#overrideStaleSeeks(still);
        step = 'onPartitionsAssigned';
        await onPartitionsAssigned?.(still);
        return;
      } catch (err) {
        const backoffMs = this.#backoff(Math.min(attempt, 6));
        this.#log.error({ err: errorText(err), attempt, backoff_ms: backoffMs }, `${step} failed; retrying, messages wait`);
        await sleep(backoffMs, undefined, { signal: this.#closing.signal }).catch(() => undefined);
      }
    }
  }

  /**
   * Partitions that came back with a seek of ours still pending in kafkajs (see #seeks) are read on from the group's
   * committed offset instead, and any record below it fetched meanwhile is skipped: the member neither handles again
   * what others handled while it was away nor commits an offset below theirs.
   */
  async #overrideStaleSeeks(assigned: readonly TopicPartitions[]): Promise<void> {
    const stale = assigned
      .map((a) => ({ topic: a.topic, partitions: a.partitions.filter((p) => this.#staleSeeks.has(`${a.topic}:${p}`)) }))
      .filter((a) => a.partitions.length > 0);
    if (stale.length === 0) return;
    const admin = this.#kafka.admin();
    await admin.connect();
    try {
      for (const { topic, partitions } of stale) {
        const [offsets] = await admin.fetchOffsets({ groupId: this.#o.groupId, topics: [topic] });
        for (const partition of partitions) {
          const key = `${topic}:${partition}`;
          const committed = offsets?.partitions.find((o) => o.partition === partition)?.offset;
          // Nothing committed (-1): the pending seek is where the group stands anyway.
          if (committed !== undefined && BigInt(committed) >= 0n) {
            this.#consumer.seek({ topic, partition, offset: committed });
            this.#seeks.add(key);
            this.#floors.set(key, BigInt(committed));
            this.#log.info({ topic, partition, offset: committed }, 'a requeue left pending when its partition moved away was overridden: reading on from the committed offset');
          }
          this.#staleSeeks.delete(key);
        }
      }
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /**
   * Waits for the assignment hooks (actor restore) while heart-beating, so a slow restore does not get this member
   * evicted. False when the wait should end without handling the message (closing, abandoned, or a rebalance began:
   * the message stays uncommitted and is fetched again).
   */
  async #awaitBarrier(payload: EachMessagePayload): Promise<boolean> {
    if (this.#hooksPending === 0) return true;
    let settled = false;
    const barrier = this.#barrier.then(() => {
      settled = true;
    });
    let rebalancing = false;
    const beat = setInterval(() => {
      payload.heartbeat().catch((err: unknown) => {
        // kafkajs rejects the heartbeat once the group rebalances: let go so the member can rejoin.
        rebalancing = true;
        this.#log.debug({ err: errorText(err) }, 'heartbeat failed while waiting for the assignment hooks');
      });
    }, Math.min(this.#o.heartbeatIntervalMs, 1000));
    try {
      while (!settled) {
        await Promise.race([barrier, this.#abandoned, sleep(100)]);
        if (this.#abandon.signal.aborted || this.#state !== 'running' || rebalancing) return false;
      }
      return true;
    } finally {
      clearInterval(beat);
    }
  }

  async #onMessage(payload: EachMessagePayload): Promise<void> {
    const key = `${payload.topic}:${payload.partition}`;
    // kafkajs delivers nothing of a partition while a seek of it is pending: this delivery means any was applied.
    this.#seeks.delete(key);
    // Closing: leave the message uncommitted for the partition's next owner.
    if (this.#state !== 'running') return;
    // Wait for assignment hooks (actor restore), but never past an abandon (destroy / drain deadline).
    if (!(await this.#awaitBarrier(payload))) {
      this.#requeue(payload);
      return;
    }
    if (this.#state !== 'running') return;
    // Fetched from a stale seek before it was overridden: the group is past this record, and so is the next fetch.
    const floor = this.#floors.get(key);
    if (floor !== undefined && BigInt(payload.message.offset) < floor) return;
    const work = this.#process(payload);
    this.#inFlight.add(work);
    try {
      await work;
    } finally {
      this.#inFlight.delete(work);
    }
  }

  /**
   * Resolves once this consumer has gone past every record its topics held when called (for readers that must see
   * a stream's history before acting, e.g. cancels before taking tasks). Needs the whole topic assigned to it.
   */
  async waitCaughtUp(admin: Admin, timeoutMs = 30_000): Promise<void> {
    const targets: { key: string; high: bigint }[] = [];
    for (const topic of this.#o.topics) {
      for (const o of await fetchTopicOffsets(admin, topic)) {
        if (BigInt(o.high) > BigInt(o.low)) targets.push({ key: `${topic}:${o.partition}`, high: BigInt(o.high) });
      }
    }
    const deadline = Date.now() + timeoutMs;
    while (targets.some((t) => (this.#positions.get(t.key) ?? 0n) < t.high)) {
      if (Date.now() > deadline) throw new TimeoutError(`${this.#o.groupId} did not catch up with ${this.#o.topics.join(',')} within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  async #process(payload: EachMessagePayload): Promise<void> {
    await this.#processRecord(payload);
    const { topic, partition, message } = payload;
    this.#positions.set(`${topic}:${partition}`, BigInt(message.offset) + 1n);
  }

  async #processRecord(payload: EachMessagePayload): Promise<void> {
    const { topic, partition, message } = payload;
    let headers: MessageHeaders;
    let value: T;
    try {
      // Only a consumer of outside producers' records needs every header (e.g. a signature): others skip the copy.
      const raw = this.#o.externalProducers ? rawHeadersToStrings(message.headers) : NO_HEADERS;
      headers = this.#o.externalProducers ? externalHeaders(message.headers, `${topic}/${partition}/${message.offset}`, Number(message.timestamp)) : decodeHeaders(message.headers);
      if (message.value === null) {
        if (!this.#o.onTombstone) throw new MessageDecodeError('record has no value');
        value = this.#o.onTombstone(message.key === null ? null : message.key.toString('utf8'));
      } else {
        value = this.#o.decode(message.value, headers, raw);
      }
    } catch (err) {
      if (await this.#deadLetter(payload, 'undecodable', err, 0)) await this.#finished(topic, partition, message.offset);
      return;
    }
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#runHandler(payload, headers, value, attempt);
      if (outcome.kind === 'abandoned') return;
      if (outcome.kind === 'requeued') {
        this.#requeue(payload);
        return;
      }
      if (outcome.kind === 'done') {
        await this.#finished(topic, partition, message.offset, outcome.durable);
        return;
      }
      const failure = toFailureRecord(outcome.error);
      const reason: DeadLetterReason | undefined = !failure.retryable
        ? 'handler_rejected'
        : attempt >= this.#o.maxAttempts
          ? 'retries_exhausted'
          : undefined;
      if (reason !== undefined) {
        if (await this.#deadLetter(payload, reason, outcome.error, attempt)) await this.#finished(topic, partition, message.offset);
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
    const base = {
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
    let requeued = false;
    const msg: ConsumedMessage<T> = {
      ...base,
      requeue: () => {
        requeued = true;
      },
    };
    let onAbort: (() => void) | undefined;
    const abandoned = new Promise<Outcome>((resolve) => {
      onAbort = () => resolve({ kind: 'abandoned' });
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const run = otelContext.with(ctx, () => this.#o.handler(msg)).then(
        (result): Outcome => (requeued ? { kind: 'requeued' } : result ? { kind: 'done', durable: result.durable } : { kind: 'done' }),
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

  /** Fetches the message again from its offset (kafkajs resolves seeks in memory when it does not auto-commit). */
  #requeue(payload: EachMessagePayload): void {
    if (this.#state !== 'running') return;
    try {
      this.#consumer.seek({ topic: payload.topic, partition: payload.partition, offset: payload.message.offset });
      this.#seeks.add(`${payload.topic}:${payload.partition}`);
    } catch (err) {
      this.#log.warn({ topic: payload.topic, partition: payload.partition, err: errorText(err) }, 'could not requeue a message');
    }
  }

  /**
   * A message is done with (handled, or dead-lettered). A commit names the next offset to read, so it covers every
   * earlier message of the partition too: while an earlier message's effects are still on their way to durability,
   * this one waits behind it in the partition's queue instead of being committed at once (committing it would let a
   * crash lose the earlier message's effects).
   */
  async #finished(topic: string, partition: number, offset: string, durable?: Promise<void>): Promise<void> {
    const earlierPending = (this.#pending.get(`${topic}:${partition}`)?.length ?? 0) > 0;
    if (durable === undefined && !earlierPending) await this.#commit(topic, partition, offset);
    else this.#deferCommit(topic, partition, offset, durable ?? Promise.resolve());
  }

  /** Records a handled offset whose effects become durable later; commits the contiguous durable prefix. */
  #deferCommit(topic: string, partition: number, offset: string, durable: Promise<void>): void {
    const key = `${topic}:${partition}`;
    const queue = this.#pending.get(key) ?? [];
    this.#pending.set(key, queue);
    const entry: PendingOffset = { offset, state: 'waiting' };
    queue.push(entry);
    const work = durable.then(
      async () => {
        entry.state = 'durable';
        // The queue may have been replaced by a revocation: then the next owner re-reads from the committed offset.
        if (this.#pending.get(key) !== queue) return;
        let last: PendingOffset | undefined;
        while (queue[0]?.state === 'durable') last = queue.shift();
        if (last) await this.#commit(topic, partition, last.offset);
      },
      (err: unknown) => {
        // Left uncommitted: the message is redelivered after a restart or rebalance.
        entry.state = 'failed';
        this.#log.warn({ topic, partition, offset, err: errorText(err) }, 'deferred effects failed; the offset stays uncommitted');
      },
    );
    this.#durableWork.add(work);
    void work.finally(() => this.#durableWork.delete(work));
  }

  async #commit(topic: string, partition: number, offset: string): Promise<void> {
    if (!this.#o.commitOffsets) return;
    const next = (BigInt(offset) + 1n).toString();
    try {
      await this.#consumer.commitOffsets([{ topic, partition, offset: next }]);
      if ((this.#acked.get(`${topic}:${partition}`) ?? -1n) < BigInt(next)) {
        this.#log.warn({ topic, partition, offset }, 'offset commit dropped by kafkajs (its fetch loop had stopped); the message may be redelivered');
        return;
      }
      this.#aliveAt = Date.now();
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
