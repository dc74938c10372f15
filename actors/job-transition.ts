/**
 * The job actor's logic as a pure function: transition(state, input, ctx) → { state, effects }. No I/O, no
 * clock reads (time comes in ctx.now), so every path — retries, timeouts, cancellation, replays — is tested
 * with plain values. The host persists the new state before it runs the effects.
 *
 * Idempotence: every task event names its task and attempt; an event for another attempt, or for a task that
 * is already terminal, changes nothing. A replayed job.created for an existing job changes nothing.
 */
import type { DalstonConfig } from '../core/config.js';
import type { FailureRecord } from '../core/errors.js';
import { assertNever } from '../core/errors.js';
import type {
  AttemptRecord, JobCreated, JobEvent, JobState, JobStatus, TaskCompleted, TaskDispatch, TaskFailed, TaskState,
} from '../streams/index.js';
import { SCHEMA_VERSION, baseStage, taskTopicFor } from '../streams/index.js';
import { artifactKeys } from '../storage/index.js';
import { buildDag, splitTranscribe, type EngineSelection } from './dag.js';

export interface TransitionSettings {
  /** Retries of a retryable failure before the stage fails for good. */
  readonly maxRetries: number;
  /** Floor of a task deadline, ms. */
  readonly minTaskTimeoutMs: number;
  /** Deadline multiplier over audio duration, per base stage (default 1). */
  readonly engineTimeFactor: Readonly<Record<string, number>>;
  /** A running task whose worker has not reported for this long is presumed dead. */
  readonly heartbeatTimeoutMs: number;
  /** First retry delay; doubles per retry. */
  readonly retryBaseDelayMs: number;
  /**
   * A ready task that no engine picks up within this long fails its stage (no engine serves it, or every instance is
   * gone): a job never waits forever in a queue nobody reads.
   */
  readonly queueTimeoutMs: number;
  readonly engines: EngineSelection;
  /** Audio longer than this (seconds) is transcribed in parts that run in parallel; 0: never split. @default 0 */
  readonly chunkSeconds?: number;
}

/** Deadline multiplier over the audio's duration, per base stage (others 1): transcription may run at a third of real time. */
export const ENGINE_TIME_FACTOR: Readonly<Record<string, number>> = { prepare: 1, transcribe: 3, merge: 1 };

/** The actor host's settings from its configuration: the deadline floor, heartbeat loss after three beats, retries. */
export function transitionSettings(
  config: Pick<DalstonConfig, 'taskMaxRetries' | 'taskMinTimeoutSeconds' | 'heartbeatSeconds' | 'retryBaseDelayMs' | 'taskQueueTimeoutSeconds' | 'chunkSeconds'>,
  engines: EngineSelection,
): TransitionSettings {
  return {
    maxRetries: config.taskMaxRetries, minTaskTimeoutMs: config.taskMinTimeoutSeconds * 1000, engineTimeFactor: ENGINE_TIME_FACTOR,
    heartbeatTimeoutMs: config.heartbeatSeconds * 3000, retryBaseDelayMs: config.retryBaseDelayMs,
    queueTimeoutMs: config.taskQueueTimeoutSeconds * 1000, engines, chunkSeconds: config.chunkSeconds,
  };
}

export interface TransitionContext {
  readonly now: number;
  readonly settings: TransitionSettings;
  /** Request correlation of the event being handled (from Kafka headers). */
  readonly requestId?: string;
  readonly traceparent?: string;
}

/** A timer tick: the host delivers one when nextWakeAt(state) has passed. */
export interface TimerTick {
  readonly type: 'timer';
}

export type ActorInput = JobEvent | TimerTick;

export type Effect =
  | { readonly type: 'dispatch'; readonly topic: string; readonly task: TaskDispatch }
  | { readonly type: 'cancel_task'; readonly jobId: string; readonly taskId: string; readonly attempt: number }
  | { readonly type: 'task_finished'; readonly task: TaskState; readonly outcome: AttemptRecord['outcome']; readonly metrics?: TaskCompleted['metrics'] }
  | { readonly type: 'job_started' }
  | { readonly type: 'job_finished'; readonly status: 'completed' | 'failed' | 'cancelled' };

