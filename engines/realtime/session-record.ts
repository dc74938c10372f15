/**
 * What the engine keeps of a session actor's snapshot (sessions.state): enough to restore a session it inherits and
 * to know which of its finals are durable. Built from `rt.session.snapshot` exactly as the session actor writes it.
 */
import type { RealtimeCheckpoint, RealtimeSessionConfig, RealtimeSessionState, SessionStatus } from '../../streams/realtime-messages.js';

export interface SessionRecord {
  readonly sessionId: string;
  readonly tenantId: string;
  readonly requestId: string;
  readonly traceparent: string | undefined;
  readonly status: SessionStatus;
  readonly config: RealtimeSessionConfig;
  readonly replyTopic: string;
  readonly checkpoint: RealtimeCheckpoint;
  /** realtime.input partition and offset a new owner re-reads from (of the last recorded final). */
  readonly partition: number | undefined;
  readonly resumeOffset: string | undefined;
  /** Highest utterance index among the recorded finals, -1 for none. */
  readonly lastFinalUtterance: number;
  readonly engineEnded: boolean;
  readonly gatewayClosed: boolean;
  readonly revision: number;
}

export function sessionRecord(state: RealtimeSessionState): SessionRecord {
  let lastFinalUtterance = -1;
  for (const f of state.finals) lastFinalUtterance = Math.max(lastFinalUtterance, f.utterance);
  return {
    sessionId: state.sessionId,
    tenantId: state.tenantId,
    requestId: state.requestId,
    traceparent: state.traceparent,
    status: state.status,
    config: state.config,
    replyTopic: state.replyTopic,
    checkpoint: state.checkpoint,
    partition: state.partition,
    resumeOffset: state.resumeOffset,
    lastFinalUtterance,
    engineEnded: state.engineEnded,
    gatewayClosed: state.gatewayClosed,
    revision: state.revision,
  };
}
