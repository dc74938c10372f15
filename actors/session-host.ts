/**
 * The session host: runs one real-time session actor per live session on the realtime.events partitions Kafka assigns
 * it, in the actor host process, with the job actors' runtime — the same cycle and fencing, over sessions.state:
 * transition (pure) → persist the snapshot, with the transition's effects in its outbox, to the compacted
 * sessions.state topic (acknowledged) → send the outbox (transcript to the artifact store, audit events, the enhance
 * job) → commit the event's offset. A failed send retries the event: the transition then changes nothing, but the
 * host knows the persisted outbox was not sent and sends it first; a host that takes a session over re-sends a recent
 * snapshot's outbox once more. Every send is idempotent (fixed keys, fixed event ids, a job id derived from the
 * session id), so nothing is lost and nothing is doubled.
 *
 * Each change is persisted at once, one snapshot per final with no batching: the streaming engine treats a final as
 * durable once it is in sessions.state, and restores a session from there after an engine failover.
 *
 * Ownership is the job actors' (actors/partition-ownership.ts, shared): act only while the group lease holds; each
 * takeover writes a partition claim with a higher epoch to sessions.state that stamps later snapshots (the StateTail
 * orders by epoch, then revision); an owner that reads a newer claim of its partition stops acting on it.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { KeyedMailbox } from '../core/mailbox.js';
import { LOG } from '../core/observability-names.js';
import type { ArtifactStore } from '../storage/index.js';
import {
  ANALYTICS, JOB_EVENTS, REALTIME_EVENTS, SCHEMA_VERSION, SESSION_STATE, StreamConsumer, checkRealtimeEvent, checkSessionStateMessage,
  decodeMessage, encodeMessage, newMessageHeaders, prefixed,
  type Admin, type AnalyticsMessage, type ConsumedMessage, type DeadLetterWriter, type Kafka, type MessageSender, type PartitionClaim,
  type RealtimeEvent, type RealtimeSessionState, type TopicPartitions,
} from '../streams/index.js';
import { sessionTranscript } from './session-artifacts.js';
import {
  isTerminalSession, nextSessionWakeAt, sessionTransition, type SessionInput, type SessionSettings,
} from './session-transition.js';
import { NotOwnerError, PartitionOwnership } from './partition-ownership.js';
import { StateTail, assertSamePartitionCount, type TailCodec } from './state-tail.js';

export interface SessionHostOptions {
  readonly kafka: Kafka;
  readonly admin: Admin;
  /** The process's producer (or a wrapper of it: tests inject send failures here). */
  readonly producer: MessageSender;
  readonly deadLetter: DeadLetterWriter;
  readonly store: ArtifactStore;
  readonly topicPrefix: string;
  readonly settings: SessionSettings;
  readonly clock: Clock;
  readonly log: Logger;
  /** @default 6 */
  readonly concurrency?: number;
  /** Group session timeout of the events consumer: the ownership lease. @default 10000 */
  readonly sessionTimeoutMs?: number;
  /** Finished sessions' snapshots are removed from sessions.state this long after they end. @default 3600000 */
  readonly finishedRetentionMs?: number;
  /** @default 60000 */
  readonly sweepIntervalMs?: number;
  /** Only a snapshot younger than this has its outbox re-sent on takeover (see ActorHostOptions). @default 60000 */
  readonly outboxResendWindowMs?: number;
}

interface LiveSession {
  readonly sessionId: string;
  readonly partition: number;
  state: RealtimeSessionState;
  /** False until the outbox of `state`'s revision has been sent by this host. */
  outboxSent: boolean;
  timer?: NodeJS.Timeout;
}

