/**
 * The actor host: owns the jobs.events partitions Kafka assigns it and runs one job actor per live job on them.
 * For each event: transition (pure) → persist the snapshot, with the transition's effects in its outbox, to the
 * compacted jobs.state topic (acknowledged) → send the outbox (dispatch tasks, cancel signals, analytics) → commit
 * the event's offset. If a send fails the event is retried: the transition then changes nothing, but the host still
 * knows the persisted outbox was not sent and sends it first; a host that takes a job over sends the restored outbox
 * once more. Receivers tolerate the duplicate, so nothing is lost and a job completes exactly once.
 *
 * Ownership is fenced three ways: a host acts only while its group membership lease holds (last heartbeat + session
 * timeout); every takeover writes a partition claim with a higher epoch that stamps every later snapshot, so readers
 * prefer the new owner's snapshots and an old owner that reads the claim stops; and an owner that reads a stale
 * owner's late snapshot of one of its jobs writes its own again, so compaction keeps the right one.
 */
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { KeyedMailbox } from '../core/mailbox.js';
import type { OrchestratorMetrics } from '../core/metrics.js';
import { ATTR, LOG, SPAN } from '../core/observability-names.js';
import type { Tracer } from '../core/telemetry/tracer.js';
import {
  ANALYTICS, JOB_EVENTS, JOB_STATE, SCHEMA_VERSION, TASK_CONTROL, StreamConsumer, checkJobEvent, consumerGroupLag,
  decodeMessage, encodeMessage, engineGroupId, newMessageHeaders, prefixed, topicForStage,
  type Admin, type AnalyticsMessage, type ConsumedMessage, type DeadLetterWriter, type JobEvent, type JobState, type Kafka,
  type MessageSender, type PartitionClaim, type TopicPartitions,
} from '../streams/index.js';
import { isTerminalJob, nextWakeAt, restoredState, transition, type ActorInput, type TransitionSettings } from './job-transition.js';
import { outboxFor, type LocalEffects } from './outbox.js';
import { NotOwnerError, PartitionOwnership } from './partition-ownership.js';
import { StateTail, assertSamePartitionCount, epochOf } from './state-tail.js';
import { randomUUID } from 'node:crypto';

export interface ActorHostOptions {
  readonly kafka: Kafka;
  readonly admin: Admin;
  /** The process's producer (or a wrapper of it: tests inject send failures here). */
  readonly producer: MessageSender;
  readonly deadLetter: DeadLetterWriter;
  readonly topicPrefix: string;
  readonly settings: TransitionSettings;
  /** (stage, engine id) pairs whose queue depth this host reports. */
  readonly engineIds: readonly { stage: string; engineId: string }[];
  readonly clock: Clock;
  readonly log: Logger;
  readonly tracer: Tracer;
  readonly metrics: OrchestratorMetrics;
  /** @default 6 */
  readonly concurrency?: number;
  /** How often consumer-group lag feeds dalston_queue_depth. @default 5000 */
  readonly queueDepthIntervalMs?: number;
  /** Group session timeout of the events consumer: the ownership lease. @default 10000 */
  readonly sessionTimeoutMs?: number;
  /** How long the group waits for members to rejoin a rebalance. @default 60000 */
  readonly rebalanceTimeoutMs?: number;
  /** Finished jobs' snapshots are removed from jobs.state (a tombstone) this long after they finish. @default 3600000 */
  readonly finishedRetentionMs?: number;
  /** How often finished jobs past their retention are tombstoned. @default 60000 */
  readonly sweepIntervalMs?: number;
  /**
   * A snapshot older than this when a host takes its job over had its outbox sent: its writer stayed alive that long
   * after persisting it, and a writer whose sends keep failing writes the snapshot again before retrying them (so it
   * stays recent). Only recent outboxes are re-sent on takeover, instead of re-queueing every waiting job's dispatch on
   * every rebalance (which made engines run the same task again and again). @default 60000
   */
  readonly outboxResendWindowMs?: number;
  /** Testing only: runs before each restore (fault injection: a slow or failing restore). */
  readonly beforeRestore?: (partitions: readonly number[]) => Promise<void>;
}

