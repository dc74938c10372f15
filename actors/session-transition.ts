/**
 * The real-time session actor's logic as a pure function: sessionTransition(state, input, ctx) → { state, effects }.
 * No I/O and no clock reads (time comes in ctx.now), so dedup, ordering, the end conditions and the grace timer are
 * tested with plain values. The host persists the new state (with the effects in its outbox) before sending anything.
 *
 * Idempotence: a final is recorded once per utterance index (a repeat changes nothing); a replayed opened, ended or
 * closed changes nothing; effects are derived from the state alone (fixed keys and ids), so re-sending them is harmless.
 */
import { assertNever } from '../core/errors.js';
import {
  SCHEMA_VERSION, sameSessionConfig, type AnalyticsMessage, type JobCreated, type RealtimeCheckpoint, type RealtimeEvent, type RealtimeFinal,
  type RealtimeSessionConfig, type RealtimeSessionState, type SessionOutboxEntry, type SessionStatus,
} from '../streams/index.js';
import { sessionArtifactKeys } from './session-artifacts.js';

export interface SessionSettings {
  /** Once one side (engine or gateway) reported the end, how long to wait for the other. */
  readonly endGraceMs: number;
  /** Longest a session may last; a session still active this long after it started (plus the grace) is interrupted. */
  readonly maxSessionMs: number;
}

export interface SessionTransitionContext {
  readonly now: number;
  readonly settings: SessionSettings;
  /** Request correlation of the event being handled (Kafka headers). */
  readonly requestId?: string;
}

/** A timer tick: the host delivers one when nextSessionWakeAt(state) has passed. */
export interface SessionTimerTick {
  readonly type: 'timer';
}

export type SessionInput = RealtimeEvent | SessionTimerTick;

export type SessionLocalEffect =
  | { readonly type: 'session_finished'; readonly status: SessionStatus }
  /** rt.session.deleted for a live session: refused (the gateway answers 409 before it gets here). */
  | { readonly type: 'delete_refused' };

export interface SessionTransitionResult {
  readonly state: RealtimeSessionState | undefined;
  /** Durable effects: stored in the snapshot's outbox and sent after it is persisted. */
  readonly outbox: readonly SessionOutboxEntry[];
  /** Process-local consequences (logs), never re-run from the outbox. */
  readonly local: readonly SessionLocalEffect[];
  readonly changed: boolean;
  /** The session's snapshot is to be removed from sessions.state (a tombstone): rt.session.deleted of a finished session. */
  readonly tombstone?: boolean;
}

/** WebSocket close code 1011: the server ended the session on an error (e.g. the engine could not go on). */
const INTERNAL_ERROR_CLOSE = 1011;

const NO_CHANGE = (state: RealtimeSessionState | undefined): SessionTransitionResult => ({ state, outbox: [], local: [], changed: false });

export function isTerminalSession(status: SessionStatus): boolean {
  return status !== 'active';
}

/** The job id an enhance_on_end session submits: derived from the session id, so a retry cannot create a second job. */
export function enhanceJobIdFor(sessionId: string): string {
  return `job_${sessionId.replace(/^sess_/, '')}`;
}

/** Placeholder configuration of a session whose first event was not `rt.session.opened` (events of two producers race). */
const UNKNOWN_CONFIG: RealtimeSessionConfig = {
  model: '', commitStrategy: 'vad', partials: true, retention: false, enhanceOnEnd: false, inputFormat: '', dialect: 'native',
};
const START_CHECKPOINT: RealtimeCheckpoint = { version: 1, audioOffsetSamples: 0, nextUtterance: 0, finalizedCount: 0 };

/** True once the gateway's rt.session.opened was applied (a session created by an earlier event has no gateway yet). */
export function sessionOpened(state: RealtimeSessionState): boolean {
  return state.gatewayId !== '';
}