export interface TransitionResult {
  /** undefined when the input does not concern an existing job (e.g. a task event for an unknown job). */
  readonly state: JobState | undefined;
  readonly effects: readonly Effect[];
  /**
   * False when nothing changed: the host may skip persisting. Effects of an unchanged result are advisory (a cancel of
   * a superseded attempt): sent at most once, best effort, never part of a snapshot.
   */
  readonly changed: boolean;
  /**
   * False for a change that need not be persisted (a heartbeat only moves lastHeartbeatAt; a restored actor gives its
   * running tasks a fresh heartbeat window instead). @default true when changed
   */
  readonly durable?: boolean;
}

const TERMINAL_TASK: ReadonlySet<TaskState['status']> = new Set(['completed', 'failed', 'cancelled', 'skipped']);
const TERMINAL_JOB: ReadonlySet<JobStatus> = new Set(['completed', 'failed', 'cancelled']);

export function isTerminalJob(status: JobStatus): boolean {
  return TERMINAL_JOB.has(status);
}

export function transition(state: JobState | undefined, input: ActorInput, ctx: TransitionContext): TransitionResult {
  if (input.type === 'job.created') return onCreated(state, input, ctx);
  if (!state) return { state, effects: [], changed: false };
  switch (input.type) {
    case 'job.cancel_requested':
      return onCancelRequested(state, ctx);
    case 'task.started':
      return onSupersededStart(state, input) ?? withTask(state, input.taskId, input.attempt, (task) => {
        if (task.status !== 'ready' && task.status !== 'running') return undefined;
        const started: TaskState = {
          ...task, status: 'running', startedAt: input.at, instanceId: input.instanceId, lastHeartbeatAt: ctx.now,
          queueWaitMs: input.queueWaitMs, deadlineAt: ctx.now + taskTimeoutMs(state, task, ctx.settings),
        };
        return { task: started, effects: [] };
      }, (s) => {
        if (s.status !== 'pending') return { state: s, effects: [] };
        return { state: { ...s, status: 'running', startedAt: ctx.now }, effects: [{ type: 'job_started' }] };
      });
    case 'task.heartbeat': {
      if (isTerminalJob(state.status)) return { state, effects: [], changed: false };
      const task = state.tasks.find((t) => t.taskId === input.taskId);
      if (!task || task.attempt !== input.attempt || task.status !== 'running') return { state, effects: [], changed: false };
      // Kept in memory only: persisting every beat would write a snapshot (and two ClickHouse rows) per beat.
      return { state: replaceTask(state, { ...task, lastHeartbeatAt: ctx.now }), effects: [], changed: true, durable: false };
    }
    case 'task.released':
      return withTask(state, input.taskId, input.attempt, (task) => {
        if (task.status !== 'running' && task.status !== 'ready') return undefined;
        // Given back by an engine that is shutting down: run it again at once, without spending a retry.
        const released: TaskState = {
          ...task, status: 'pending', retryAt: undefined, startedAt: undefined, lastHeartbeatAt: undefined, deadlineAt: undefined,
          attempts: [...task.attempts, attemptRecord(task, input.engineId, input.instanceId, input.at, 'released')],
        };
        return { task: released, effects: [] };
      }, (s) => advance(s, ctx));
    case 'job.deleted':
      // Removing the snapshot is the host's business (a tombstone); the job's state does not change.
      return { state, effects: [], changed: false };
    case 'task.completed':
      return onTaskCompleted(state, input, ctx);
    case 'task.failed':
      return onTaskFailed(state, input, ctx);
    case 'timer':
      return onTimer(state, ctx);
    default:
      return assertNever(input, 'actor input');
  }
}

/**
 * The state a host that has just taken over a job acts on: running tasks get a fresh heartbeat window from `now`.
 * Heartbeats are not persisted, and those sent while the job had no owner are still queued behind the restore, so
 * judging worker loss by the snapshot's last beat would cancel healthy tasks; a worker that really died is still
 * found one heartbeat timeout after the takeover. In memory only (not a new revision).
 */
export function restoredState(state: JobState, now: number): JobState {
  if (isTerminalJob(state.status) || !state.tasks.some((t) => t.status === 'running')) return state;
  return {
    ...state,
    tasks: state.tasks.map((t) => (t.status === 'running' ? { ...t, lastHeartbeatAt: Math.max(t.lastHeartbeatAt ?? 0, now) } : t)),
  };
}

