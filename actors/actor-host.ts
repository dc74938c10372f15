/**
 * The actor host's job actors: one per live job on the jobs.events partitions Kafka assigns this host, run by the
 * shared actor runtime (actors/actor-runtime.ts: persist the snapshot with its outbox to jobs.state, send the outbox,
 * commit; fenced by partition claims). This file is what is particular to jobs: the transition step with its
 * handle_job_created trace, the outbox's dispatches, cancel signals and analytics, the job's end metrics, and queue depth.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../core/logger.js';
import type { OrchestratorMetrics } from '../core/metrics.js';
import { ATTR, LOG, SPAN } from '../core/observability-names.js';
import type { Tracer } from '../core/telemetry/tracer.js';
import {
  ANALYTICS, JOB_EVENTS, JOB_RESULTS, JOB_STATE, SCHEMA_VERSION, TASK_CONTROL, checkJobEvent, consumerGroupLag, groupsWithMembers,
  decodeMessage, encodeMessage, engineGroupId, newMessageHeaders, partOfStage, partitionForPart, prefixed, taskTopicFor,
  type AnalyticsMessage, type JobEvent, type JobState, type TaskCancel,
} from '../streams/index.js';
import { ActorRuntime, type ActorHostConnections, type ActorHostTuning, type StepContext } from './actor-runtime.js';
import { isTerminalJob, nextWakeAt, restoredState, transition, type ActorInput, type TransitionSettings } from './job-transition.js';
import { outboxFor, taskCancel, type LocalEffects } from './outbox.js';
import { JOB_TAIL_CODEC } from './state-tail.js';

export interface ActorHostOptions extends ActorHostConnections, ActorHostTuning {
  readonly topicPrefix: string;
  readonly settings: TransitionSettings;
  /** (stage, engine id) pairs whose queue depth this host reports. */
  readonly engineIds: readonly { stage: string; engineId: string }[];
  readonly tracer: Tracer;
  readonly metrics: OrchestratorMetrics;
  /** How often consumer-group lag feeds dalston_queue_depth. @default 5000 */
  readonly queueDepthIntervalMs?: number;
}

/**
 * An event for a job with no live actor here: job.created of a job never seen creates it; job.deleted of a finished
 * job removes its snapshot; anything else (a replayed job.created of a finished or deleted job, a late task event,
 * a second deletion, an event for a job this host never knew) changes nothing.
 */
export function jobWithoutLive(input: ActorInput, finished: { readonly status: string } | undefined): 'apply' | 'ignore' | 'remove' {
  if (input.type === 'job.deleted') return finished && finished.status !== 'removed' ? 'remove' : 'ignore';
  return input.type === 'job.created' && !finished ? 'apply' : 'ignore';
}

export class ActorHost {
  readonly #o: ActorHostOptions;
  readonly #log: Logger;
  readonly #runtime: ActorRuntime<JobState, JobEvent, ActorInput>;
  readonly instanceId = `actors-${randomUUID().slice(0, 8)}`;
  #depthTimer?: NodeJS.Timeout;
  /** Engines whose consumer group has been seen (members or a commit): only they report queue depth. */
  readonly #seenEngines = new Set<string>();
  /** Jobs this host finished, by status (tests and benchmarks compare them with the audit trail). */
  readonly finishedCount = { completed: 0, failed: 0, cancelled: 0 };

