/**
 * Pure decisions for a session this engine does not hold yet (a new one, or one it inherits after a failover or
 * rebalance) and for each audio frame of a held one (duplicates and overlaps after a re-read).
 */
import type { RealtimeCheckpoint, RealtimeInput, RealtimeSessionConfig } from '../../streams/realtime-messages.js';
import type { SessionRecord } from './session-record.js';

export const INITIAL_REALTIME_CHECKPOINT: RealtimeCheckpoint = { version: 1, audioOffsetSamples: 0, nextUtterance: 0, finalizedCount: 0 };

export interface SessionOrigin {
  readonly tenantId: string;
  readonly requestId: string;
  readonly traceparent: string | undefined;
}

export type SessionPlan =
  /** Serve the session: from the start, or from the durable checkpoint of its snapshot. */
  | {
      readonly kind: 'serve';
      readonly config: RealtimeSessionConfig;
      readonly replyTopic: string;
      readonly origin: SessionOrigin;
      readonly checkpoint: RealtimeCheckpoint;
      /** Messages of the session below this offset are already covered by the checkpoint: skipped. */
      readonly skipBelow: bigint | undefined;
      /** Finals with an index up to this were recorded already: never emitted again. */
      readonly lastFinalUtterance: number;
      readonly restored: boolean;
    }
  /** The engine already ended the session (or it failed/closed): its messages are skipped and released. */
  | { readonly kind: 'finished'; readonly reason: string }
  /** Neither a start nor a snapshot: nothing to serve it with (logged, released). */
  | { readonly kind: 'orphan' };

function hasProgress(r: SessionRecord): boolean {
  return r.checkpoint.nextUtterance > 0 || r.checkpoint.audioOffsetSamples > 0 || r.lastFinalUtterance >= 0 || r.resumeOffset !== undefined;
}

/**
 * The first message this engine sees of a session, at `offset` of `partition`, with the latest snapshot it read
 * (possibly none, or older than the crash: it is at least as new as the committed offset, because offsets are only
 * committed past a session's audio once its snapshot shows the final before it).
 */
export function planSession(message: RealtimeInput, offset: bigint, partition: number, snapshot: SessionRecord | undefined): SessionPlan {
  if (snapshot !== undefined && snapshot.engineEnded) return { kind: 'finished', reason: 'engine_ended' };
  if (snapshot !== undefined && snapshot.status !== 'active') return { kind: 'finished', reason: `status_${snapshot.status}` };
  if (snapshot !== undefined && (hasProgress(snapshot) || message.type !== 'rt.session.start')) {
    const skipBelow = snapshot.partition === partition && snapshot.resumeOffset !== undefined ? BigInt(snapshot.resumeOffset) : undefined;
    // A start at or past the resume point is a resume through another gateway: its reply topic is the newer one.
    const newerStart = message.type === 'rt.session.start' && (skipBelow === undefined || offset >= skipBelow);
    return {
      kind: 'serve',
      config: snapshot.config,
      replyTopic: newerStart ? message.replyTopic : snapshot.replyTopic,
      origin: { tenantId: snapshot.tenantId, requestId: snapshot.requestId, traceparent: snapshot.traceparent },
      checkpoint: snapshot.checkpoint,
      skipBelow,
      lastFinalUtterance: snapshot.lastFinalUtterance,
      restored: true,
    };
  }
  if (message.type === 'rt.session.start') {
    return {
      kind: 'serve',
      config: message.config,
      replyTopic: message.replyTopic,
      origin: { tenantId: message.tenantId, requestId: message.requestId, traceparent: message.traceparent },
      checkpoint: INITIAL_REALTIME_CHECKPOINT,
      skipBelow: undefined,
      lastFinalUtterance: -1,
      restored: false,
    };
  }
  return { kind: 'orphan' };
}

export type FrameAction =
  /** Everything in the frame was fed already. */
  | { readonly kind: 'skip' }
  /** Feed the frame from sample `from`, after `gap` samples of silence for audio that never arrived. */
  | { readonly kind: 'feed'; readonly from: number; readonly gap: number };

/** Longest hole in the session's audio filled with silence; a bigger jump is fed as is (the positions then drift). */
export const MAX_GAP_SAMPLES = 16000 * 5;

/**
 * A frame starting at session sample `frameStart` with `length` samples, when the transcriber has been fed up to
 * `fedUntil`: a re-read after a failover delivers frames already covered by the checkpoint, or straddling it.
 */
export function frameAction(frameStart: number, length: number, fedUntil: number): FrameAction {
  const frameEnd = frameStart + length;
  if (frameEnd <= fedUntil) return { kind: 'skip' };
  if (frameStart <= fedUntil) return { kind: 'feed', from: fedUntil - frameStart, gap: 0 };
  const gap = frameStart - fedUntil;
  return { kind: 'feed', from: 0, gap: gap <= MAX_GAP_SAMPLES ? gap : 0 };
}

/** A final is emitted only if no final with its index (or a later one) was recorded: after a re-read, never twice. */
export function isNewFinal(utterance: number, lastFinalUtterance: number): boolean {
  return utterance > lastFinalUtterance;
}