/** The earliest time the actor must wake up on its own (retry back-off, deadline, heartbeat loss), if any. */
export function nextWakeAt(state: JobState | undefined, settings: TransitionSettings): number | undefined {
  if (!state || isTerminalJob(state.status)) return undefined;
  let next: number | undefined;
  const consider = (t: number | undefined): void => {
    if (t !== undefined && (next === undefined || t < next)) next = t;
  };
  for (const task of state.tasks) {
    if (task.status === 'pending' && task.retryAt !== undefined) consider(task.retryAt);
    if (task.status === 'ready' && task.enqueuedAt !== undefined) consider(task.enqueuedAt + settings.queueTimeoutMs);
    if (task.status === 'running') {
      consider(task.deadlineAt);
      if (task.lastHeartbeatAt !== undefined) consider(task.lastHeartbeatAt + settings.heartbeatTimeoutMs);
    }
  }
  return next;
}

// ---------------------------------------------------------------------------------------------------------

function onCreated(state: JobState | undefined, ev: JobCreated, ctx: TransitionContext): TransitionResult {
  if (state) return { state, effects: [], changed: false };
  const created: JobState = {
    jobId: ev.jobId, tenantId: ev.tenantId, keyId: ev.keyId, requestId: ctx.requestId ?? '',
    ...(ctx.traceparent ? { traceparent: ctx.traceparent } : {}),
    status: 'pending', createdAt: ev.createdAt, params: ev.params, audio: ev.audio,
    tasks: buildDag(ev.jobId, ev.params, ctx.settings.engines), revision: 0,
  };
  const { state: next, effects } = advance(created, ctx);
  return { state: bump(next), effects, changed: true };
}

function onCancelRequested(state: JobState, ctx: TransitionContext): TransitionResult {
  if (isTerminalJob(state.status) || state.status === 'cancelling') return { state, effects: [], changed: false };
  const effects: Effect[] = [];
  const tasks = state.tasks.map((task): TaskState => {
    if (task.status === 'pending' || task.status === 'ready') {
      // Queued work is cancelled at once; a ready task's message may still be in its topic, so tell engines too.
      if (task.status === 'ready') effects.push({ type: 'cancel_task', jobId: state.jobId, taskId: task.taskId, attempt: task.attempt });
      const cancelled: TaskState = { ...task, status: 'cancelled', completedAt: ctx.now };
      effects.push({ type: 'task_finished', task: cancelled, outcome: 'cancelled' });
      return cancelled;
    }
    if (task.status === 'running') effects.push({ type: 'cancel_task', jobId: state.jobId, taskId: task.taskId, attempt: task.attempt });
    return task;
  });
  const next: JobState = { ...state, tasks, status: 'cancelling', cancelRequestedAt: ctx.now };
  const settled = settleCancelling(next, ctx);
  return { state: bump(settled.state), effects: [...effects, ...settled.effects], changed: true };
}

function onTaskCompleted(state: JobState, ev: TaskCompleted, ctx: TransitionContext): TransitionResult {
  return withTask(state, ev.taskId, ev.attempt, (task) => {
    if (task.status !== 'running' && task.status !== 'ready') return undefined;
    const done: TaskState = {
      // Earlier attempts' errors stay in `attempts`; a task that finally succeeded reports none.
      ...task, status: 'completed', error: undefined, completedAt: ev.at, outputKey: ev.outputKey, processingMs: ev.metrics.processingMs,
      queueWaitMs: ev.metrics.queueWaitMs, modelLoadMs: ev.metrics.modelLoadMs, instanceId: ev.instanceId,
      startedAt: task.startedAt ?? ev.at - ev.metrics.processingMs,
      attempts: [...task.attempts, attemptRecord(task, ev.engineId, ev.instanceId, ev.at, 'completed')],
    };
    return { task: done, effects: [{ type: 'task_finished', task: done, outcome: 'completed', metrics: ev.metrics }] };
  }, (s) => {
    const task = s.tasks.find((t) => t.taskId === ev.taskId);
    let next = s;
    if (task?.stage === 'prepare' && ev.metrics.audioDurationSeconds !== undefined) {
      const duration = ev.metrics.audioDurationSeconds;
      next = { ...next, audioDurationSeconds: duration, tasks: splitTranscribe(next.tasks, next.jobId, duration, ctx.settings.chunkSeconds ?? 0) };
    }
    if (task?.stage.startsWith('transcribe') && ev.metrics.language && !next.language) next = { ...next, language: ev.metrics.language };
    if (task?.stage === 'merge') next = { ...next, transcriptKey: artifactKeys.transcript(next.jobId) };
    return advance(next, ctx);
  });
}

