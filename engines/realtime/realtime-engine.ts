/**
 * The streaming engine: consumes realtime.input in the group every engine instance joins (its members are the live
 * instances the gateway counts for capacity), holds one RealtimeSession per session of the partitions it owns, and
 * commits each partition only up to the first message a session on it still needs (input-ledger.ts).
 *
 * Kafka partition ownership is session stickiness (key: session id). When an engine dies its partitions move to
 * another member, which re-reads from the committed offset and restores each session from its snapshot in
 * sessions.state (resume-plan.ts): the open utterance is decoded again, and no final is emitted twice or lost.
 */
import { randomUUID } from 'node:crypto';
import { ROOT_CONTEXT, context as otelContext, defaultTextMapGetter, propagation } from '@opentelemetry/api';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { RealtimeEngineMetrics, RealtimeHopMetric } from '../../core/metrics.js';
import type { Tracer } from '../../core/telemetry/tracer.js';
import {
  REALTIME_EVENTS, REALTIME_INPUT, SESSION_STATE, StreamConsumer, checkRealtimeInput, decodeMessage, encodeMessage, newMessageHeaders, prefixed,
  realtimeEngineGroupId,
  type Admin, type ConsumedMessage, type DeadLetterWriter, type DeferredDurability, type Kafka, type MessageSender, type RealtimeInput, type TopicPartitions,
} from '../../streams/index.js';
import type { VadFrameModel } from '../streaming/index.js';
import { DecodeScheduler } from './decode-scheduler.js';
import type { ModelPool } from './model-pool.js';
import { RealtimeSession, type SessionOutbound } from './realtime-session.js';
import { planSession } from './resume-plan.js';
import type { SessionRecord } from './session-record.js';
import { SessionSnapshots } from './session-snapshots.js';

/** Latency tuning of the input consumer (see docs/realtime-engine.md). */
export interface RealtimeConsumerTuning {
  /** Longest a fetch waits at the broker when no audio is there. @default 20 */
  readonly maxWaitTimeMs?: number;
  /** A dead engine's partitions move after this (the broker's group.min.session.timeout.ms is 6000 by default). @default 6000 */
  readonly sessionTimeoutMs?: number;
  /** @default 1000 */
  readonly heartbeatIntervalMs?: number;
}

export interface RealtimeEngineOptions {
  readonly kafka: Kafka;
  readonly admin: Admin;
  /** Publishes replies (gateway reply topics): its own producer, so replies never wait behind events. */
  readonly replies: MessageSender;
  /** Publishes rt.utterance.final / rt.session.ended to realtime.events. */
  readonly events: MessageSender;
  readonly deadLetter: DeadLetterWriter;
  readonly topicPrefix: string;
  readonly models: ModelPool;
  readonly vad: VadFrameModel;
  readonly clock: Clock;
  readonly log: Logger;
  readonly tracer: Tracer;
  readonly metrics?: RealtimeEngineMetrics;
  readonly hop?: RealtimeHopMetric;
  /** Id of this process in rt.utterance.final (engineInstance). @default a random UUID */
  readonly instanceId?: string;
  /** Per-session mailbox bound (messages). @default 3000 */
  readonly queueCapacity?: number;
  readonly tuning?: RealtimeConsumerTuning;
  /** Decode scheduling of all sessions (decode-scheduler.ts). @default one decode at a time, partials wait at most 500 ms */
  readonly decodes?: { readonly concurrency?: number; readonly partialMaxWaitMs?: number };
  /** How far behind real time a session may be before its partials are skipped. @default 1000 */
  readonly partialSkipBehindMs?: number;
}

export class RealtimeEngine {
  readonly instanceId: string;
  readonly #o: RealtimeEngineOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, RealtimeSession>();
  /** Sessions that ended or failed here, by partition: later messages of theirs are released at once. */
  readonly #finished = new Map<number, Set<string>>();
  readonly #snapshots: SessionSnapshots;
  readonly #consumer: StreamConsumer<RealtimeInput>;
  readonly #outbound: SessionOutbound;
  readonly #decodes: DecodeScheduler;