export const SESSION_TAIL_CODEC: TailCodec<RealtimeSessionState> = {
  label: 'sessions.state',
  decode: (value) => {
    const msg = decodeMessage(checkSessionStateMessage, value);
    return msg.type === 'rt.session.snapshot' ? { kind: 'snapshot', state: msg.state } : { kind: 'claim', claim: msg };
  },
  id: (s) => s.sessionId,
  revision: (s) => s.revision,
  epoch: (s) => s.epoch ?? 0,
  finished: (s) => (s.status === 'active' ? undefined : s.status === 'completed' ? 'completed' : s.status === 'interrupted' ? 'interrupted' : 'failed'),
  finishedAt: (s) => s.endedAt,
  outboxWrittenAt: (s) => ((s.outbox?.length ?? 0) > 0 ? s.persistedAt ?? 0 : undefined),
};

export class SessionHost {
  readonly #o: SessionHostOptions;
  readonly #log: Logger;
  readonly #mailbox = new KeyedMailbox(10_000);
  readonly #events: StreamConsumer<RealtimeEvent>;
  readonly #tail: StateTail<RealtimeSessionState>;
  readonly #sessions = new Map<string, LiveSession>();
  readonly #owned: PartitionOwnership;
  readonly instanceId: string;
  #sweepTimer?: NodeJS.Timeout;
  #closing = false;
  /** Sessions this host ended, by status (tests). */
  readonly finishedCount = { completed: 0, interrupted: 0, failed: 0 };

