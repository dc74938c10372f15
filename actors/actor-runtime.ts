/**
 * The actor runtime shared by every kind of actor the actor hosts run (job actors over jobs.events/jobs.state, session
 * actors over realtime.events/sessions.state): one actor per live key on the event partitions Kafka assigns this host,
 * and the cycle for each event: transition (pure, supplied by the kind) → persist the snapshot, with the transition's
 * effects in its outbox, to the compacted state topic (acknowledged) → send the outbox (supplied by the kind) → commit
 * the event's offset. If a send fails the event is retried: the transition then changes nothing, but the runtime knows
 * the persisted outbox was not sent and sends it first; a host that takes an actor over sends a recent snapshot's
 * outbox once more. Receivers tolerate the duplicate, so nothing is lost and nothing is doubled.
 *
 * Ownership is fenced three ways (actors/partition-ownership.ts): a host acts only while its group membership lease
 * holds; every takeover writes a partition claim with a higher epoch that stamps every later snapshot, so readers
 * prefer the new owner's and an old owner that reads the claim stops; and an owner that reads a stale owner's late
 * snapshot of one of its actors writes its own again, so compaction keeps the right one.
 */
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { KeyedMailbox } from '../core/mailbox.js';
import { LOG } from '../core/observability-names.js';
import {
  StreamConsumer, newMessageHeaders,
  type Admin, type ConsumedMessage, type DeadLetterWriter, type Kafka, type MessageSender, type PartitionClaim, type TopicPartitions,
} from '../streams/index.js';
import { NotOwnerError, PartitionOwnership } from './partition-ownership.js';
import { StateTail, assertSamePartitionCount, type TailCodec } from './state-tail.js';

/** The fields the runtime reads and stamps on every kind of actor snapshot. */
export interface ActorSnapshot {
  readonly requestId?: string;
  readonly tenantId?: string;
  readonly outbox?: readonly unknown[];
  readonly persistedAt?: number;
  readonly epoch?: number;
}

export interface LiveActor<S> {
  readonly id: string;
  readonly partition: number;
  state: S;
  /** False until the outbox of `state`'s revision has been sent by this host. */
  outboxSent: boolean;
  timer?: NodeJS.Timeout;
}

/** One event (or timer) for one actor, as the kind's step sees it; the methods are the runtime's half of the cycle. */
export interface StepContext<S, I> {
  readonly id: string;
  readonly input: I;
  readonly partition: number;
  readonly requestId?: string;
  /** The actor's state before this input; undefined for a new actor. */
  readonly before?: S;
  readonly now: number;
  /** Carries the actor's key and request id. */
  readonly log: Logger;
  /** Persists `state` (its outbox set) under our epoch, sends its outbox, makes it the live state; the stamped state. */
  commit(state: S): Promise<S>;
  /** Keeps `state` in memory only (a change that needs no snapshot). */
  keep(state: S): void;
  /** Nothing changed (a replay, a stale attempt, a timer a moment early): the actor's timer is armed again. */
  unchanged(): void;
  /** Removes the actor and its snapshot (a compaction tombstone). */
  remove(): Promise<void>;
}