  constructor(options: ActorHostOptions) {
    this.#o = options;
    this.#log = options.log.child({ component: 'actor-host', instance: this.instanceId });
    const groupBase = options.topicPrefix.replace(/\.$/, '');
    this.#runtime = new ActorRuntime<JobState, JobEvent, ActorInput>({
      noun: 'job', nouns: 'jobs', partitionNoun: 'partition', actorsNoun: 'actors', logKey: LOG.jobId,
      eventsTopic: this.topic(JOB_EVENTS.name), stateTopic: this.topic(JOB_STATE.name),
      groupId: `${groupBase}-actors`, tailGroupPrefix: groupBase,
      codec: JOB_TAIL_CODEC,
      decodeEvent: (value) => decodeMessage(checkJobEvent, value),
      eventKey: (ev) => ev.jobId,
      encodeSnapshot: (state) => encodeMessage({ v: SCHEMA_VERSION, type: 'job.snapshot', state }),
      restore: restoredState,
      isTerminal: (state) => isTerminalJob(state.status),
      nextWakeAt: (state) => nextWakeAt(state, options.settings),
      timerInput: { type: 'timer' },
      withoutLive: jobWithoutLive,
      // A finished job's actor is gone, but a start of one of its tasks is a redundant run: stop it.
      finishedInput: async (jobId, input, log) => {
        if (input.type !== 'task.started') return;
        await this.#cancelSuperseded(taskCancel({ jobId, taskId: input.taskId, attempt: input.attempt }, this.#o.clock.now()), input, {}, log);
      },
      step: (ctx) => this.#step(ctx),
      sendOutbox: (state) => this.#sendOutbox(state),
    }, { ...options, component: 'actor-host', instanceId: this.instanceId, maxWaitTimeMs: 100 });
  }

  private topic(name: string): string {
    return prefixed(this.#o.topicPrefix, name);
  }

  get liveActors(): number {
    return this.#runtime.liveCount;
  }

  /** The state tail's consumer group (per instance; it commits nothing, so it vanishes from the broker once empty). */
  get stateTailGroup(): string {
    return this.#runtime.stateTailGroup;
  }

  get ownedPartitions(): number[] {
    return this.#runtime.ownedPartitions;
  }

  /** Owned partitions whose jobs are all restored. */
  get restoredPartitions(): number[] {
    return this.#runtime.restoredPartitions;
  }

  /** Refuses to start when jobs.events and jobs.state differ in partition count (hosts would restore the wrong jobs). */
  async start(): Promise<void> {
    await this.#runtime.start();
    const interval = this.#o.queueDepthIntervalMs ?? 5000;
    this.#depthTimer = setInterval(() => void this.#reportQueueDepth(), interval);
    this.#depthTimer.unref();
  }

  /** Drains in-flight events, stops timers, leaves the groups. */
  async close(): Promise<void> {
    if (this.#depthTimer) clearInterval(this.#depthTimer);
    await this.#runtime.close();
  }

  /** Current state of a live job as this host knows it (tests, debugging). */
  jobState(jobId: string): JobState | undefined {
    return this.#runtime.state(jobId);
  }

  // ---- the job actor's step ------------------------------------------------------------------------------

  async #step(ctx: StepContext<JobState, ActorInput>): Promise<void> {
    const { id: jobId, input, before, requestId } = ctx;
    const run = async (traceparent?: string): Promise<void> => {
      const result = transition(before, input, {
        now: ctx.now, settings: this.#o.settings, ...(requestId ? { requestId } : {}), ...(traceparent ? { traceparent } : {}),
      });
      if (!result.changed || !result.state) {
        ctx.unchanged();
        // An unchanged result's effects are advisory (see TransitionResult.changed): sent once, never persisted.
        const state = result.state;
        for (const e of result.effects) {
          if (e.type !== 'cancel_task' || !state) continue;
          await this.#cancelSuperseded(taskCancel(e, ctx.now), input, { requestId: state.requestId, tenantId: state.tenantId }, ctx.log);
        }
        return;
      }
      if (result.durable === false && before) {
        ctx.keep(result.state);
        return;
      }
      const { outbox, local } = outboxFor(result.state, result.effects, ctx.now);
      const state = await ctx.commit({ ...result.state, outbox });
      await this.#runLocal(state, local);
      if (input.type !== 'timer') ctx.log.info({ event: input.type, status: state.status }, 'job event applied');
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

  /**
   * Tells engines to stop an attempt the job is done with that started again (its dispatch delivered once more, e.g.
   * to another engine after a lost commit). Best effort: losing the cancel only lets a redundant run finish.
   */
  async #cancelSuperseded(cancel: TaskCancel, started: ActorInput, headers: { requestId?: string; tenantId?: string }, log: Logger): Promise<void> {
    const fields = { [LOG.taskId]: cancel.taskId, attempt: cancel.attempt, ...(started.type === 'task.started' ? { instance: started.instanceId } : {}) };
    try {
      await this.#o.producer.send(this.topic(TASK_CONTROL.name), {
        key: cancel.jobId, value: encodeMessage(cancel), headers: newMessageHeaders({ ...headers, clock: this.#o.clock }),
      });
      log.info(fields, 'an attempt the job is done with started again; its engine was told to stop');
    } catch (err) {
      log.warn({ ...fields, err: err instanceof Error ? err.message : String(err) }, 'cancel of a superseded attempt not sent');
    }
  }

  /** Spans of later events hang under the job's handle_job_created span, kept in the state as a traceparent. */
  #jobSpan<T>(state: JobState, name: string, attributes: Record<string, string | number | undefined>, fn: () => Promise<T>): Promise<T> {
    return this.#o.tracer.startSpan(name, attributes, fn, state.traceparent ? { parentCarrier: { traceparent: state.traceparent } } : {});
  }

  /** Sends the outbox of a snapshot: dispatches, cancel signals, analytics, the outcome (receivers drop a repeat by id). */
  async #sendOutbox(state: JobState): Promise<void> {
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
            // Keyed by task, not job, and the parts of a long file on consecutive partitions: every instance of the
            // engine takes its share (by job, all of a job's parts would sit on one partition, read by one instance).
            const part = task.config.chunkEnd !== undefined ? partOfStage(task.stage) : undefined;
            await this.#o.producer.send(this.topic(entry.topic), {
              key: task.taskId, value: encodeMessage(task), headers: headers(),
              ...(part !== undefined ? { partition: partitionForPart(task.jobId, part) } : {}),
            });
          });
          break;
        }
        case 'cancel':
          await this.#o.producer.send(this.topic(TASK_CONTROL.name), { key: entry.cancel.jobId, value: encodeMessage(entry.cancel), headers: headers() });
          break;
        case 'analytics':
          analytics.push(entry.message);
          break;
        case 'outcome':
          await this.#o.producer.send(this.topic(JOB_RESULTS.name), { key: entry.outcome.jobId, value: encodeMessage(entry.outcome), headers: headers() });
          break;
      }
    }
    if (analytics.length > 0) {
      await this.#o.producer.sendBatch([{
        topic: this.topic(ANALYTICS.name),
        messages: analytics.map((a) => ({ key: state.jobId, value: encodeMessage(a), headers: headers() })),
      }]);
    }
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

  /**
   * Queue depth of every engine that exists or has existed (its group has members now or has committed once).
   * An engine of the catalogue that was never deployed has no gauge: its topic's lag would grow with every job that
   * does not use it, and QueueDepthHigh would fire forever on a default install.
   */
  async #reportQueueDepth(): Promise<void> {
    try {
      const groups = this.#o.engineIds.map(({ engineId }) => engineGroupId(this.#o.topicPrefix, engineId));
      const live = await groupsWithMembers(this.#o.admin, groups);
      for (const [i, { stage, engineId }] of this.#o.engineIds.entries()) {
        const group = groups[i] ?? '';
        const [lag] = await consumerGroupLag(this.#o.admin, group, [this.topic(taskTopicFor(stage, engineId))]);
        if (live.has(group) || lag?.committedOnce) this.#seenEngines.add(engineId);
        if (this.#seenEngines.has(engineId)) this.#o.metrics.queueDepth.set({ engine_id: engineId, stage }, lag?.lag ?? 0);
      }
    } catch (err) {
      this.#log.debug({ err: String(err) }, 'queue depth unavailable');
    }
  }
}