function onTaskFailed(state: JobState, ev: TaskFailed, ctx: TransitionContext): TransitionResult {
  return withTask(state, ev.taskId, ev.attempt, (task) => {
    if (task.status !== 'running' && task.status !== 'ready') return undefined;
    const outcome = ev.error.code === 'DALSTON_ERR_CANCELLED' ? 'cancelled' : 'failed';
    return failAttempt(state, task, ev.error, outcome, ev.engineId, ev.instanceId, ev.at, ctx);
  }, (s) => advance(s, ctx));
}

function onTimer(state: JobState, ctx: TransitionContext): TransitionResult {
  let changed = false;
  let current = state;
  const effects: Effect[] = [];
  for (const task of state.tasks) {
    const live = current.tasks.find((t) => t.taskId === task.taskId) ?? task;
    let failure: FailureRecord | undefined;
    if (live.status === 'ready' && live.enqueuedAt !== undefined && live.enqueuedAt + ctx.settings.queueTimeoutMs <= ctx.now) {
      // Retrying would queue the same work behind the same missing engine: the stage fails with a clear reason.
      failure = {
        name: 'QueueTimeoutError', code: 'DALSTON_ERR_QUEUE_TIMEOUT', retryable: false,
        message: `no instance of engine ${live.engineId} picked the ${live.stage} task up within ${Math.round(ctx.settings.queueTimeoutMs / 1000)} s`,
      };
    } else if (live.status === 'running' && live.deadlineAt !== undefined && live.deadlineAt <= ctx.now) {
      failure = { name: 'TimeoutError', code: 'DALSTON_ERR_TIMEOUT', message: `task exceeded its deadline of ${Math.round(taskTimeoutMs(current, live, ctx.settings) / 1000)} s`, retryable: true };
    } else if (live.status === 'running' && live.lastHeartbeatAt !== undefined && live.lastHeartbeatAt + ctx.settings.heartbeatTimeoutMs <= ctx.now) {
      failure = { name: 'DependencyUnavailableError', code: 'DALSTON_ERR_WORKER_LOST', message: `engine instance ${live.instanceId ?? '?'} stopped reporting for ${Math.round(ctx.settings.heartbeatTimeoutMs / 1000)} s`, retryable: true };
    }
    if (failure) {
      effects.push({ type: 'cancel_task', jobId: state.jobId, taskId: live.taskId, attempt: live.attempt });
      const outcome = current.status === 'cancelling' ? 'cancelled' : 'timed_out';
      const r = failAttempt(current, live, failure, outcome, live.engineId, live.instanceId, ctx.now, ctx);
      current = replaceTask(current, r.task);
      effects.push(...r.effects);
      changed = true;
    } else if (live.status === 'pending' && live.retryAt !== undefined && live.retryAt <= ctx.now) {
      changed = true;
    }
  }
  if (!changed) return { state, effects: [], changed: false };
  const advanced = advance(current, ctx);
  return { state: bump(advanced.state), effects: [...effects, ...advanced.effects], changed: true };
}

