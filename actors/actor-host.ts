/**
 * The actor host: owns the jobs.events partitions Kafka assigns it and runs one job actor per live job on them.
 * For each event: transition (pure) → persist the snapshot to the compacted jobs.state topic (acknowledged) →
 * run the effects (dispatch tasks, cancel signals, analytics) → commit the event's offset. A crash anywhere
 * in between redelivers the event; the transition ignores what it already applied, and a restored actor
 * re-sends the dispatches of its ready tasks, so nothing is lost and a job completes exactly once.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { KeyedMailbox } from '../core/mailbox.js';
import type { OrchestratorMetrics } from '../core/metrics.js';
import { ATTR, LOG, SPAN } from '../core/observability-names.js';
import type { Tracer } from '../core/telemetry/tracer.js';
import type { StreamProducer} from '../streams/index.js';
import {
  ANALYTICS, JOB_EVENTS, JOB_STATE, SCHEMA_VERSION, TASK_CONTROL, StreamConsumer, checkJobEvent, consumerGroupLag,
  decodeMessage, encodeMessage, engineGroupId, newMessageHeaders, prefixed, topicForStage,
  type Admin, type AnalyticsMessage, type ConsumedMessage, type DeadLetterWriter, type JobEvent, type JobState, type Kafka,
  type TaskState, type TopicPartitions,
} from '../streams/index.js';
import { dispatchEffect, isTerminalJob, nextWakeAt, transition, type ActorInput, type Effect, type TransitionSettings } from './job-transition.js';
import { StateTail } from './state-tail.js';

export interface ActorHostOptions {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: StreamProducer;
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
}

interface LiveActor {
  timer?: NodeJS.Timeout;
  partition: number;
}

export class ActorHost {
  readonly #o: ActorHostOptions;
  readonly #log: Logger;
  readonly #mailbox = new KeyedMailbox(10_000);
  readonly #events: StreamConsumer<JobEvent>;
  readonly #tail: StateTail;
  readonly #actors = new Map<string, LiveActor>();
  readonly #owned = new Set<number>();
  readonly instanceId = `actors-${randomUUID().slice(0, 8)}`;
  #depthTimer?: NodeJS.Timeout;
  #closing = false;
  /** Jobs this host finished (for tests and the benchmark: a job must finish exactly once). */
  readonly finished: { jobId: string; status: string }[] = [];

  constructor(options: ActorHostOptions) {
    this.#o = options;
    this.#log = options.log.child({ component: 'actor-host', instance: this.instanceId });
    const groupBase = options.topicPrefix.replace(/\.$/, '');
    this.#tail = new StateTail({
      kafka: options.kafka, admin: options.admin, topic: this.topic(JOB_STATE.name), groupPrefix: groupBase,
      deadLetter: options.deadLetter, log: options.log,
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
      maxWaitTimeMs: 100,
      sessionTimeoutMs: 10_000,
    });
  }

  private topic(name: string): string {
    return prefixed(this.#o.topicPrefix, name);
  }

  get liveActors(): number {
    return this.#actors.size;
  }

  get ownedPartitions(): number[] {
    return [...this.#owned].sort((a, b) => a - b);
  }

  async start(): Promise<void> {
    await this.#tail.start();
    await this.#events.start();
    const interval = this.#o.queueDepthIntervalMs ?? 5000;
    this.#depthTimer = setInterval(() => void this.#reportQueueDepth(), interval);
    this.#depthTimer.unref();
  }

  /** Drains in-flight events, stops timers, leaves the groups. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#depthTimer) clearInterval(this.#depthTimer);
    await this.#events.close();
    for (const a of this.#actors.values()) if (a.timer) clearTimeout(a.timer);
    this.#actors.clear();
    await this.#tail.close();
  }

  /** Current state of a job as this host knows it (tests, debugging). */
  jobState(jobId: string): JobState | undefined {
    return this.#tail.get(jobId);
  }

  // ---- partition ownership ----------------------------------------------------------------------------

  async #onAssigned(assigned: readonly TopicPartitions[]): Promise<void> {
    const partitions = assigned.flatMap((a) => a.partitions);
    await this.#tail.waitCaughtUp(partitions);
    let restored = 0;
    for (const p of partitions) {
      this.#owned.add(p);
      for (const state of this.#tail.liveInPartition(p)) {
        restored++;
        this.#actors.set(state.jobId, { partition: p });
        // The previous owner may have died between persisting and dispatching: send ready tasks again.
        // Engines and the transition both tolerate the duplicate (same task id and attempt).
        await this.#mailbox.run(state.jobId, async () => {
          const current = this.#tail.get(state.jobId) ?? state;
          await this.#runEffects(current, current.tasks.filter((t) => t.status === 'ready').map((t) => dispatchEffect(current, t, this.#o.settings)));
          this.#arm(current);
        });
      }
    }
    this.#log.info({ partitions, restored }, 'partitions assigned; actors restored');
  }

  async #onRevoked(revoked: readonly TopicPartitions[]): Promise<void> {
    const partitions = new Set(revoked.flatMap((r) => r.partitions));
    for (const p of partitions) this.#owned.delete(p);
    let dropped = 0;
    for (const [jobId, actor] of this.#actors) {
      if (!partitions.has(actor.partition)) continue;
      if (actor.timer) clearTimeout(actor.timer);
      this.#actors.delete(jobId);
      dropped++;
    }
    this.#log.info({ partitions: [...partitions], dropped }, 'partitions revoked; actors dropped');
  }

  // ---- event handling -----------------------------------------------------------------------------------

  async #onEvent(m: ConsumedMessage<JobEvent>): Promise<void> {
    const ev = m.value;
    await this.#mailbox.run(ev.jobId, () => this.#apply(ev.jobId, ev, m.partition, m.headers.requestId));
  }

  async #apply(jobId: string, input: ActorInput, partition: number, requestId?: string): Promise<void> {
    const before = this.#tail.get(jobId);
    const log = this.#log.child({ [LOG.jobId]: jobId, ...(requestId ?? before?.requestId ? { [LOG.requestId]: requestId ?? before?.requestId } : {}) });
    const run = async (traceparent?: string): Promise<void> => {
      const result = transition(before, input, {
        now: this.#o.clock.now(), settings: this.#o.settings,
        ...(requestId ? { requestId } : {}), ...(traceparent ? { traceparent } : {}),
      });
      if (!result.changed || !result.state) {
        if (input.type !== 'timer') log.debug({ event: input.type }, 'event changed nothing (replay or stale attempt)');
        // A timer can fire a millisecond before the wall clock reaches its moment: arm it again, or the job stalls.
        if (before) this.#arm(before);
        return;
      }
      const state = result.state;
      await this.#persist(state);
      if (!this.#actors.has(jobId)) this.#actors.set(jobId, { partition });
      await this.#runEffects(state, result.effects);
      if (input.type !== 'timer' && input.type !== 'task.heartbeat') log.info({ event: input.type, status: state.status }, 'job event applied');
      this.#arm(state);
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

  async #persist(state: JobState): Promise<void> {
    await this.#o.producer.send(this.topic(JOB_STATE.name), {
      key: state.jobId,
      value: encodeMessage({ v: SCHEMA_VERSION, type: 'job.snapshot', state }),
      headers: newMessageHeaders({ requestId: state.requestId, tenantId: state.tenantId }),
    });
    this.#tail.remember(state, this.#actors.get(state.jobId)?.partition ?? -1);
  }

  /** Spans of later events hang under the job's handle_job_created span, kept in the state as a traceparent. */
  #jobSpan<T>(state: JobState, name: string, attributes: Record<string, string | number | undefined>, fn: () => Promise<T>): Promise<T> {
    return this.#o.tracer.startSpan(name, attributes, fn, state.traceparent ? { parentCarrier: { traceparent: state.traceparent } } : {});
  }

  async #runEffects(state: JobState, effects: readonly Effect[]): Promise<void> {
    const headers = () => newMessageHeaders({ requestId: state.requestId, tenantId: state.tenantId, clock: this.#o.clock });
    const analytics: AnalyticsMessage[] = [];
    for (const effect of effects) {
      switch (effect.type) {
        case 'dispatch': {
          const { task } = effect;
          await this.#jobSpan(state, SPAN.scheduleTask(task.stage), {
            [ATTR.jobId]: task.jobId, [ATTR.taskId]: task.taskId, [ATTR.stage]: task.stage, [ATTR.engineId]: task.engineId,
            [ATTR.retries]: task.attempt - 1, [ATTR.requestId]: state.requestId,
          }, async () => {
            await this.#o.producer.send(this.topic(effect.topic), { key: task.jobId, value: encodeMessage(task), headers: headers() });
          });
          break;
        }
        case 'cancel_task':
          await this.#o.producer.send(this.topic(TASK_CONTROL.name), {
            key: effect.jobId,
            value: encodeMessage({ v: SCHEMA_VERSION, type: 'task.cancel', jobId: effect.jobId, taskId: effect.taskId, attempt: effect.attempt, at: this.#o.clock.now() }),
            headers: headers(),
          });
          break;
        case 'task_finished':
          analytics.push(taskFact(state, effect.task, effect.outcome, effect.metrics));
          break;
        case 'job_started':
          break;
        case 'job_finished': {
          const span = effect.status === 'completed' ? SPAN.markJobCompleted : effect.status === 'failed' ? SPAN.markJobFailed : SPAN.markJobCancelled;
          await this.#jobSpan(state, span, { [ATTR.jobId]: state.jobId, [ATTR.audioDurationSeconds]: state.audioDurationSeconds }, async () => undefined);
          this.#o.metrics.jobs.inc({ status: effect.status });
          this.#o.metrics.jobDuration.observe({ status: effect.status }, Math.max(0, ((state.completedAt ?? this.#o.clock.now()) - state.createdAt) / 1000));
          analytics.push({
            v: SCHEMA_VERSION, type: 'analytics.audit_event', time: this.#o.clock.now(), eventId: randomUUID(),
            eventType: effect.status === 'completed' ? 'job.completed' : effect.status === 'failed' ? 'job.failed' : 'job.cancelled',
            tenantId: state.tenantId, actorKeyId: state.keyId, jobId: state.jobId, sessionId: '',
            audioDurationSeconds: state.audioDurationSeconds ?? 0, requestId: state.requestId, traceId: traceIdOf(state.traceparent),
            details: JSON.stringify(state.error ? { error_code: state.error.code } : {}),
          });
          this.finished.push({ jobId: state.jobId, status: effect.status });
          this.#log.info({ [LOG.jobId]: state.jobId, [LOG.requestId]: state.requestId, status: effect.status }, 'job finished');
          break;
        }
      }
    }
    if (analytics.length > 0) {
      await this.#o.producer.sendBatch([{
        topic: this.topic(ANALYTICS.name),
        messages: analytics.map((a) => ({ key: state.jobId, value: encodeMessage(a), headers: headers() })),
      }]);
    }
  }

  /** One timer per actor, at the next moment its state needs attention. */
  #arm(state: JobState): void {
    const actor = this.#actors.get(state.jobId);
    if (!actor) return;
    if (actor.timer) clearTimeout(actor.timer);
    actor.timer = undefined;
    if (isTerminalJob(state.status)) {
      this.#actors.delete(state.jobId);
      return;
    }
    const at = nextWakeAt(state, this.#o.settings);
    if (at === undefined) return;
    const delay = Math.max(0, at - this.#o.clock.now());
    actor.timer = setTimeout(() => {
      if (this.#closing || !this.#owned.has(actor.partition)) return;
      this.#mailbox.run(state.jobId, () => this.#apply(state.jobId, { type: 'timer' }, actor.partition)).catch((err: unknown) => {
        this.#log.error({ [LOG.jobId]: state.jobId, err: String(err) }, 'timer handling failed; retrying shortly');
        const again = this.#tail.get(state.jobId);
        if (again) setTimeout(() => this.#arm(again), 1000).unref();
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

function traceIdOf(traceparent: string | undefined): string {
  return traceparent?.split('-')[1] ?? '';
}

function taskFact(state: JobState, task: TaskState, outcome: string, metrics?: { processingMs: number; queueWaitMs: number; modelLoadMs: number; language?: string; model?: string }): AnalyticsMessage {
  const last = task.attempts[task.attempts.length - 1];
  return {
    v: SCHEMA_VERSION, type: 'analytics.task_fact', time: last?.endedAt ?? Date.now(), jobId: state.jobId, taskId: task.taskId,
    tenantId: state.tenantId, stage: task.stage, engineId: task.engineId, model: metrics?.model ?? task.config.model ?? '',
    language: metrics?.language ?? state.language ?? task.config.language ?? '',
    status: outcome === 'completed' ? 'success' : outcome === 'cancelled' ? 'cancelled' : 'failure',
    audioDurationSeconds: state.audioDurationSeconds ?? 0,
    processingMs: metrics?.processingMs ?? (last?.startedAt !== undefined ? Math.max(0, last.endedAt - last.startedAt) : 0),
    queueWaitMs: metrics?.queueWaitMs ?? task.queueWaitMs ?? 0, modelLoadMs: metrics?.modelLoadMs ?? 0,
    retries: task.retries, attempt: last?.attempt ?? task.attempt, traceId: traceIdOf(state.traceparent), requestId: state.requestId,
  };
}
