/**
 * Turns a transition's effects into the messages a host sends, and stores them in the snapshot's outbox before any is
 * sent. Pure: the same state and effects give the same messages, with ids derived from the job, task and attempt, so a
 * re-sent outbox (after a failed send, a retry or a takeover) is recognised downstream as the same message.
 */
import {
  SCHEMA_VERSION, type AnalyticsMessage, type JobOutcome, type JobState, type OutboxEntry, type TaskCancel, type TaskState,
} from '../streams/index.js';
import type { Effect } from './job-transition.js';

/** Process-local consequences of a transition (metrics, spans, logs): not durable, never re-run from the outbox. */
export interface LocalEffects {
  readonly finished?: 'completed' | 'failed' | 'cancelled';
}

export function traceIdOf(traceparent: string | undefined): string {
  return traceparent?.split('-')[1] ?? '';
}

export function outboxFor(state: JobState, effects: readonly Effect[], now: number): { outbox: OutboxEntry[]; local: LocalEffects } {
  const outbox: OutboxEntry[] = [];
  let finished: LocalEffects['finished'];
  for (const effect of effects) {
    switch (effect.type) {
      case 'dispatch':
        outbox.push({ type: 'dispatch', topic: effect.topic, task: effect.task });
        break;
      case 'cancel_task':
        outbox.push({ type: 'cancel', cancel: taskCancel(effect, now) });
        break;
      case 'task_finished':
        outbox.push({ type: 'analytics', message: taskFact(state, effect.task, effect.outcome, now, effect.metrics) });
        break;
      case 'job_started':
        break;
      case 'job_finished':
        finished = effect.status;
        outbox.push({ type: 'analytics', message: jobFinishedAudit(state, effect.status, now) });
        outbox.push({ type: 'outcome', outcome: jobOutcome(state, effect.status, now) });
        break;
    }
  }
  return { outbox, local: finished ? { finished } : {} };
}

/** The tasks.control message that stops one attempt of a task. */
export function taskCancel(attempt: { readonly jobId: string; readonly taskId: string; readonly attempt: number }, now: number): TaskCancel {
  return { v: SCHEMA_VERSION, type: 'task.cancel', jobId: attempt.jobId, taskId: attempt.taskId, attempt: attempt.attempt, at: now };
}

/** The audit row of a job's end; one per job whatever the number of sends. */
function jobFinishedAudit(state: JobState, status: 'completed' | 'failed' | 'cancelled', now: number): AnalyticsMessage {
  const eventType = status === 'completed' ? 'job.completed' : status === 'failed' ? 'job.failed' : 'job.cancelled';
  return {
    v: SCHEMA_VERSION, type: 'analytics.audit_event', time: state.completedAt ?? now, eventId: `${state.jobId}:${eventType}`, eventType,
    tenantId: state.tenantId, actorKeyId: state.keyId, jobId: state.jobId, sessionId: '',
    audioDurationSeconds: state.audioDurationSeconds ?? 0, requestId: state.requestId, traceId: traceIdOf(state.traceparent),
    details: JSON.stringify(state.error ? { error_code: state.error.code } : {}),
  };
}

/** What jobs.results carries when the job ends: enough to answer without reading ClickHouse. */
function jobOutcome(state: JobState, status: 'completed' | 'failed' | 'cancelled', now: number): JobOutcome {
  return {
    v: SCHEMA_VERSION, type: 'job.outcome', jobId: state.jobId, tenantId: state.tenantId, requestId: state.requestId, status,
    createdAt: state.createdAt, completedAt: state.completedAt ?? now,
    ...(state.audioDurationSeconds !== undefined ? { audioDurationSeconds: state.audioDurationSeconds } : {}),
    ...(state.language !== undefined ? { language: state.language } : {}),
    ...(status === 'completed' && state.transcriptKey !== undefined ? { transcriptKey: state.transcriptKey } : {}),
    ...(state.error ? { error: state.error } : {}),
    ...(state.params.webhook !== undefined ? { webhook: state.params.webhook } : {}),
  };
}

function taskFact(
  state: JobState, task: TaskState, outcome: string, now: number,
  metrics?: { processingMs: number; queueWaitMs: number; modelLoadMs: number; language?: string; model?: string },
): AnalyticsMessage {
  const last = task.attempts[task.attempts.length - 1];
  const status = outcome === 'completed' ? 'success' : outcome === 'cancelled' ? 'cancelled' : 'failure';
  const attempt = last?.attempt ?? task.attempt;
  return {
    v: SCHEMA_VERSION, type: 'analytics.task_fact',
    time: last?.endedAt ?? now, jobId: state.jobId, taskId: task.taskId,
    tenantId: state.tenantId, stage: task.stage, engineId: task.engineId, model: metrics?.model ?? task.config.model ?? '',
    language: metrics?.language ?? state.language ?? task.config.language ?? '',
    status,
    audioDurationSeconds: state.audioDurationSeconds ?? 0,
    processingMs: metrics?.processingMs ?? (last?.startedAt !== undefined ? Math.max(0, last.endedAt - last.startedAt) : 0),
    queueWaitMs: metrics?.queueWaitMs ?? task.queueWaitMs ?? 0, modelLoadMs: metrics?.modelLoadMs ?? 0,
    retries: task.retries, attempt, traceId: traceIdOf(state.traceparent), requestId: state.requestId,
  };
}