/** Ends one attempt of a task: schedules a retry with back-off, or fails (or cancels) the task for good. */
function failAttempt(
  state: JobState, task: TaskState, error: FailureRecord, outcome: AttemptRecord['outcome'], engineId: string,
  instanceId: string | undefined, at: number, ctx: TransitionContext,
): { task: TaskState; effects: Effect[] } {
  const attempts = [...task.attempts, { ...attemptRecord(task, engineId, instanceId, at, outcome), error }];
  const base: TaskState = { ...task, attempts, error, instanceId, lastHeartbeatAt: undefined, deadlineAt: undefined };
  if (outcome === 'cancelled' || state.status === 'cancelling') {
    const cancelled: TaskState = { ...base, status: 'cancelled', completedAt: at };
    return { task: cancelled, effects: [{ type: 'task_finished', task: cancelled, outcome: 'cancelled' }] };
  }
  if (error.retryable && task.retries < ctx.settings.maxRetries) {
    const delay = ctx.settings.retryBaseDelayMs * 2 ** task.retries;
    const retrying: TaskState = { ...base, status: 'pending', retries: task.retries + 1, retryAt: ctx.now + delay, startedAt: undefined };
    return { task: retrying, effects: [{ type: 'task_finished', task: { ...base, status: 'failed' }, outcome }] };
  }
  const failed: TaskState = { ...base, status: 'failed', completedAt: at };
  return { task: failed, effects: [{ type: 'task_finished', task: failed, outcome }] };
}

/**
 * Moves the graph forward: dispatches every pending task whose dependencies completed (and whose retry time
 * has come), fails the job when a required task failed for good, completes it when every task is done.
 */
function advance(state: JobState, ctx: TransitionContext): { state: JobState; effects: Effect[] } {
  if (isTerminalJob(state.status)) return { state, effects: [] };
  if (state.status === 'cancelling') return settleCancelling(state, ctx);

  const failedRequired = state.tasks.find((t) => t.status === 'failed' && t.required);
  if (failedRequired) return finishFailed(state, failedRequired, ctx);

  const effects: Effect[] = [];
  const byStage = new Map(state.tasks.map((t) => [t.stage, t]));
  const tasks = state.tasks.map((task): TaskState => {
    if (task.status !== 'pending') return task;
    if (task.retryAt !== undefined && task.retryAt > ctx.now) return task;
    const depsDone = task.dependsOn.every((d) => {
      const dep = byStage.get(d);
      return dep !== undefined && (dep.status === 'completed' || dep.status === 'skipped');
    });
    if (!depsDone) return task;
    const ready: TaskState = { ...task, status: 'ready', attempt: task.attempt + 1, readyAt: task.readyAt ?? ctx.now, enqueuedAt: ctx.now, retryAt: undefined };
    effects.push(dispatchEffect(state, ready, ctx.settings));
    return ready;
  });
  let next: JobState = { ...state, tasks };
  if (tasks.every((t) => TERMINAL_TASK.has(t.status))) {
    next = { ...next, status: 'completed', completedAt: ctx.now };
    effects.push({ type: 'job_finished', status: 'completed' });
  }
  return { state: next, effects };
}

function finishFailed(state: JobState, cause: TaskState, ctx: TransitionContext): { state: JobState; effects: Effect[] } {
  const effects: Effect[] = [];
  const tasks = state.tasks.map((task): TaskState => {
    if (task.status === 'running' || task.status === 'ready') {
      effects.push({ type: 'cancel_task', jobId: state.jobId, taskId: task.taskId, attempt: task.attempt });
      const cancelled: TaskState = { ...task, status: 'cancelled', completedAt: ctx.now };
      effects.push({ type: 'task_finished', task: cancelled, outcome: 'cancelled' });
      return cancelled;
    }
    if (task.status === 'pending') return { ...task, status: 'skipped', retryAt: undefined };
    return task;
  });
  const error: FailureRecord = cause.error
    ? { ...cause.error, message: `${cause.stage} failed: ${cause.error.message}` }
    : { name: 'Error', code: 'DALSTON_ERR_STAGE_FAILED', message: `${cause.stage} failed`, retryable: false };
  effects.push({ type: 'job_finished', status: 'failed' });
  return { state: { ...state, tasks, status: 'failed', completedAt: ctx.now, error }, effects };
}

/** A cancelling job becomes cancelled once no task is still running. */
function settleCancelling(state: JobState, ctx: TransitionContext): { state: JobState; effects: Effect[] } {
  if (state.tasks.some((t) => t.status === 'running')) return { state, effects: [] };
  const tasks = state.tasks.map((t): TaskState => (t.status === 'pending' || t.status === 'ready' ? { ...t, status: 'cancelled' } : t));
  return {
    state: { ...state, tasks, status: 'cancelled', completedAt: ctx.now },
    effects: [{ type: 'job_finished', status: 'cancelled' }],
  };
}

