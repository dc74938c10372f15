/**
 * WebSocket close codes of real-time sessions (listed with their reasons in the README). 4xxx mirror the HTTP
 * status they correspond to, so a client can map them without a table.
 */
export const CLOSE = {
  /** Session ended normally (client `end`, or client closed). */
  normal: 1000,
  /** Policy: e.g. a resumed session that belongs to another tenant. */
  policy: 1008,
  /** A client message larger than DALSTON_REALTIME_MAX_FRAME_BYTES. */
  frameTooBig: 1009,
  /** The gateway or engine failed. */
  internal: 1011,
  /** The gateway is going away; the reason carries `resume=<id>; resume_offset=<samples>`: reconnect to resume. */
  resumable: 1012,
  /** The engine falls behind the audio beyond the lag budget. */
  lag: 4010,
  /** Bad message or audio format (fatal ones only; others answer `error` and the session goes on). */
  badMessage: 4400,
  /** No message for DALSTON_REALTIME_IDLE_TIMEOUT_SECONDS. */
  idle: 4408,
  /** DALSTON_REALTIME_MAX_SESSION_SECONDS reached. */
  maxLength: 4413,
  /** The API key holds DALSTON_REALTIME_MAX_SESSIONS_PER_KEY sessions already. */
  perKeyLimit: 4429,
  /** Every engine slot is taken (or no engine is running). */
  overCapacity: 4503,
} as const;

/** `sessions_total{status}` of a close code. */
export function closeStatus(code: number): 'completed' | 'interrupted' | 'refused' | 'failed' {
  // 1005 (no status): a clean close frame without a code, which is how the ElevenLabs SDK ends every session.
  if (code === CLOSE.normal || code === 1005) return 'completed';
  if (code === CLOSE.resumable || code === 1001 || code === 1006) return 'interrupted';
  if (code === CLOSE.overCapacity || code === CLOSE.perKeyLimit) return 'refused';
  return 'failed';
}

/** The reason of a 1012 close: what a client needs to resume (at most 123 bytes). */
export function resumableReason(sessionId: string, offsetSamples: number): string {
  return `resume=${sessionId}; resume_offset=${offsetSamples}`;
}