export function sessionTransition(state: RealtimeSessionState | undefined, input: SessionInput, ctx: SessionTransitionContext): SessionTransitionResult {
  if (input.type === 'timer') return state ? onTimer(state, ctx) : NO_CHANGE(state);
  if (input.type === 'rt.session.deleted') {
    if (!state) return NO_CHANGE(state);
    if (!isTerminalSession(state.status)) return { ...NO_CHANGE(state), local: [{ type: 'delete_refused' }] };
    return { ...NO_CHANGE(state), tombstone: true };
  }
  const current = state ?? blank(input.sessionId, input.type === 'rt.session.opened' ? input.startedAt : input.at, ctx);
  if (isTerminalSession(current.status)) return NO_CHANGE(state);
  switch (input.type) {
    case 'rt.session.opened': {
      if (state && sessionOpened(state)) return NO_CHANGE(state);
      const opened: RealtimeSessionState = {
        ...current, tenantId: input.tenantId, keyId: input.keyId, requestId: input.requestId, gatewayId: input.gatewayId,
        // A configuration that came first (ordering across a producer retry) is the newer one.
        replyTopic: input.replyTopic, config: current.config.model === UNKNOWN_CONFIG.model ? input.config : current.config, startedAt: input.startedAt,
        ...(input.traceparent !== undefined ? { traceparent: input.traceparent } : {}),
      };
      return settle(opened, ctx);
    }
    case 'rt.utterance.final': {
      if (current.finals.some((f) => f.utterance === input.final.utterance)) return NO_CHANGE(state);
      const advanced = input.checkpoint.nextUtterance >= current.checkpoint.nextUtterance;
      const next: RealtimeSessionState = {
        ...current,
        finals: insertInOrder(current.finals, input.final),
        ...(advanced ? { checkpoint: input.checkpoint, partition: input.partition, resumeOffset: input.resumeOffset } : {}),
        audioSeconds: Math.max(current.audioSeconds, input.final.end),
      };
      return settle(next, ctx);
    }
    case 'rt.session.ended': {
      if (current.engineEnded) return NO_CHANGE(state);
      return settle({
        ...current, engineEnded: true, audioSeconds: Math.max(current.audioSeconds, input.audioSeconds),
        checkpoint: input.checkpoint.nextUtterance >= current.checkpoint.nextUtterance ? input.checkpoint : current.checkpoint,
        closingSince: current.closingSince ?? ctx.now,
      }, ctx);
    }
    case 'rt.session.closed': {
      if (current.gatewayClosed) return NO_CHANGE(state);
      return settle({
        ...current, gatewayClosed: true, closeCode: input.closeCode, closeReason: input.reason,
        audioSeconds: Math.max(current.audioSeconds, input.audioSeconds), closingSince: current.closingSince ?? ctx.now,
        ...(input.audioKey !== undefined ? { audioKey: input.audioKey } : {}),
        ...(input.latency !== undefined ? { latency: input.latency } : {}),
      }, ctx);
    }
    case 'rt.session.configured': {
      // Only before audio: once the engine produced a final the configuration it ran with is what history shows.
      if (current.finals.length > 0 || sameSessionConfig(current.config, input.config)) return NO_CHANGE(state);
      return settle({ ...current, config: input.config }, ctx);
    }
    case 'rt.session.resumed': {
      if (current.gatewayId === input.gatewayId && current.replyTopic === input.replyTopic) return NO_CHANGE(state);
      return settle({ ...current, gatewayId: input.gatewayId, replyTopic: input.replyTopic }, ctx);
    }
    default:
      return assertNever(input, 'session input');
  }
}

/** The earliest time the actor must wake on its own: the end grace, or the session's maximum length. */
export function nextSessionWakeAt(state: RealtimeSessionState | undefined, settings: SessionSettings): number | undefined {
  if (!state || isTerminalSession(state.status)) return undefined;
  const cap = state.startedAt + settings.maxSessionMs + settings.endGraceMs;
  return state.closingSince !== undefined ? Math.min(state.closingSince + settings.endGraceMs, cap) : cap;
}

// ---------------------------------------------------------------------------------------------------------

function blank(sessionId: string, at: number, ctx: SessionTransitionContext): RealtimeSessionState {
  return {
    sessionId, tenantId: '', keyId: '', requestId: ctx.requestId ?? '', status: 'active', startedAt: at, updatedAt: ctx.now,
    gatewayId: '', replyTopic: '', config: UNKNOWN_CONFIG, finals: [], checkpoint: START_CHECKPOINT,
    audioSeconds: 0, engineEnded: false, gatewayClosed: false, revision: 0,
  };
}

function insertInOrder(finals: readonly RealtimeFinal[], final: RealtimeFinal): RealtimeFinal[] {
  const at = finals.findIndex((f) => f.utterance > final.utterance);
  return at < 0 ? [...finals, final] : [...finals.slice(0, at), final, ...finals.slice(at)];
}

/** A changed live session: ends it when both sides reported, else records the change. */
function settle(state: RealtimeSessionState, ctx: SessionTransitionContext): SessionTransitionResult {
  if (state.engineEnded && state.gatewayClosed && sessionOpened(state)) {
    return finish(state, state.closeCode === INTERNAL_ERROR_CLOSE ? 'failed' : 'completed', ctx);
  }
  return { state: bump(state, ctx), outbox: [], local: [], changed: true };
}

