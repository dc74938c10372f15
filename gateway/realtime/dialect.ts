/**
 * The seam between a real-time wire dialect (native, ElevenLabs, OpenAI, Deepgram) and the gateway's session
 * bridge. An adapter is pure translation: it parses the upgrade request into session options, turns each client
 * message into commands, and renders the session's events in its vendor's messages. It never touches Kafka,
 * sockets or timers; the bridge (gateway/realtime/session-bridge.ts) does admission, audio decoding and framing,
 * publishing, reply routing, limits and closing, the same for every dialect.
 */
import type { AudioInputFormat } from '../../engines/streaming/index.js';
import type { RealtimeDialect, RealtimeFinal } from '../../streams/index.js';

/** What the upgrade request carries (headers lower-cased). */
export interface UpgradeRequest {
  readonly query: URLSearchParams;
  readonly headers: Readonly<Record<string, string>>;
  /** Sec-WebSocket-Protocol values the client offered, in order. */
  readonly protocols: readonly string[];
}

/** Where the client put its credential; the bridge verifies it (API key or single-use token) before the upgrade. */
export type PresentedCredential =
  | { readonly kind: 'api_key'; readonly key: string }
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'none' };

/** Session options a dialect can set; absent ones take the server's defaults (DALSTON_REALTIME_*). */
export interface SessionOptions {
  readonly model?: string;
  readonly language?: string;
  readonly commitStrategy?: 'vad' | 'manual';
  readonly partials?: boolean;
  readonly vadThreshold?: number;
  readonly minSpeechMs?: number;
  readonly minSilenceMs?: number;
  readonly speechPadMs?: number;
  readonly maxUtteranceMs?: number;
  readonly retention?: boolean;
  /** With retention: seconds to keep the data after the end, or KEEP (gateway/retention.ts); absent: the tenant's default. */
  readonly retentionSeconds?: number;
  readonly enhanceOnEnd?: boolean;
  readonly enhanceModel?: string;
}

export interface OpenRequest {
  readonly credential: PresentedCredential;
  /** Audio the client will send; a dialect whose client declares it later (OpenAI session.update) gives its default. */
  readonly format: AudioInputFormat;
  readonly options: SessionOptions;
  /** Subprotocol to answer (one the client offered), e.g. Deepgram's `token`. */
  readonly protocol?: string;
  /** `?resume=<session id>`: continue a session whose gateway went away. */
  readonly resumeSessionId?: string;
  /** With `resumeSessionId`: the session sample position the client's next audio starts at (`resume_offset`). */
  readonly resumeOffsetSamples?: number;
  /**
   * Dialect-only settings the adapter's own state keeps (e.g. Deepgram `utterance_end_ms`, `vad_events`); the
   * bridge passes the whole OpenRequest through to `createState` and never reads these.
   */
  readonly settings?: Readonly<Record<string, string | number | boolean>>;
}

/** What a client message asks of the session. */
export type ClientCommand =
  /** Audio bytes in the session's current input format (the bridge decodes, resamples and frames them). */
  | { readonly kind: 'audio'; readonly bytes: Buffer }
  /** Changes before audio flows (OpenAI session.update): format and options; refused once audio was sent where it matters. */
  | { readonly kind: 'configure'; readonly format?: AudioInputFormat; readonly options?: SessionOptions }
  | { readonly kind: 'flush' }
  | { readonly kind: 'clear' }
  /** Client is done sending: finalise everything, send the end message, close normally. */
  | { readonly kind: 'end' }
  /** Resets the idle timer only. */
  | { readonly kind: 'keepalive' }
  /**
   * The message was bad (malformed JSON, unknown type, wrong field). `fatal` closes the session with 4400 and the
   * message as reason (after an `error` event); otherwise the session goes on and the bridge renders a `warning`
   * event carrying this code and message (render it as the dialect's non-fatal error).
   */
  | { readonly kind: 'invalid'; readonly code: string; readonly message: string; readonly fatal: boolean };

/** What the session tells the client, before rendering in the dialect. */
export type SessionEvent =
  | { readonly type: 'session.begin'; readonly sessionId: string; readonly model: string; readonly format: AudioInputFormat; readonly options: SessionOptions }
  /** Reply to a `configure` command that was applied. */
  | { readonly type: 'session.updated'; readonly format: AudioInputFormat; readonly options: SessionOptions }
  | { readonly type: 'vad.speech_start'; readonly utterance: number; readonly start: number }
  | { readonly type: 'vad.speech_end'; readonly utterance: number; readonly start: number; readonly end: number }
  | { readonly type: 'transcript.partial'; readonly utterance: number; readonly text: string; readonly start: number; readonly end: number }
  /** `flushed`: the final answers a client flush/commit (Deepgram from_finalize, OpenAI committed). */
  | { readonly type: 'transcript.final'; readonly final: RealtimeFinal; readonly flushed: boolean }
  /** A `clear` was applied. */
  | { readonly type: 'buffer.cleared' }
  | { readonly type: 'warning'; readonly code: string; readonly message: string }
  /** Sent before a close the server decides (limits, errors); the bridge closes right after with `closeCode`. */
  | { readonly type: 'error'; readonly code: string; readonly message: string; readonly closeCode: number }
  /** Last message of a session that ended normally: totals and the full finalised text. */
  | { readonly type: 'session.end'; readonly sessionId: string; readonly audioSeconds: number; readonly text: string; readonly finals: readonly RealtimeFinal[] };

/** Per-socket memory an adapter may keep (e.g. Deepgram's request id, OpenAI item ids); created by `createState`. */
export interface RealtimeDialectAdapter<S = unknown> {
  readonly dialect: RealtimeDialect;
  /** WebSocket path, e.g. `/v1/listen`. */
  readonly path: string;
  /** Parses the upgrade request; throw an HttpError (400) for bad options: the upgrade is refused with it. */
  parseOpen(req: UpgradeRequest): OpenRequest;
  createState(open: OpenRequest): S;
  /** One client message → commands, in order. Never throws: bad input is an `invalid` command. */
  onClientMessage(state: S, data: Buffer, isBinary: boolean): ClientCommand[];
  /** One session event → the frames to send (text as string, binary as Buffer), possibly none. */
  render(state: S, event: SessionEvent): (string | Buffer)[];
}