interface LiveActor {
  readonly jobId: string;
  readonly partition: number;
  state: JobState;
  /** False until the outbox of `state`'s revision has been sent by this host. */
  outboxSent: boolean;
  timer?: NodeJS.Timeout;
}

export class ActorHost {
  readonly #o: ActorHostOptions;
  readonly #log: Logger;
  readonly #mailbox = new KeyedMailbox(10_000);
  readonly #events: StreamConsumer<JobEvent>;
  readonly #tail: StateTail;
  readonly #actors = new Map<string, LiveActor>();
  /** Owned partitions and the epoch this host claimed for each. */
  readonly #owned: PartitionOwnership;
  readonly instanceId = `actors-${randomUUID().slice(0, 8)}`;
  #depthTimer?: NodeJS.Timeout;
  #sweepTimer?: NodeJS.Timeout;
  #closing = false;
  /** Jobs this host finished, by status (tests and benchmarks compare them with the audit trail). */
  readonly finishedCount = { completed: 0, failed: 0, cancelled: 0 };

  constructor(options: ActorHostOptions) {
    this.#o = options;
    this.#log = options.log.child({ component: 'actor-host', instance: this.instanceId });
    const groupBase = options.topicPrefix.replace(/\.$/, '');
    this.#tail = new StateTail({
      kafka: options.kafka, admin: options.admin, topic: this.topic(JOB_STATE.name), groupPrefix: groupBase,
      deadLetter: options.deadLetter, log: options.log,
      onClaim: (c) => this.#onClaim(c),
      onSnapshot: (s, p) => this.#onSnapshotRead(s, p),
    });
    this.#events = new StreamConsumer<JobEvent>({
      kafka: options.kafka,
      groupId: `${groupBase}-actors`,
      topics: [this.topic(JOB_EVENTS.name)],
      decode: (value) => decodeMessage(checkJobEvent, value),
      handler: (m) => this.#onEvent(m),
      deadLetter: options.deadLetter,
      log: options.log,
      partitionsConsumedConcurrently: options.concurrency ?? 6,
      hooks: {
        onPartitionsAssigned: (a) => this.#onAssigned(a),
        onPartitionsRevoked: (r) => this.#onRevoked(r),
      },
      // A valid job event is never dropped because Kafka or a send is down: it waits until it can be applied.
      retry: { maxAttempts: Number.POSITIVE_INFINITY, maxBackoffMs: 5000 },
      maxWaitTimeMs: 100,
      sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
      ...(options.rebalanceTimeoutMs !== undefined ? { rebalanceTimeoutMs: options.rebalanceTimeoutMs } : {}),
    });
    this.#owned = new PartitionOwnership({
      owner: this.instanceId, stateTopic: this.topic(JOB_STATE.name), producer: options.producer, tail: this.#tail, lease: this.#events,
      clock: options.clock, sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000, closing: () => this.#closing, groupLabel: 'actor group',
    });
  }

  get #resendWindowMs(): number {
    return this.#o.outboxResendWindowMs ?? 60_000;
  }

  private topic(name: string): string {
    return prefixed(this.#o.topicPrefix, name);
  }

  get liveActors(): number {
    return this.#actors.size;
  }

  /** The state tail's consumer group (per instance; it commits nothing, so it vanishes from the broker once empty). */
  get stateTailGroup(): string {
    return this.#tail.groupId;
  }

  get ownedPartitions(): number[] {
    return this.#owned.partitions;
  }

  /** Refuses to start when jobs.events and jobs.state differ in partition count (hosts would restore the wrong jobs). */
  async start(): Promise<void> {
    const events = this.topic(JOB_EVENTS.name);
    const state = this.topic(JOB_STATE.name);
    const meta = await this.#o.admin.fetchTopicMetadata({ topics: [events, state] });
    const count = (t: string): number => meta.topics.find((m) => m.name === t)?.partitions.length ?? 0;
    if (count(events) === 0 || count(state) === 0) throw new ConfigError(`topics ${events} and ${state} must exist before an actor host starts`);
    assertSamePartitionCount(events, count(events), state, count(state));
    await this.#tail.start();
    // Join only once the tail has read what exists: the first restore then waits for nothing but new records.
    await this.#tail.waitCaughtUp(Array.from({ length: count(state) }, (_, i) => i), 120_000);
    await this.#events.start();
    const interval = this.#o.queueDepthIntervalMs ?? 5000;
    this.#depthTimer = setInterval(() => void this.#reportQueueDepth(), interval);
    this.#depthTimer.unref();
    this.#sweepTimer = setInterval(() => void this.#sweepFinished(), this.#o.sweepIntervalMs ?? 60_000);
    this.#sweepTimer.unref();
  }

  /** Drains in-flight events, stops timers, leaves the groups. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#depthTimer) clearInterval(this.#depthTimer);
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    await this.#events.close();
    for (const a of this.#actors.values()) if (a.timer) clearTimeout(a.timer);
    this.#actors.clear();
    await this.#tail.close();
  }

  /** Current state of a live job as this host knows it (tests, debugging). */
  jobState(jobId: string): JobState | undefined {
    return this.#actors.get(jobId)?.state ?? this.#tail.get(jobId);
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
        const actor: LiveActor = { jobId: state.jobId, partition: claim.partition, state: restoredState(state, now), outboxSent: !recent };
        this.#actors.set(state.jobId, actor);
        await this.#mailbox.run(state.jobId, async () => {
          if (!actor.outboxSent) await this.#sendOutbox(actor);
          this.#arm(actor);
        });
      }
      // A job that finished just before its host died may not have sent its last effects (the terminal audit row, the
      // last task fact): its recent finishing snapshot is sent again. Receivers drop the duplicate by id.
      for (const state of this.#tail.finishedWithOutbox(claim.partition, now - this.#resendWindowMs)) {
        await this.#mailbox.run(state.jobId, () => this.#sendOutbox({ jobId: state.jobId, partition: claim.partition, state, outboxSent: false }));
      }
    }
    const restoreMs = Date.now() - started;
    this.#log.info({ partitions, restored, restore_ms: restoreMs, epochs: claims.map((c) => c.epoch) }, 'partitions assigned; actors restored');
  }

  #drop(partitions: ReadonlySet<number>): number {
    this.#owned.release(partitions);
    let dropped = 0;
    for (const [jobId, actor] of this.#actors) {
      if (!partitions.has(actor.partition)) continue;
      if (actor.timer) clearTimeout(actor.timer);
      this.#actors.delete(jobId);
      dropped++;
    }
    return dropped;
  }

  async #onRevoked(revoked: readonly TopicPartitions[]): Promise<void> {
    const partitions = new Set(revoked.flatMap((r) => r.partitions));
    const dropped = this.#drop(partitions);
    this.#log.info({ partitions: [...partitions], dropped }, 'partitions revoked; actors dropped');
  }

  /** A newer owner claimed one of our partitions: we were evicted without noticing yet. Stop acting on it at once. */
  #onClaim(claim: PartitionClaim): void {
    const mine = this.#owned.fencedBy(claim);
    if (mine === undefined) return;
    const dropped = this.#drop(new Set([claim.partition]));
    this.#log.warn({ partition: claim.partition, epoch: mine, newer_epoch: claim.epoch, new_owner: claim.owner, dropped },
      'another host claimed this partition; fenced');
  }

  /** A snapshot of one of our jobs from an older epoch landed after our claim: write ours again so compaction keeps it. */
  #onSnapshotRead(state: JobState, partition: number): void {
    const mine = this.#owned.epoch(partition);
    const actor = this.#actors.get(state.jobId);
    if (mine === undefined || !actor || epochOf(state) >= mine) return;
    this.#log.warn({ [LOG.jobId]: state.jobId, partition, stale_epoch: epochOf(state), epoch: mine }, 'a stale owner wrote this job; rewriting our snapshot');
    void this.#mailbox.run(state.jobId, async () => {
      const current = this.#actors.get(state.jobId);
      if (current && this.#owned.epoch(partition) === mine) await this.#persist({ ...current.state, epoch: mine }, partition);
    }).catch((err: unknown) => this.#log.warn({ [LOG.jobId]: state.jobId, err: String(err) }, 'could not rewrite the snapshot'));
  }

  /** Resolves with our epoch while this host may act as the partition's owner (see PartitionOwnership.ensure). */
  #ensureOwner(partition: number): Promise<number> {
    return this.#owned.ensure(partition);
  }

  // ---- event handling -----------------------------------------------------------------------------------

  async #onEvent(m: ConsumedMessage<JobEvent>): Promise<void> {
    const ev = m.value;
    try {
      await this.#mailbox.run(ev.jobId, () => this.#apply(ev.jobId, ev, m.partition, m.headers.requestId));
    } catch (err) {
      if (!(err instanceof NotOwnerError)) throw err;
      // Revoked or fenced while the event waited: leave it uncommitted for the partition's owner.
      await new Promise((r) => setTimeout(r, 100));
      m.requeue();
    }
  }

  async #apply(jobId: string, input: ActorInput, partition: number, requestId?: string): Promise<void> {
    await this.#ensureOwner(partition);
    const actor = this.#actors.get(jobId);
    const before = actor?.state;
    if (!before) {
      const finished = this.#tail.finished(jobId);
      if (input.type === 'job.deleted' && finished && finished.status !== 'removed') {
        await this.#tombstone([jobId], partition);
        return;
      }
      // A replayed job.created of a finished or deleted job, or an event for a job this host never knew: nothing to do.
      if (input.type !== 'job.created' || finished) {
        if (input.type !== 'timer') this.#log.debug({ [LOG.jobId]: jobId, event: input.type, finished: finished?.status }, 'event for no live job ignored');
        return;
      }
    }
    // An earlier attempt persisted this revision but could not send its effects: send them before anything else. A
    // snapshot that has waited long is written again first, so a host taking over now would still re-send it.
    if (actor && !actor.outboxSent) {
      if (this.#o.clock.now() - (actor.state.persistedAt ?? 0) > this.#resendWindowMs / 2) {
        actor.state = { ...actor.state, epoch: await this.#ensureOwner(partition), persistedAt: this.#o.clock.now() };
        await this.#persist(actor.state, partition);
      }
      await this.#sendOutbox(actor);
    }
    const log = this.#log.child({ [LOG.jobId]: jobId, ...(requestId ?? before?.requestId ? { [LOG.requestId]: requestId ?? before?.requestId } : {}) });
    const run = async (traceparent?: string): Promise<void> => {
      const now = this.#o.clock.now();
      const result = transition(before, input, {
        now, settings: this.#o.settings, ...(requestId ? { requestId } : {}), ...(traceparent ? { traceparent } : {}),
      });
      if (!result.changed || !result.state) {
        if (input.type !== 'timer') log.debug({ event: input.type }, 'event changed nothing (replay or stale attempt)');
        // A timer can fire a millisecond before the wall clock reaches its moment: arm it again, or the job stalls.
        if (actor) this.#arm(actor);
        return;
      }
      if (result.durable === false && actor) {
        actor.state = result.state;
        this.#arm(actor);
        return;
      }
      const { outbox, local } = outboxFor(result.state, result.effects, now);
      const epoch = await this.#ensureOwner(partition);
      const state: JobState = { ...result.state, epoch, outbox, persistedAt: now };
      await this.#persist(state, partition);
      const live: LiveActor = actor ?? { jobId, partition, state, outboxSent: false };
      live.state = state;
      live.outboxSent = false;
      this.#actors.set(jobId, live);
      await this.#sendOutbox(live);
      await this.#runLocal(state, local);
      if (input.type !== 'timer') log.info({ event: input.type, status: state.status }, 'job event applied');
      this.#arm(live);
    };
    if (input.type === 'job.created' && !before) {
      // handle_job_created continues the gateway's trace (the consumer extracted it from the message headers).
      await this.#o.tracer.startSpan(SPAN.handleJobCreated, { [ATTR.jobId]: jobId, [ATTR.tenantId]: input.tenantId, [ATTR.requestId]: requestId }, async () => {
        const carrier = this.#o.tracer.inject({});
        await this.#o.tracer.startSpan(SPAN.buildDag, { [ATTR.jobId]: jobId }, () => undefined);
        await run(carrier['traceparent']);
      });
      return;
    }
    await run();
  }

  async #persist(state: JobState, partition: number): Promise<void> {
    await this.#o.producer.send(this.topic(JOB_STATE.name), {
      key: state.jobId,
      partition,
      value: encodeMessage({ v: SCHEMA_VERSION, type: 'job.snapshot', state }),
      headers: newMessageHeaders({ requestId: state.requestId, tenantId: state.tenantId }),
    });
    this.#tail.remember(state, partition);
  }

  /** Removes finished jobs' snapshots from jobs.state (compaction drops the key; readers treat it as removal). */
  async #tombstone(jobIds: readonly string[], partition: number): Promise<void> {
    if (jobIds.length === 0) return;
    await this.#o.producer.sendBatch([{
      topic: this.topic(JOB_STATE.name),
      messages: jobIds.map((jobId) => ({ key: jobId, partition, value: null, headers: newMessageHeaders({}) })),
    }]);
    const now = this.#o.clock.now();
    for (const jobId of jobIds) this.#tail.markRemoved(jobId, partition, now);
  }

  /**
   * Tombstones finished jobs past their retention on the partitions this host owns, and forgets removal markers past it
   * on every partition (the tail reads them all, so every host must forget them, not only the owner).
   */
  async #sweepFinished(): Promise<void> {
    const retention = this.#o.finishedRetentionMs ?? 3_600_000;
    const now = this.#o.clock.now();
    this.#tail.releaseOutboxes(now - this.#resendWindowMs);
    const due = new Map<number, string[]>();
    for (const [jobId, marker] of this.#tail.finishedEntries()) {
      if (marker.at + retention > now) continue;
      if (marker.status === 'removed') this.#tail.forget(jobId);
      else if (this.#owned.has(marker.partition)) due.set(marker.partition, [...(due.get(marker.partition) ?? []), jobId]);
    }
    for (const [partition, jobIds] of due) {
      try {
        await this.#ensureOwner(partition);
        for (let i = 0; i < jobIds.length; i += 500) await this.#tombstone(jobIds.slice(i, i + 500), partition);
        this.#log.info({ partition, removed: jobIds.length }, 'finished jobs past retention removed from jobs.state');
      } catch (err) {
        this.#log.debug({ partition, err: String(err) }, 'finished-job sweep skipped');
      }
    }
  }

  /** Spans of later events hang under the job's handle_job_created span, kept in the state as a traceparent. */
  #jobSpan<T>(state: JobState, name: string, attributes: Record<string, string | number | undefined>, fn: () => Promise<T>): Promise<T> {
    return this.#o.tracer.startSpan(name, attributes, fn, state.traceparent ? { parentCarrier: { traceparent: state.traceparent } } : {});
  }

  /** Sends the outbox of the actor's current revision; marks it sent only once every message is acknowledged. */
  async #sendOutbox(actor: LiveActor): Promise<void> {
    const { state } = actor;
    const headers = () => newMessageHeaders({ requestId: state.requestId, tenantId: state.tenantId, clock: this.#o.clock });
    const analytics: AnalyticsMessage[] = [];
    for (const entry of state.outbox ?? []) {
      switch (entry.type) {
        case 'dispatch': {
          const { task } = entry;
          await this.#jobSpan(state, SPAN.scheduleTask(task.stage), {
            [ATTR.jobId]: task.jobId, [ATTR.taskId]: task.taskId, [ATTR.stage]: task.stage, [ATTR.engineId]: task.engineId,
            [ATTR.retries]: task.attempt - 1, [ATTR.requestId]: state.requestId,
          }, async () => {
            await this.#o.producer.send(this.topic(entry.topic), { key: task.jobId, value: encodeMessage(task), headers: headers() });
          });
          break;
        }
        case 'cancel':
          await this.#o.producer.send(this.topic(TASK_CONTROL.name), { key: entry.cancel.jobId, value: encodeMessage(entry.cancel), headers: headers() });
          break;
        case 'analytics':
          analytics.push(entry.message);
          break;
      }
    }
    if (analytics.length > 0) {
      await this.#o.producer.sendBatch([{
        topic: this.topic(ANALYTICS.name),
        messages: analytics.map((a) => ({ key: state.jobId, value: encodeMessage(a), headers: headers() })),
      }]);
    }
    actor.outboxSent = true;
  }

  /** Metrics, spans and logs of a job's end: this process's view, not re-run when an outbox is re-sent. */
  async #runLocal(state: JobState, local: LocalEffects): Promise<void> {
    const status = local.finished;
    if (!status) return;
    const span = status === 'completed' ? SPAN.markJobCompleted : status === 'failed' ? SPAN.markJobFailed : SPAN.markJobCancelled;
    await this.#jobSpan(state, span, { [ATTR.jobId]: state.jobId, [ATTR.audioDurationSeconds]: state.audioDurationSeconds }, async () => undefined);
    this.#o.metrics.jobs.inc({ status });
    this.#o.metrics.jobDuration.observe({ status }, Math.max(0, ((state.completedAt ?? this.#o.clock.now()) - state.createdAt) / 1000));
    this.finishedCount[status]++;
    this.#log.info({ [LOG.jobId]: state.jobId, [LOG.requestId]: state.requestId, status }, 'job finished');
  }

  /** One timer per actor, at the next moment its state needs attention. */
  #arm(actor: LiveActor): void {
    if (actor.timer) clearTimeout(actor.timer);
    actor.timer = undefined;
    if (this.#actors.get(actor.jobId) !== actor) return;
    if (isTerminalJob(actor.state.status)) {
      this.#actors.delete(actor.jobId);
      return;
    }
    const at = nextWakeAt(actor.state, this.#o.settings);
    if (at === undefined) return;
    const delay = Math.max(0, at - this.#o.clock.now());
    actor.timer = setTimeout(() => {
      if (this.#closing || this.#actors.get(actor.jobId) !== actor) return;
      this.#mailbox.run(actor.jobId, () => this.#apply(actor.jobId, { type: 'timer' }, actor.partition)).catch((err: unknown) => {
        if (err instanceof NotOwnerError) return;
        this.#log.error({ [LOG.jobId]: actor.jobId, err: String(err) }, 'timer handling failed; retrying shortly');
        setTimeout(() => this.#arm(actor), 1000).unref();
      });
    }, Math.min(delay, 2 ** 31 - 1));
    actor.timer.unref();
  }

  async #reportQueueDepth(): Promise<void> {
    try {
      for (const { stage, engineId } of this.#o.engineIds) {
        const [lag] = await consumerGroupLag(this.#o.admin, engineGroupId(this.#o.topicPrefix, engineId), [this.topic(topicForStage(stage))]);
        this.#o.metrics.queueDepth.set({ engine_id: engineId, stage }, lag?.lag ?? 0);
      }
    } catch (err) {
      this.#log.debug({ err: String(err) }, 'queue depth unavailable');
    }
  }
}