/** What one kind of actor supplies: its topics, its codec, its transition step, its effects and its timer. */
export interface ActorKind<S extends ActorSnapshot, E extends I, I extends { readonly type: string }> {
  /** Singular and plural nouns for logs: `job`/`jobs`, `session`/`sessions`. */
  readonly noun: string;
  readonly nouns: string;
  /** How the log lines name a partition and the live actors ('partition'/'actors', 'session partition'/'sessions'): tests and benches read them. */
  readonly partitionNoun: string;
  readonly actorsNoun: string;
  /** The structured-log key of the actor id (LOG.jobId, LOG.sessionId). */
  readonly logKey: string;
  /** Full (prefixed) topic names and group ids. */
  readonly eventsTopic: string;
  readonly stateTopic: string;
  readonly groupId: string;
  readonly tailGroupPrefix: string;
  readonly codec: TailCodec<S>;
  decodeEvent(value: Buffer): E;
  eventKey(event: E): string;
  /** The snapshot record's value. */
  encodeSnapshot(state: S): Buffer;
  /** The state a restored snapshot resumes with (e.g. in-flight attempts' clocks restarted). */
  restore(state: S, now: number): S;
  isTerminal(state: S): boolean;
  nextWakeAt(state: S): number | undefined;
  readonly timerInput: I;
  /**
   * Without a live actor: 'apply' creates one (the step sees no state), 'ignore' drops the input (a replay for a
   * finished actor, an event for one this host never knew), 'remove' tombstones the finished actor's snapshot.
   */
  withoutLive(input: I, finished: { readonly status: string } | undefined): 'apply' | 'ignore' | 'remove';
  /** An input for a finished actor, dropped: the kind may still answer it, best effort (e.g. stop a redundant task run). */
  finishedInput?(id: string, input: I, log: Logger): Promise<void>;
  /** Runs the transition and calls exactly one of the context's commit, keep, unchanged or remove. */
  step(ctx: StepContext<S, I>): Promise<void>;
  /** Sends the effects in the snapshot's outbox; each must be idempotent (a takeover sends them again). */
  sendOutbox(state: S): Promise<void>;
}

/** What an actor host is connected to. */
export interface ActorHostConnections {
  readonly kafka: Kafka;
  readonly admin: Admin;
  /** The process's producer (or a wrapper of it: tests inject send failures here). */
  readonly producer: MessageSender;
  readonly deadLetter: DeadLetterWriter;
  readonly clock: Clock;
  readonly log: Logger;
}

/** Tuning shared by every kind of actor host. */
export interface ActorHostTuning {
  /** Event partitions handled at the same time. @default 6 */
  readonly concurrency?: number;
  /** Group session timeout of the events consumer: the ownership lease. @default 10000 */
  readonly sessionTimeoutMs?: number;
  /** How long the group waits for members to rejoin a rebalance. @default 60000 */
  readonly rebalanceTimeoutMs?: number;
  /** Finished actors' snapshots are removed from the state topic (a tombstone) this long after they finish. @default 3600000 */
  readonly finishedRetentionMs?: number;
  /** How often finished actors past their retention are tombstoned. @default 60000 */
  readonly sweepIntervalMs?: number;
  /**
   * A snapshot older than this when a host takes its actor over had its outbox sent: its writer stayed alive that long
   * after persisting it, and a writer whose sends keep failing writes the snapshot again before retrying them (so it
   * stays recent). Only recent outboxes are re-sent on takeover, instead of re-sending every waiting actor's effects on
   * every rebalance (which made engines run the same task again and again). @default 60000
   */
  readonly outboxResendWindowMs?: number;
  /** Testing only: runs before each restore (fault injection: a slow or failing restore). */
  readonly beforeRestore?: (partitions: readonly number[]) => Promise<void>;
}

export interface ActorRuntimeOptions extends ActorHostConnections, ActorHostTuning {
  /** The host's log component, e.g. `actor-host`. */
  readonly component: string;
  readonly instanceId: string;
  /** Longest an events fetch waits at the broker. */
  readonly maxWaitTimeMs: number;
}

export class ActorRuntime<S extends ActorSnapshot, E extends I, I extends { readonly type: string }> {
  readonly #o: ActorRuntimeOptions;
  readonly #kind: ActorKind<S, E, I>;
  readonly #log: Logger;
  readonly #mailbox = new KeyedMailbox(10_000);
  readonly #events: StreamConsumer<E>;
  readonly #tail: StateTail<S>;
  readonly #actors = new Map<string, LiveActor<S>>();
  readonly #owned: PartitionOwnership;
  /** Owned partitions whose actors are all restored (ownership starts before restoring: restored actors send). */
  readonly #restored = new Set<number>();
  #sweepTimer?: NodeJS.Timeout;
  #closing = false;