  constructor(options: SessionHostOptions & { readonly instanceId?: string }) {
    this.#o = options;
    this.instanceId = options.instanceId ?? `sessions-${randomUUID().slice(0, 8)}`;
    this.#log = options.log.child({ component: 'session-host', instance: this.instanceId });
    const groupBase = options.topicPrefix.replace(/\.$/, '');
    this.#tail = new StateTail<RealtimeSessionState>({
      kafka: options.kafka, admin: options.admin, topic: this.#topic(SESSION_STATE.name), groupPrefix: `${groupBase}-sessions`,
      deadLetter: options.deadLetter, log: options.log, codec: SESSION_TAIL_CODEC,
      onClaim: (c) => this.#onClaim(c),
      onSnapshot: (s, p) => this.#onSnapshotRead(s, p),
    });
    this.#events = new StreamConsumer<RealtimeEvent>({
      kafka: options.kafka,
      groupId: `${groupBase}-sessions`,
      topics: [this.#topic(REALTIME_EVENTS.name)],
      decode: (value) => decodeMessage(checkRealtimeEvent, value),
      handler: (m) => this.#onEvent(m),
      deadLetter: options.deadLetter,
      log: options.log,
      partitionsConsumedConcurrently: options.concurrency ?? 6,
      hooks: { onPartitionsAssigned: (a) => this.#onAssigned(a), onPartitionsRevoked: (r) => this.#onRevoked(r) },
      // A valid session event is never dropped because Kafka, the store or a send is down: it waits until it applies.
      retry: { maxAttempts: Number.POSITIVE_INFINITY, maxBackoffMs: 5000 },
      maxWaitTimeMs: 20,
      sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
    });
    this.#owned = new PartitionOwnership({
      owner: this.instanceId, stateTopic: this.#topic(SESSION_STATE.name), producer: options.producer, tail: this.#tail, lease: this.#events,
      clock: options.clock, sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000, closing: () => this.#closing, groupLabel: 'session group',
    });
  }

  #topic(name: string): string {
    return prefixed(this.#o.topicPrefix, name);
  }

  get #resendWindowMs(): number {
    return this.#o.outboxResendWindowMs ?? 60_000;
  }

  get liveSessions(): number {
    return this.#sessions.size;
  }

  get ownedPartitions(): number[] {
    return this.#owned.partitions;
  }

  /** The session as this host knows it: its live actor, else the latest snapshot read from sessions.state. */
  sessionState(sessionId: string): RealtimeSessionState | undefined {
    return this.#sessions.get(sessionId)?.state ?? this.#tail.get(sessionId);
  }

  async start(): Promise<void> {
    const events = this.#topic(REALTIME_EVENTS.name);
    const state = this.#topic(SESSION_STATE.name);
    const meta = await this.#o.admin.fetchTopicMetadata({ topics: [events, state] });
    const count = (t: string): number => meta.topics.find((m) => m.name === t)?.partitions.length ?? 0;
    if (count(events) === 0 || count(state) === 0) throw new ConfigError(`topics ${events} and ${state} must exist before a session host starts`);
    assertSamePartitionCount(events, count(events), state, count(state));
    await this.#tail.start();
    await this.#tail.waitCaughtUp(Array.from({ length: count(state) }, (_, i) => i), 120_000);
    await this.#events.start();
    this.#sweepTimer = setInterval(() => void this.#sweepFinished(), this.#o.sweepIntervalMs ?? 60_000);
    this.#sweepTimer.unref();
  }

  async close(): Promise<void> {
    this.#closing = true;
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    await this.#events.close();
    for (const s of this.#sessions.values()) if (s.timer) clearTimeout(s.timer);
    this.#sessions.clear();
    await this.#tail.close();
  }

  // ---- partition ownership (as ActorHost) ---------------------------------------------------------------

  async #onAssigned(assigned: readonly TopicPartitions[]): Promise<void> {
    const started = Date.now();
    const partitions = assigned.flatMap((a) => a.partitions);
    await this.#tail.waitCaughtUp(partitions);
    const claims = await this.#owned.writeClaims(partitions);
    let restored = 0;
    const now = this.#o.clock.now();
    for (const claim of claims) {
      this.#owned.own(claim);
      for (const state of this.#tail.liveInPartition(claim.partition)) {
        restored++;
        // The previous owner may have died between persisting and sending: a recent snapshot's outbox is sent again.
        const recent = (state.outbox?.length ?? 0) > 0 && now - (state.persistedAt ?? 0) < this.#resendWindowMs;
        const live: LiveSession = { sessionId: state.sessionId, partition: claim.partition, state, outboxSent: !recent };
        this.#sessions.set(state.sessionId, live);
        await this.#mailbox.run(state.sessionId, async () => {
          if (!live.outboxSent) await this.#sendOutbox(live);
          this.#arm(live);
        });
      }
      // A session that ended just before its host died may not have sent its last effects (transcript, audit, the
      // enhance job): its recent final snapshot is sent again; receivers recognise the repeat by id.
      for (const state of this.#tail.finishedWithOutbox(claim.partition, now - this.#resendWindowMs)) {
        await this.#mailbox.run(state.sessionId, () => this.#sendOutbox({ sessionId: state.sessionId, partition: claim.partition, state, outboxSent: false }));
      }
    }
    this.#log.info({ partitions, restored, restore_ms: Date.now() - started, epochs: claims.map((c) => c.epoch) }, 'session partitions assigned; sessions restored');
  }

  #drop(partitions: ReadonlySet<number>): number {
    this.#owned.release(partitions);
    let dropped = 0;
    for (const [id, s] of this.#sessions) {
      if (!partitions.has(s.partition)) continue;
      if (s.timer) clearTimeout(s.timer);
      this.#sessions.delete(id);
      dropped++;
    }
    return dropped;
  }

  async #onRevoked(revoked: readonly TopicPartitions[]): Promise<void> {
    const partitions = new Set(revoked.flatMap((r) => r.partitions));
    const dropped = this.#drop(partitions);
    this.#log.info({ partitions: [...partitions], dropped }, 'session partitions revoked; sessions dropped');
  }

  #onClaim(claim: PartitionClaim): void {
    const mine = this.#owned.fencedBy(claim);
    if (mine === undefined) return;
    const dropped = this.#drop(new Set([claim.partition]));
    this.#log.warn({ partition: claim.partition, epoch: mine, newer_epoch: claim.epoch, new_owner: claim.owner, dropped }, 'another host claimed this session partition; fenced');
  }

  /** A stale owner's late snapshot of one of our sessions: write ours again so compaction keeps it. */
  #onSnapshotRead(state: RealtimeSessionState, partition: number): void {
    const mine = this.#owned.epoch(partition);
    const live = this.#sessions.get(state.sessionId);
    if (mine === undefined || !live || (state.epoch ?? 0) >= mine) return;
    this.#log.warn({ [LOG.sessionId]: state.sessionId, partition, stale_epoch: state.epoch ?? 0, epoch: mine }, 'a stale owner wrote this session; rewriting our snapshot');
    void this.#mailbox.run(state.sessionId, async () => {
      const current = this.#sessions.get(state.sessionId);
      if (current && this.#owned.epoch(partition) === mine) await this.#persist({ ...current.state, epoch: mine }, partition);
    }).catch((err: unknown) => this.#log.warn({ [LOG.sessionId]: state.sessionId, err: String(err) }, 'could not rewrite the session snapshot'));
  }

  #ensureOwner(partition: number): Promise<number> {
    return this.#owned.ensure(partition);
  }

  // ---- event handling -----------------------------------------------------------------------------------

  async #onEvent(m: ConsumedMessage<RealtimeEvent>): Promise<void> {
    const ev = m.value;
    try {
      await this.#mailbox.run(ev.sessionId, () => this.#apply(ev.sessionId, ev, m.partition, m.headers.requestId));
    } catch (err) {
      if (!(err instanceof NotOwnerError)) throw err;
      await new Promise((r) => setTimeout(r, 100));
      m.requeue();
    }
  }

  async #apply(sessionId: string, input: SessionInput, partition: number, requestId?: string): Promise<void> {
    await this.#ensureOwner(partition);
    const live = this.#sessions.get(sessionId);
    const log = this.#log.child({ [LOG.sessionId]: sessionId, ...(requestId ?? live?.state.requestId ? { [LOG.requestId]: requestId ?? live?.state.requestId } : {}) });
    if (!live) {
      const finished = this.#tail.finished(sessionId);
      if (finished) {
        if (input.type === 'rt.session.deleted' && finished.status !== 'removed') {
          await this.#tombstone([sessionId], partition);
          log.info({}, 'session deleted: snapshot removed from sessions.state');
        } else if (input.type !== 'timer') {
          log.debug({ event: input.type, finished: finished.status }, 'event for a finished session ignored');
        }
        return;
      }
    }
    if (live && !live.outboxSent) {
      if (this.#o.clock.now() - (live.state.persistedAt ?? 0) > this.#resendWindowMs / 2) {
        live.state = { ...live.state, epoch: await this.#ensureOwner(partition), persistedAt: this.#o.clock.now() };
        await this.#persist(live.state, partition);
      }
      await this.#sendOutbox(live);
    }
    const now = this.#o.clock.now();
    const result = sessionTransition(live?.state, input, { now, settings: this.#o.settings, ...(requestId ? { requestId } : {}) });
    for (const effect of result.local) {
      if (effect.type === 'delete_refused') log.warn({}, 'delete of a live session refused');
    }
    if (result.tombstone) {
      if (live?.timer) clearTimeout(live.timer);
      this.#sessions.delete(sessionId);
      await this.#tombstone([sessionId], partition);
      log.info({}, 'session deleted: snapshot removed from sessions.state');
      return;
    }
    if (!result.changed || !result.state) {
      if (input.type !== 'timer') log.debug({ event: input.type }, 'event changed nothing (a replay or a repeated final)');
      if (live) this.#arm(live);
      return;
    }
    const epoch = await this.#ensureOwner(partition);
    const state: RealtimeSessionState = { ...result.state, epoch, outbox: [...result.outbox], persistedAt: now };
    await this.#persist(state, partition);
    const actor: LiveSession = live ?? { sessionId, partition, state, outboxSent: false };
    actor.state = state;
    actor.outboxSent = false;
    this.#sessions.set(sessionId, actor);
    await this.#sendOutbox(actor);
    for (const effect of result.local) {
      if (effect.type !== 'session_finished') continue;
      this.finishedCount[effect.status === 'active' ? 'failed' : effect.status]++;
      log.info({ status: effect.status, utterances: state.finals.length, audio_seconds: state.audioSeconds, enhance_job_id: state.enhanceJobId }, 'session ended');
    }
    if (input.type === 'rt.session.opened') log.info({ model: state.config.model, dialect: state.config.dialect }, 'session opened');
    else if (input.type !== 'timer') log.debug({ event: input.type, revision: state.revision, finals: state.finals.length }, 'session event applied');
    this.#arm(actor);
  }

  async #persist(state: RealtimeSessionState, partition: number): Promise<void> {
    await this.#o.producer.send(this.#topic(SESSION_STATE.name), {
      key: state.sessionId,
      partition,
      value: encodeMessage({ v: SCHEMA_VERSION, type: 'rt.session.snapshot', state }),
      headers: newMessageHeaders({ requestId: state.requestId, tenantId: state.tenantId }),
    });
    this.#tail.remember(state, partition);
  }

  async #tombstone(sessionIds: readonly string[], partition: number): Promise<void> {
    if (sessionIds.length === 0) return;
    await this.#o.producer.sendBatch([{
      topic: this.#topic(SESSION_STATE.name),
      messages: sessionIds.map((id) => ({ key: id, partition, value: null, headers: newMessageHeaders({}) })),
    }]);
    const now = this.#o.clock.now();
    for (const id of sessionIds) this.#tail.markRemoved(id, partition, now);
  }

  /** Sends the outbox of the session's current revision; marks it sent only once every effect is acknowledged. */
  async #sendOutbox(actor: LiveSession): Promise<void> {
    const { state } = actor;
    const headers = () => newMessageHeaders({ requestId: state.requestId, tenantId: state.tenantId, clock: this.#o.clock });
    const analytics: AnalyticsMessage[] = [];
    for (const entry of state.outbox ?? []) {
      switch (entry.type) {
        case 'transcript':
          await this.#o.store.put(entry.key, Buffer.from(JSON.stringify(sessionTranscript(state))), 'application/json');
          break;
        case 'job':
          await this.#o.producer.send(this.#topic(JOB_EVENTS.name), { key: entry.event.jobId, value: encodeMessage(entry.event), headers: headers() });
          break;
        case 'analytics':
          analytics.push(entry.message);
          break;
      }
    }
    if (analytics.length > 0) {
      await this.#o.producer.sendBatch([{
        topic: this.#topic(ANALYTICS.name),
        messages: analytics.map((a) => ({ key: state.sessionId, value: encodeMessage(a), headers: headers() })),
      }]);
    }
    actor.outboxSent = true;
  }

  /** One timer per live session, at its end grace or its maximum length. */
  #arm(actor: LiveSession): void {
    if (actor.timer) clearTimeout(actor.timer);
    actor.timer = undefined;
    if (this.#sessions.get(actor.sessionId) !== actor) return;
    if (isTerminalSession(actor.state.status)) {
      this.#sessions.delete(actor.sessionId);
      return;
    }
    const at = nextSessionWakeAt(actor.state, this.#o.settings);
    if (at === undefined) return;
    const delay = Math.max(0, at - this.#o.clock.now());
    actor.timer = setTimeout(() => {
      if (this.#closing || this.#sessions.get(actor.sessionId) !== actor) return;
      this.#mailbox.run(actor.sessionId, () => this.#apply(actor.sessionId, { type: 'timer' }, actor.partition)).catch((err: unknown) => {
        if (err instanceof NotOwnerError) return;
        this.#log.error({ [LOG.sessionId]: actor.sessionId, err: String(err) }, 'session timer handling failed; retrying shortly');
        setTimeout(() => this.#arm(actor), 1000).unref();
      });
    }, Math.min(delay, 2 ** 31 - 1));
    actor.timer.unref();
  }

  /** Removes ended sessions' snapshots from sessions.state past their retention (their row and artifacts stay). */
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
        await this.#ensureOwner(partition);
        for (let i = 0; i < ids.length; i += 500) await this.#tombstone(ids.slice(i, i + 500), partition);
        this.#log.info({ partition, removed: ids.length }, 'ended sessions past retention removed from sessions.state');
      } catch (err) {
        this.#log.debug({ partition, err: String(err) }, 'ended-session sweep skipped');
      }
    }
  }
}