/**
 * A start of an attempt the job is done with (its task or the job finished, or a later attempt replaced it): a
 * dispatch delivered again after it was handled, e.g. to another engine instance once a commit was lost. The state
 * does not change, but the engine is told to stop, so a redelivery does not hold an engine for a whole task.
 */
function onSupersededStart(state: JobState, input: Extract<ActorInput, { type: 'task.started' }>): TransitionResult | undefined {
  const task = state.tasks.find((t) => t.taskId === input.taskId);
  if (!task) return undefined;
  const over = input.attempt < task.attempt || (input.attempt === task.attempt && (TERMINAL_TASK.has(task.status) || isTerminalJob(state.status)));
  if (!over) return undefined;
  return { state, effects: [{ type: 'cancel_task', jobId: state.jobId, taskId: task.taskId, attempt: input.attempt }], changed: false };
}

function withTask(
  state: JobState, taskId: string, attempt: number,
  update: (task: TaskState) => { task: TaskState; effects: Effect[] } | undefined,
  after: (s: JobState) => { state: JobState; effects: Effect[] } = (s) => ({ state: s, effects: [] }),
): TransitionResult {
  if (isTerminalJob(state.status)) return { state, effects: [], changed: false };
  const task = state.tasks.find((t) => t.taskId === taskId);
  // Stale attempt or unknown task: a redelivery or a superseded worker. Ignored, so handling is idempotent.
  if (!task || task.attempt !== attempt || TERMINAL_TASK.has(task.status)) return { state, effects: [], changed: false };
  const r = update(task);
  if (!r) return { state, effects: [], changed: false };
  const next = after(replaceTask(state, r.task));
  return { state: bump(next.state), effects: [...r.effects, ...next.effects], changed: true };
}

function replaceTask(state: JobState, task: TaskState): JobState {
  return { ...state, tasks: state.tasks.map((t) => (t.taskId === task.taskId ? task : t)) };
}

function bump(state: JobState): JobState {
  return { ...state, revision: state.revision + 1 };
}

function attemptRecord(task: TaskState, engineId: string, instanceId: string | undefined, at: number, outcome: AttemptRecord['outcome']): AttemptRecord {
  return {
    attempt: task.attempt, engineId, endedAt: at, outcome,
    ...(instanceId ? { instanceId } : {}), ...(task.startedAt !== undefined ? { startedAt: task.startedAt } : {}),
  };
}

/**
 * The dispatch of a ready task's current attempt: inputs are the upload plus each dependency's output. Used when
 * a task becomes ready; the dispatch then waits in the snapshot's outbox, from which a restored actor re-sends it.
 */
export function dispatchEffect(state: JobState, task: TaskState, settings: TransitionSettings): Effect {
  const inputs: Record<string, string> = { audio: state.audio.key };
  for (const d of task.dependsOn) {
    const dep = state.tasks.find((t) => t.stage === d);
    if (dep?.outputKey) inputs[d] = dep.outputKey;
  }
  const enqueuedAt = task.enqueuedAt ?? 0;
  return {
    type: 'dispatch',
    topic: taskTopicFor(task.stage, task.engineId),
    task: {
      v: SCHEMA_VERSION, type: 'task.dispatch', jobId: state.jobId, taskId: task.taskId, stage: task.stage,
      engineId: task.engineId, attempt: task.attempt, enqueuedAt, deadlineAt: enqueuedAt + taskTimeoutMs(state, task, settings),
      inputs, config: task.config,
      ...(state.audioDurationSeconds !== undefined ? { audioDurationSeconds: state.audioDurationSeconds } : {}),
    },
  };
}

/** A task attempt's deadline: max(the floor, audio duration × the stage's factor); before prepare reports a duration, the floor. */
export function taskTimeoutMs(state: JobState, task: TaskState, settings: TransitionSettings): number {
  const base = baseStage(task.stage);
  const factor = settings.engineTimeFactor[base] ?? 1;
  // A part of a long file is bounded by its own span, not the whole file's.
  const { chunkStart, chunkEnd } = task.config;
  const seconds = chunkStart !== undefined && chunkEnd !== undefined ? chunkEnd - chunkStart : (state.audioDurationSeconds ?? 0);
  const byAudio = seconds * 1000 * factor;
  return Math.max(settings.minTaskTimeoutMs, byAudio);
}