  constructor(kind: ActorKind<S, E, I>, options: ActorRuntimeOptions) {
    this.#kind = kind;
    this.#o = options;
    this.#log = options.log.child({ component: options.component, instance: options.instanceId });
    this.#tail = new StateTail<S>({
      kafka: options.kafka, admin: options.admin, topic: kind.stateTopic, groupPrefix: kind.tailGroupPrefix,
      deadLetter: options.deadLetter, log: options.log, codec: kind.codec,
      onClaim: (c) => this.#onClaim(c),
      onSnapshot: (s, p) => this.#onSnapshotRead(s, p),
    });
    const sessionTimeoutMs = options.sessionTimeoutMs ?? 10_000;
    this.#events = new StreamConsumer<E>({
      kafka: options.kafka,
      groupId: kind.groupId,
      topics: [kind.eventsTopic],
      decode: (value) => kind.decodeEvent(value),
      handler: (m) => this.#onEvent(m),
      deadLetter: options.deadLetter,
      log: options.log,
      partitionsConsumedConcurrently: options.concurrency ?? 6,
      hooks: { onPartitionsAssigned: (a) => this.#onAssigned(a), onPartitionsRevoked: (r) => this.#onRevoked(r) },
      // A valid event is never dropped because Kafka, the store or a send is down: it waits until it can be applied.
      retry: { maxAttempts: Number.POSITIVE_INFINITY, maxBackoffMs: 5000 },
      maxWaitTimeMs: options.maxWaitTimeMs,
      sessionTimeoutMs,
      ...(options.rebalanceTimeoutMs !== undefined ? { rebalanceTimeoutMs: options.rebalanceTimeoutMs } : {}),
    });
    this.#owned = new PartitionOwnership({
      owner: options.instanceId, stateTopic: kind.stateTopic, producer: options.producer, tail: this.#tail, lease: this.#events,
      clock: options.clock, sessionTimeoutMs, closing: () => this.#closing, groupLabel: `${kind.noun} group`,
    });
  }

  get #resendWindowMs(): number {
    return this.#o.outboxResendWindowMs ?? 60_000;
  }

  get liveCount(): number {
    return this.#actors.size;
  }

  get ownedPartitions(): number[] {
    return this.#owned.partitions;
  }

  /** Owned partitions whose restore has finished: every live actor on them is in memory. */
  get restoredPartitions(): number[] {
    return this.#owned.partitions.filter((p) => this.#restored.has(p));
  }

  /** The state tail's consumer group (per instance; it commits nothing, so it vanishes from the broker once empty). */
  get stateTailGroup(): string {
    return this.#tail.groupId;
  }

  /** The actor's state as this host knows it: its live actor, else the latest snapshot read from the state topic. */
  state(id: string): S | undefined {
    return this.#actors.get(id)?.state ?? this.#tail.get(id);
  }

  /** Refuses to start when the events and state topics differ in partition count (hosts would restore the wrong actors). */
  async start(): Promise<void> {
    const { eventsTopic: events, stateTopic: state } = this.#kind;
    const meta = await this.#o.admin.fetchTopicMetadata({ topics: [events, state] });
    const count = (t: string): number => meta.topics.find((m) => m.name === t)?.partitions.length ?? 0;
    if (count(events) === 0 || count(state) === 0) throw new ConfigError(`topics ${events} and ${state} must exist before a ${this.#kind.noun} host starts`);
    assertSamePartitionCount(events, count(events), state, count(state));
    await this.#tail.start();
    // Join only once the tail has read what exists: the first restore then waits for nothing but new records.
    await this.#tail.waitCaughtUp(Array.from({ length: count(state) }, (_, i) => i), 120_000);
    await this.#events.start();
    this.#sweepTimer = setInterval(() => void this.#sweepFinished(), this.#o.sweepIntervalMs ?? 60_000);
    this.#sweepTimer.unref();
  }

  /** Drains in-flight events, stops timers, leaves the groups. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    await this.#events.close();
    for (const a of this.#actors.values()) if (a.timer) clearTimeout(a.timer);
    this.#actors.clear();
    await this.#tail.close();
  }

  // ---- partition ownership ----------------------------------------------------------------------------

  async #onAssigned(assigned: readonly TopicPartitions[]): Promise<void> {
    const started = Date.now();
    const partitions = assigned.flatMap((a) => a.partitions);
    await this.#o.beforeRestore?.(partitions);
    await this.#tail.waitCaughtUp(partitions);
    // Claim each partition with an epoch above anything its previous owners wrote.
    const claims = await this.#owned.writeClaims(partitions);
    let restored = 0;
    const now = this.#o.clock.now();
    for (const claim of claims) {
      this.#owned.own(claim);
      for (const state of this.#tail.liveInPartition(claim.partition)) {
        restored++;
        // The previous owner may have died between persisting and sending: a recent snapshot's outbox is sent again.
        const recent = (state.outbox?.length ?? 0) > 0 && now - (state.persistedAt ?? 0) < this.#resendWindowMs;
        const id = this.#kind.codec.id(state);
        const actor: LiveActor<S> = { id, partition: claim.partition, state: this.#kind.restore(state, now), outboxSent: !recent };
        this.#actors.set(id, actor);
        await this.#mailbox.run(id, async () => {
          if (!actor.outboxSent) await this.#sendOutbox(actor);
          this.#arm(actor);
        });
      }
      // An actor that finished just before its host died may not have sent its last effects (a terminal audit row,
      // the last task fact, a session's transcript): its recent finishing snapshot is sent again.
      for (const state of this.#tail.finishedWithOutbox(claim.partition, now - this.#resendWindowMs)) {
        const id = this.#kind.codec.id(state);
        await this.#mailbox.run(id, () => this.#sendOutbox({ id, partition: claim.partition, state, outboxSent: false }));
      }
      if (this.#owned.epoch(claim.partition) === claim.epoch) this.#restored.add(claim.partition);
    }
    this.#log.info({ partitions, restored, restore_ms: Date.now() - started, epochs: claims.map((c) => c.epoch) },
      `${this.#kind.partitionNoun}s assigned; ${this.#kind.actorsNoun} restored`);
  }

  #drop(partitions: ReadonlySet<number>): number {
    this.#owned.release(partitions);
    for (const p of partitions) this.#restored.delete(p);
    let dropped = 0;
    for (const [id, actor] of this.#actors) {
      if (!partitions.has(actor.partition)) continue;
      if (actor.timer) clearTimeout(actor.timer);
      this.#actors.delete(id);
      dropped++;
    }
    return dropped;
  }

  async #onRevoked(revoked: readonly TopicPartitions[]): Promise<void> {
    const partitions = new Set(revoked.flatMap((r) => r.partitions));
    const dropped = this.#drop(partitions);
    this.#log.info({ partitions: [...partitions], dropped }, `${this.#kind.partitionNoun}s revoked; ${this.#kind.actorsNoun} dropped`);
  }

  /** A newer owner claimed one of our partitions: we were evicted without noticing yet. Stop acting on it at once. */
  #onClaim(claim: PartitionClaim): void {
    const mine = this.#owned.fencedBy(claim);
    if (mine === undefined) return;
    const dropped = this.#drop(new Set([claim.partition]));
    this.#log.warn({ partition: claim.partition, epoch: mine, newer_epoch: claim.epoch, new_owner: claim.owner, dropped },
      `another host claimed this ${this.#kind.partitionNoun}; fenced`);
  }

  /** A snapshot of one of our actors from an older epoch landed after our claim: write ours again so compaction keeps it. */
  #onSnapshotRead(state: S, partition: number): void {
    const mine = this.#owned.epoch(partition);
    const id = this.#kind.codec.id(state);
    const actor = this.#actors.get(id);
    if (mine === undefined || !actor || (state.epoch ?? 0) >= mine) return;
    this.#log.warn({ [this.#kind.logKey]: id, partition, stale_epoch: state.epoch ?? 0, epoch: mine }, `a stale owner wrote this ${this.#kind.noun}; rewriting our snapshot`);
    void this.#mailbox.run(id, async () => {
      const current = this.#actors.get(id);
      if (current && this.#owned.epoch(partition) === mine) await this.#persist({ ...current.state, epoch: mine }, partition);
    }).catch((err: unknown) => this.#log.warn({ [this.#kind.logKey]: id, err: String(err) }, 'could not rewrite the snapshot'));
  }

  // ---- event handling -----------------------------------------------------------------------------------

  async #onEvent(m: ConsumedMessage<E>): Promise<void> {
    const id = this.#kind.eventKey(m.value);
    try {
      await this.#mailbox.run(id, () => this.#apply(id, m.value, m.partition, m.headers.requestId));
    } catch (err) {
      if (!(err instanceof NotOwnerError)) throw err;
      // Revoked or fenced while the event waited: leave it uncommitted for the partition's owner.
      await new Promise((r) => setTimeout(r, 100));
      m.requeue();
    }
  }

  async #apply(id: string, input: I, partition: number, requestId?: string): Promise<void> {
    await this.#owned.ensure(partition);
    const actor = this.#actors.get(id);
    const log = this.#log.child({ [this.#kind.logKey]: id, ...(requestId ?? actor?.state.requestId ? { [LOG.requestId]: requestId ?? actor?.state.requestId } : {}) });
    if (!actor) {
      const finished = this.#tail.finished(id);
      const decision = this.#kind.withoutLive(input, finished);
      if (decision === 'remove') {
        await this.#tombstone([id], partition);
        log.info({}, `${this.#kind.noun} deleted: snapshot removed from ${this.#kind.codec.label}`);
        return;
      }
      if (decision === 'ignore') {
        if (input.type !== 'timer') log.debug({ event: input.type, finished: finished?.status }, `event for no live ${this.#kind.noun} ignored`);
        if (finished) await this.#kind.finishedInput?.(id, input, log);
        return;
      }
    }
    // An earlier attempt persisted this revision but could not send its effects: send them before anything else. A
    // snapshot that has waited long is written again first, so a host taking over now would still re-send it.
    if (actor && !actor.outboxSent) {
      if (this.#o.clock.now() - (actor.state.persistedAt ?? 0) > this.#resendWindowMs / 2) {
        actor.state = { ...actor.state, epoch: await this.#owned.ensure(partition), persistedAt: this.#o.clock.now() };
        await this.#persist(actor.state, partition);
      }
      await this.#sendOutbox(actor);
    }
    const now = this.#o.clock.now();
    let settled = false;
    const settle = (): void => {
      if (settled) throw new Error(`a ${this.#kind.noun} step settled twice`);
      settled = true;
    };
    await this.#kind.step({
      id, input, partition, now, log,
      ...(requestId ? { requestId } : {}),
      ...(actor ? { before: actor.state } : {}),
      commit: async (next) => {
        settle();
        const state: S = { ...next, epoch: await this.#owned.ensure(partition), persistedAt: now };
        await this.#persist(state, partition);
        const live: LiveActor<S> = actor ?? { id, partition, state, outboxSent: false };
        live.state = state;
        live.outboxSent = false;
        this.#actors.set(id, live);
        await this.#sendOutbox(live);
        this.#arm(live);
        return state;
      },
      keep: (next) => {
        settle();
        if (!actor) return;
        actor.state = next;
        this.#arm(actor);
      },
      unchanged: () => {
        settle();
        if (input.type !== 'timer') log.debug({ event: input.type }, 'event changed nothing (a replay or a stale attempt)');
        // A timer can fire a millisecond before the wall clock reaches its moment: arm it again, or the actor stalls.
        if (actor) this.#arm(actor);
      },
      remove: async () => {
        settle();
        if (actor?.timer) clearTimeout(actor.timer);
        this.#actors.delete(id);
        await this.#tombstone([id], partition);
        log.info({}, `${this.#kind.noun} deleted: snapshot removed from ${this.#kind.codec.label}`);
      },
    });
  }

  async #persist(state: S, partition: number): Promise<void> {
    await this.#o.producer.send(this.#kind.stateTopic, {
      key: this.#kind.codec.id(state),
      partition,
      value: this.#kind.encodeSnapshot(state),
      headers: newMessageHeaders({ requestId: state.requestId, tenantId: state.tenantId }),
    });
    this.#tail.remember(state, partition);
  }

  /** Removes finished actors' snapshots from the state topic (compaction drops the key; readers treat it as removal). */
  async #tombstone(ids: readonly string[], partition: number): Promise<void> {
    if (ids.length === 0) return;
    await this.#o.producer.sendBatch([{
      topic: this.#kind.stateTopic,
      messages: ids.map((id) => ({ key: id, partition, value: null, headers: newMessageHeaders({}) })),
    }]);
    const now = this.#o.clock.now();
    for (const id of ids) this.#tail.markRemoved(id, partition, now);
  }

  /** Sends the outbox of the actor's current revision; marks it sent only once every effect is acknowledged. */
  async #sendOutbox(actor: LiveActor<S>): Promise<void> {
    await this.#kind.sendOutbox(actor.state);
    actor.outboxSent = true;
  }

  /** One timer per actor, at the next moment its state needs attention. */
  #arm(actor: LiveActor<S>): void {
    if (actor.timer) clearTimeout(actor.timer);
    actor.timer = undefined;
    if (this.#actors.get(actor.id) !== actor) return;
    if (this.#kind.isTerminal(actor.state)) {
      this.#actors.delete(actor.id);
      return;
    }
    const at = this.#kind.nextWakeAt(actor.state);
    if (at === undefined) return;
    const delay = Math.max(0, at - this.#o.clock.now());
    actor.timer = setTimeout(() => {
      if (this.#closing || this.#actors.get(actor.id) !== actor) return;
      this.#mailbox.run(actor.id, () => this.#apply(actor.id, this.#kind.timerInput, actor.partition)).catch((err: unknown) => {
        if (err instanceof NotOwnerError) return;
        this.#log.error({ [this.#kind.logKey]: actor.id, err: String(err) }, 'timer handling failed; retrying shortly');
        setTimeout(() => this.#arm(actor), 1000).unref();
      });
    }, Math.min(delay, 2 ** 31 - 1));
    actor.timer.unref();
  }

  /**
   * Tombstones finished actors past their retention on the partitions this host owns, and forgets removal markers past
   * it on every partition (the tail reads them all, so every host must forget them, not only the owner).
   */
  async #sweepFinished(): Promise<void> {
    const retention = this.#o.finishedRetentionMs ?? 3_600_000;
    const now = this.#o.clock.now();
    this.#tail.releaseOutboxes(now - this.#resendWindowMs);
    const due = new Map<number, string[]>();
    for (const [id, marker] of this.#tail.finishedEntries()) {
      if (marker.at + retention > now) continue;
      if (marker.status === 'removed') this.#tail.forget(id);
      else if (this.#owned.has(marker.partition)) due.set(marker.partition, [...(due.get(marker.partition) ?? []), id]);
    }
    for (const [partition, ids] of due) {
      try {
        await this.#owned.ensure(partition);
        for (let i = 0; i < ids.length; i += 500) await this.#tombstone(ids.slice(i, i + 500), partition);
        this.#log.info({ partition, removed: ids.length }, `finished ${this.#kind.nouns} past retention removed from ${this.#kind.codec.label}`);
      } catch (err) {
        this.#log.debug({ partition, err: String(err) }, `finished-${this.#kind.noun} sweep skipped`);
      }
    }
  }
}