  constructor(options: RealtimeEngineOptions) {
    this.#o = options;
    this.instanceId = options.instanceId ?? randomUUID();
    this.#log = options.log.child({ component: 'realtime-engine', engine_instance: this.instanceId });
    this.#decodes = new DecodeScheduler({ clock: options.clock, ...options.decodes });
    const eventsTopic = prefixed(options.topicPrefix, REALTIME_EVENTS.name);
    this.#outbound = {
      reply: async (topic, sessionId, origin, message) => {
        await options.replies.send(topic, {
          key: sessionId, value: encodeMessage(message), headers: newMessageHeaders({ requestId: origin.requestId, tenantId: origin.tenantId, clock: options.clock }),
        });
      },
      event: async (sessionId, origin, message) => {
        // Sent in the session's trace (a Kafka instrumentation parents its `send` span on the active context): the
        // actor host's handling of finals and the end joins it, one trace per session.
        const ctx = origin.traceparent === undefined ? otelContext.active() : propagation.extract(ROOT_CONTEXT, { traceparent: origin.traceparent }, defaultTextMapGetter);
        await otelContext.with(ctx, () => options.events.send(eventsTopic, {
          key: sessionId, value: encodeMessage(message), headers: newMessageHeaders({ requestId: origin.requestId, tenantId: origin.tenantId, clock: options.clock, context: ctx }),
        }));
      },
    };
    this.#snapshots = new SessionSnapshots({
      kafka: options.kafka, admin: options.admin, topic: prefixed(options.topicPrefix, SESSION_STATE.name),
      groupPrefix: options.topicPrefix.replace(/\.$/, ''), deadLetter: options.deadLetter, log: options.log,
      onRecord: (r) => this.#onRecord(r),
    });
    const tuning = options.tuning ?? {};
    this.#consumer = new StreamConsumer<RealtimeInput>({
      kafka: options.kafka,
      groupId: realtimeEngineGroupId(options.topicPrefix),
      topics: [prefixed(options.topicPrefix, REALTIME_INPUT.name)],
      decode: (value) => decodeMessage(checkRealtimeInput, value),
      handler: (m) => this.#onInput(m),
      deadLetter: options.deadLetter,
      log: options.log,
      // Every partition at once: the handler only queues into the session's mailbox.
      partitionsConsumedConcurrently: REALTIME_INPUT.partitions,
      fromBeginning: true,
      maxWaitTimeMs: tuning.maxWaitTimeMs ?? 20,
      sessionTimeoutMs: tuning.sessionTimeoutMs ?? 6000,
      heartbeatIntervalMs: tuning.heartbeatIntervalMs ?? 1000,
      // Members rejoin a rebalance within a few seconds or are dropped, so a failover is not held up by a slow peer.
      rebalanceTimeoutMs: 10_000,
      // Held messages are released only by the session actor's snapshots: on close there is nothing to wait for.
      drainTimeoutMs: 1000,
      maxBytesPerPartition: 256 * 1024,
      hooks: {
        // Restore needs the snapshots written up to now: messages of new partitions wait for the tail to catch up.
        onPartitionsAssigned: async (assigned) => {
          this.#log.info({ assigned: assigned.flatMap((a) => a.partitions) }, 'partitions assigned: reading session snapshots');
          await this.#snapshots.caughtUp();
        },
        onPartitionsRevoked: (revoked) => this.#onRevoked(revoked),
      },
    });
  }

  /** Sessions served now. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** realtime.input partitions this instance owns. */
  get partitions(): number[] {
    return this.#consumer.assignment.flatMap((a) => a.partitions);
  }

  async start(): Promise<void> {
    await this.#snapshots.start();
    await this.#snapshots.caughtUp();
    await this.#consumer.start();
    this.#log.info({ partitions: this.partitions }, 'streaming engine joined the group');
  }

  async close(): Promise<void> {
    // Sessions stop first (no reply after this point), then the member leaves the group so its partitions move at
    // once; what was not released is re-read by their next owner.
    await Promise.all([...this.#sessions.values()].map((s) => s.stop()));
    this.#sessions.clear();
    this.#gauge();
    await this.#consumer.close();
    await this.#snapshots.close();
  }

  async #onInput(m: ConsumedMessage<RealtimeInput>): Promise<DeferredDurability> {
    const input = m.value;
    const sessionId = input.sessionId;
    const offset = BigInt(m.offset);
    const receivedAt = this.#o.clock.now();
    // Never `void`: a message committed out of order would move the partition's offset past earlier needed ones.
    const released: DeferredDurability = { durable: Promise.resolve() };
    if (this.#finished.get(m.partition)?.has(sessionId) === true) return released;
    let session = this.#sessions.get(sessionId);
    if (session === undefined) {
      const plan = planSession(input, offset, m.partition, this.#snapshots.get(sessionId));
      switch (plan.kind) {
        case 'finished':
          this.#markFinished(m.partition, sessionId);
          this.#log.info({ session_id: sessionId, reason: plan.reason }, 'input of a finished session skipped');
          return released;
        case 'orphan':
          this.#log.warn({ session_id: sessionId, type: input.type, offset: m.offset }, 'input of an unknown session (no start, no snapshot) skipped');
          return released;
        case 'serve':
          session = new RealtimeSession({
            sessionId, partition: m.partition, plan, recognizerFor: (model) => this.#o.models.get(model), vad: this.#o.vad, decodeGate: this.#decodes, outbound: this.#outbound,
            instanceId: this.instanceId, clock: this.#o.clock, log: this.#o.log, tracer: this.#o.tracer,
            ...(this.#o.metrics !== undefined && { metrics: this.#o.metrics }), ...(this.#o.hop !== undefined && { hop: this.#o.hop }),
            ...(this.#o.queueCapacity !== undefined && { queueCapacity: this.#o.queueCapacity }),
            ...(this.#o.partialSkipBehindMs !== undefined && { partialSkipBehindMs: this.#o.partialSkipBehindMs }),
            onFinished: (id) => this.#onFinished(id, m.partition),
          });
          this.#sessions.set(sessionId, session);
          this.#gauge();
          break;
      }
    }
    let release: () => void = () => undefined;
    const durable = new Promise<void>((resolve) => {
      release = resolve;
    });
    await session.enqueue({ offset, input, receivedAt, release });
    return { durable };
  }

  #onRecord(record: SessionRecord): void {
    this.#sessions.get(record.sessionId)?.onSnapshot(record);
  }

  #onFinished(sessionId: string, partition: number): void {
    this.#sessions.delete(sessionId);
    this.#markFinished(partition, sessionId);
    this.#gauge();
  }

  #markFinished(partition: number, sessionId: string): void {
    const set = this.#finished.get(partition) ?? new Set<string>();
    set.add(sessionId);
    this.#finished.set(partition, set);
  }

  async #onRevoked(revoked: readonly TopicPartitions[]): Promise<void> {
    const lost = new Set(revoked.flatMap((r) => r.partitions));
    const stopping: Promise<void>[] = [];
    for (const [id, s] of this.#sessions) {
      if (!lost.has(s.partition)) continue;
      this.#sessions.delete(id);
      stopping.push(s.stop());
    }
    for (const p of lost) this.#finished.delete(p);
    this.#log.info({ revoked: [...lost], sessions_stopped: stopping.length }, 'partitions revoked: their sessions move');
    await Promise.all(stopping);
    this.#gauge();
  }

  #gauge(): void {
    this.#o.metrics?.sessions.set(this.#sessions.size);
  }
}
