/**
 * One real-time socket's state, kept small while idle: identity, configuration and a few numbers. The decoder,
 * framer, lag budget and spool are created on the first audio; there is no per-socket timer (the bridge sweeps
 * all sessions once a second). It is also the socket's handler (methods on the prototype, no closures per socket).
 */
import type { Span } from '@opentelemetry/api';
import type { AudioInputDecoder, AudioInputFormat } from '../../engines/streaming/index.js';
import type { RealtimeFinal, RealtimeSessionConfig } from '../../streams/index.js';
import type { Principal } from '../auth.js';
import type { GatewaySocket, SocketHandler } from '../websocket.js';
import type { AudioFramer } from './audio-framer.js';
import type { AudioSpool } from './audio-spool.js';
import type { RealtimeDialectAdapter } from './dialect.js';
import type { LagState } from './lag-budget.js';
import { newLatencySamples, type SessionLatencySamples } from './session-latency.js';

/** pending: accepted, not upgraded yet; open; ending: client sent `end`, waiting for the engine; closed. */
export type SessionPhase = 'pending' | 'open' | 'ending' | 'closed';

/** What the bridge does for a session's socket events. */
export interface SessionHost {
  opened(s: LiveSession, socket: GatewaySocket): void;
  message(s: LiveSession, data: Buffer, isBinary: boolean): void;
  closed(s: LiveSession, code: number, reason: string): void;
}

export interface ResumeInfo {
  /** Finals the session had when this gateway took it over (replayed to the client). */
  readonly finals: readonly RealtimeFinal[];
}

export class LiveSession implements SocketHandler {
  socket: GatewaySocket | undefined;
  phase: SessionPhase = 'pending';
  lastActivityAt: number;
  decoder: AudioInputDecoder | undefined;
  framer: AudioFramer | undefined;
  lag: LagState | undefined;
  spool: AudioSpool | undefined;
  seq = 0;
  /** The resampler's tail was sent (end of stream): no more audio from this socket. */
  audioEnded = false;
  /** Highest final utterance index forwarded: a repeated one (engine failover) is dropped. */
  highestFinal = -1;
  /** Utterance whose first partial was measured. */
  lastPartialUtterance = -1;
  /** This socket's first-partial and final latencies, summarised into rt.session.closed for the session row. */
  readonly latency: SessionLatencySamples = newLatencySamples();
  finals: RealtimeFinal[] | undefined;
  endRequestedAt = 0;
  /** Engine audio seconds from rt.ended. */
  engineAudioSeconds: number | undefined;
  serverClose: { readonly code: number; readonly reason: string } | undefined;
  /** After a resume: until when the snapshot is re-read for finals the old gateway never delivered. */
  resumeWatchUntil = 0;

  constructor(
    private readonly host: SessionHost,
    readonly id: string,
    readonly principal: Principal,
    readonly requestId: string,
    readonly adapter: RealtimeDialectAdapter,
    readonly dialectState: unknown,
    public format: AudioInputFormat,
    public config: RealtimeSessionConfig,
    /** Session sample position the first audio of this socket starts at (non-zero after a resume). */
    readonly startOffset: number,
    readonly openedAt: number,
    readonly span: Span,
    readonly traceparent: string | undefined,
    readonly protocol: string | undefined,
    readonly resume: ResumeInfo | undefined,
  ) {
    this.lastActivityAt = openedAt;
  }

  /** Session audio position reached by this socket's audio (16 kHz samples). */
  get position(): number {
    return this.framer?.position ?? this.startOffset;
  }

  open(socket: GatewaySocket): void {
    this.host.opened(this, socket);
  }

  message(_socket: GatewaySocket, data: Buffer, isBinary: boolean): void {
    this.host.message(this, data, isBinary);
  }

  close(_socket: GatewaySocket, code: number, reason: string): void {
    this.host.closed(this, code, reason);
  }
}