function onTimer(state: RealtimeSessionState, ctx: SessionTransitionContext): SessionTransitionResult {
  const at = nextSessionWakeAt(state, ctx.settings);
  if (at === undefined || at > ctx.now) return NO_CHANGE(state);
  // One side never reported (the gateway died, or the engine never ended the session): end it with what is recorded.
  return finish(state, 'interrupted', ctx);
}

function finish(state: RealtimeSessionState, status: SessionStatus, ctx: SessionTransitionContext): SessionTransitionResult {
  const keys = sessionArtifactKeys(state.sessionId);
  const retained = state.config.retention;
  const enhance = state.config.enhanceOnEnd && retained && state.audioKey !== undefined;
  const ended: RealtimeSessionState = {
    ...state, status, endedAt: ctx.now,
    ...(retained ? { transcriptKey: keys.transcript } : {}),
    ...(enhance ? { enhanceJobId: enhanceJobIdFor(state.sessionId) } : {}),
  };
  const outbox: SessionOutboxEntry[] = [];
  if (retained) outbox.push({ type: 'transcript', key: keys.transcript });
  outbox.push({ type: 'analytics', message: completedAudit(ended) });
  if (enhance && ended.enhanceJobId !== undefined && ended.audioKey !== undefined) {
    const created = enhanceJob(ended, ended.enhanceJobId, ended.audioKey);
    outbox.push({ type: 'job', event: created });
    outbox.push({ type: 'analytics', message: jobCreatedAudit(ended, created) });
  }
  return { state: bump(ended, ctx), outbox, local: [{ type: 'session_finished', status }], changed: true };
}

function bump(state: RealtimeSessionState, ctx: SessionTransitionContext): RealtimeSessionState {
  return { ...state, revision: state.revision + 1, updatedAt: ctx.now };
}

export function traceIdOfSession(state: RealtimeSessionState): string {
  return state.traceparent?.split('-')[1] ?? '';
}

/** One realtime.session.completed row per session, whatever the number of sends (fixed event id). */
function completedAudit(state: RealtimeSessionState): AnalyticsMessage {
  return {
    v: SCHEMA_VERSION, type: 'analytics.audit_event', time: state.endedAt ?? state.updatedAt, eventId: `${state.sessionId}:realtime.session.completed`,
    eventType: 'realtime.session.completed', tenantId: state.tenantId, actorKeyId: state.keyId, jobId: state.enhanceJobId ?? '',
    sessionId: state.sessionId, audioDurationSeconds: state.audioSeconds, requestId: state.requestId, traceId: traceIdOfSession(state),
    details: JSON.stringify({
      status: state.status, utterances: state.finals.length, model: state.config.model, dialect: state.config.dialect,
      ...(state.closeCode !== undefined ? { close_code: state.closeCode } : {}),
    }),
  };
}

/** The batch job of enhance_on_end: the recorded WAV through the full pipeline, as the gateway would submit it. */
function enhanceJob(state: RealtimeSessionState, jobId: string, audioKey: string): JobCreated {
  return {
    v: SCHEMA_VERSION, type: 'job.created', jobId, tenantId: state.tenantId, keyId: state.keyId, createdAt: state.endedAt ?? state.updatedAt,
    // A 16 kHz s16le mono WAV: 44 header bytes plus 32000 bytes a second (the size is informational).
    audio: { key: audioKey, filename: 'audio.wav', bytes: 44 + Math.round(state.audioSeconds * 32000), contentType: 'audio/wav' },
    params: {
      ...(state.config.enhanceModel !== undefined ? { model: state.config.enhanceModel } : {}),
      ...(state.config.language !== undefined ? { language: state.config.language } : {}),
      timestampsGranularity: 'word', sessionId: state.sessionId,
    },
  };
}

function jobCreatedAudit(state: RealtimeSessionState, job: JobCreated): AnalyticsMessage {
  return {
    v: SCHEMA_VERSION, type: 'analytics.audit_event', time: job.createdAt, eventId: `${job.jobId}:job.created`, eventType: 'job.created',
    tenantId: state.tenantId, actorKeyId: state.keyId, jobId: job.jobId, sessionId: state.sessionId, audioDurationSeconds: state.audioSeconds,
    requestId: state.requestId, traceId: traceIdOfSession(state), details: JSON.stringify({ api: 'realtime', enhance_on_end: true }),
  };
}
