/**
 * The session bridge: everything between a client's socket and the streaming engine that is the same for every
 * dialect. On the upgrade request it parses (adapter), authenticates (API key or single-use token), admits and, for
 * a resume, finds the session's snapshot; then per socket it decodes audio to 16 kHz s16le mono, frames it into
 * ~100 ms `rt.audio` messages, publishes controls and session events, routes the engine's replies back (each final
 * once), enforces the limits (idle, maximum length, frame size, lag budget) and renders every event through the
 * adapter. Timers are one sweep over all sessions per second, not one per socket.
 */
import { context as otelContext, trace } from '@opentelemetry/api';
import type { Registry } from 'prom-client';
import { AudioInputDecoder, compileAudioInputFormat, type AudioInputFormat } from '../../engines/streaming/index.js';
import type { Logger } from '../../core/logger.js';
import { realtimeHopMetric, realtimeMetrics, type RealtimeHopMetric, type RealtimeMetrics } from '../../core/metrics.js';
import { ATTR, SPAN } from '../../core/observability-names.js';
import {
  REALTIME_SAMPLE_RATE, SCHEMA_VERSION, newMessageHeaders, type MessageHeaders, type RealtimeFinal, type RealtimeReply, type RealtimeSessionState,
} from '../../streams/index.js';
import type { Authenticator, Principal } from '../auth.js';
import type { KeyStore } from '../keys/key-store.js';
import type { TenantAdmission } from '../limits/tenant-admission.js';
import { HttpError } from '../errors.js';
import { TRACER_NAME, type RequestContext } from '../http-server.js';
import { accessOf, requireAccess } from '../route-access.js';
import { ulid } from '../ids.js';
import type { ArtifactStore } from '../ports.js';
import type { WebSocketRouteSpec } from '../websocket-route.js';
import type { GatewaySocket, SocketHandler } from '../websocket.js';
import { admit } from './admission.js';
import { AudioFramer, type PcmFrame } from './audio-framer.js';
import { AudioSpool, sessionAudioKey } from './audio-spool.js';
import { CLOSE, closeStatus, resumableReason } from './close-codes.js';
import type { ClientCommand, OpenRequest, RealtimeDialectAdapter, SessionEvent, SessionOptions, UpgradeRequest } from './dialect.js';
import type { EnginePresence } from './engine-presence.js';
import { evaluateLag, initialLag, onAudio, onProgress, type LagBudgetOptions } from './lag-budget.js';
import { LiveSession, type SessionHost } from './live-session.js';
import type { RealtimePublisher } from './realtime-publisher.js';
import { verifyToken } from './realtime-token.js';
import { mergeOptions, optionsOf, resolveSessionConfig, type SessionDefaults } from './session-config.js';
import { summarizeLatency } from './session-latency.js';
import type { SessionDirectory } from './session-directory.js';
import type { TokenLedger } from './token-ledger.js';

export interface BridgeLimits {
  readonly sessionsPerEngine: number;
  readonly maxSessionsPerKey: number;
  readonly idleTimeoutMs: number;
  readonly maxSessionMs: number;
  readonly maxFrameBytes: number;
  readonly lag: LagBudgetOptions;
  /** How long `end` waits for the engine's last finals before the socket closes anyway. @default 30000 */
  readonly endTimeoutMs?: number;
}

export interface SessionBridgeDeps {
  readonly gatewayId: string;
  /** Prefixed reply topic of this gateway. */
  readonly replyTopic: string;
  readonly limits: BridgeLimits;
  readonly defaults: SessionDefaults;
  readonly authenticator: Authenticator;
  /** Issued keys: a token whose minting key was revoked or expired since is refused. */
  readonly keys?: KeyStore;
  /** Per-tenant concurrent-session limits (new sessions only: a resumed one holds its slot already). */
  readonly concurrency?: TenantAdmission;
  readonly tokenSecret: Buffer;
  readonly ledger: TokenLedger;
  readonly presence: EnginePresence;
  /** The sessions.state tail; without it resume answers 503. */
  readonly directory?: SessionDirectory;
  readonly publisher: RealtimePublisher;
  readonly store: ArtifactStore;
  /** Directory retention spools audio to before it moves to the store. */
  readonly spoolDir: string;
  readonly registry: Registry;
  readonly log: Logger;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default 1000; 0: no sweep timer (tests call sweep()). */
  readonly sweepIntervalMs?: number;
  /** How long a resume waits for the session's snapshot. @default 5000 */
  readonly resumeLookupMs?: number;
}

export interface BridgeStatus {
  readonly gatewayId: string;
  readonly activeSessions: number;
  readonly clusterActiveSessions: number | undefined;
  readonly liveEngines: number;
  readonly sessionsPerEngine: number;
  readonly capacity: number;
}

const RATE = REALTIME_SAMPLE_RATE;
const v = SCHEMA_VERSION;
/** Reasons ride in close frames: at most 123 bytes of UTF-8. */
const reasonText = (s: string): string => {
  let out = s;
  while (Buffer.byteLength(out, 'utf8') > 123) out = out.slice(0, -1);
  return out;
};
const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class SessionBridge implements SessionHost {
  readonly #d: SessionBridgeDeps;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #sessions = new Map<string, LiveSession>();
  readonly #perKey = new Map<string, number>();
  readonly #closing = new Set<Promise<void>>();
  readonly #metrics: RealtimeMetrics;
  readonly #hops: RealtimeHopMetric;
  readonly #timer: NodeJS.Timeout | undefined;
  #shuttingDown = false;
  /** Admitted upgrades still awaiting their token claim. */
  #reserved = 0;

  constructor(deps: SessionBridgeDeps) {
    this.#d = deps;
    this.#log = deps.log.child({ component: 'realtime-bridge' });
    this.#now = deps.now ?? Date.now;
    this.#metrics = realtimeMetrics(deps.registry);
    this.#hops = realtimeHopMetric(deps.registry);
    const every = deps.sweepIntervalMs ?? 1000;
    if (every > 0) {
      this.#timer = setInterval(() => this.sweep(), every);
      this.#timer.unref();
    }
  }

  get activeSessions(): number {
    return this.#sessions.size;
  }

  /** The WebSocket route of one dialect. */
  route(adapter: RealtimeDialectAdapter): WebSocketRouteSpec {
    return { path: adapter.path, auth: 'none', credentials: 'self', accept: (ctx) => this.#accept(adapter, ctx) };
  }

  async status(): Promise<BridgeStatus> {
    const liveEngines = await this.#d.presence.liveEngines();
    return {
      gatewayId: this.#d.gatewayId,
      activeSessions: this.#sessions.size,
      clusterActiveSessions: this.#d.directory?.activeSessions(),
      liveEngines,
      sessionsPerEngine: this.#d.limits.sessionsPerEngine,
      capacity: liveEngines * this.#d.limits.sessionsPerEngine,
    };
  }

  // ---- upgrade ----

  async #accept(adapter: RealtimeDialectAdapter, ctx: RequestContext): Promise<SocketHandler> {
    if (this.#shuttingDown) throw new HttpError(503, 'service_unavailable', 'this gateway is shutting down; connect to another');
    const headers: Record<string, string> = {};
    for (const [k, val] of Object.entries(ctx.req.headers)) if (val !== undefined) headers[k] = val;
    const protocols = (headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
    const req: UpgradeRequest = { query: ctx.url.searchParams, headers, protocols };
    const open = adapter.parseOpen(req);
    const now = this.#now();
    const { principal, tokenJti, tokenExpiresAt } = this.#authenticate(open);
    requireAccess(principal, accessOf('GET', ctx.route));
    try {
      compileAudioInputFormat(open.format);
    } catch (err) {
      throw new HttpError(400, 'invalid_request', errText(err));
    }
    let resumed: RealtimeSessionState | undefined;
    if (open.resumeSessionId !== undefined) {
      if (!this.#d.directory) throw new HttpError(503, 'service_unavailable', 'session resume is not available on this gateway');
      if (this.#sessions.has(open.resumeSessionId)) throw new HttpError(409, 'conflict', `session ${open.resumeSessionId} is open on this gateway`);
      resumed = await this.#d.directory.lookup(open.resumeSessionId, this.#d.resumeLookupMs ?? 5000);
      if (!resumed || resumed.tenantId !== principal.tenantId) throw new HttpError(404, 'not_found', `no resumable session ${open.resumeSessionId}`);
    }
    const liveEngines = await this.#d.presence.liveEngines();
    const admission = admit({
      activeSessions: this.#sessions.size + this.#reserved,
      ...(this.#d.directory?.activeSessions() !== undefined && { clusterActiveSessions: this.#d.directory.activeSessions() }),
      liveEngines,
      sessionsPerEngine: this.#d.limits.sessionsPerEngine,
      keySessions: this.#perKey.get(principal.keyId) ?? 0,
      maxSessionsPerKey: this.#d.limits.maxSessionsPerKey,
    });
    if (!admission.admitted) {
      // Refused after the upgrade with a close code: a browser's WebSocket cannot read an HTTP refusal, only 1006.
      ctx.log.info({ code: admission.code, close_code: admission.closeCode }, 'real-time session refused');
      this.#metrics.sessionsTotal.inc({ status: 'refused' });
      return refusal(adapter, open, admission.closeCode, admission.code, admission.message);
    }
    const sessionId = resumed?.sessionId ?? `sess_${ulid(now)}`;
    if (!resumed && this.#d.concurrency) {
      const over = await this.#d.concurrency.admit(principal.tenantId, 'session', sessionId);
      if (over) {
        ctx.log.info({ code: over.reason, close_code: CLOSE.perKeyLimit }, 'real-time session refused');
        this.#metrics.sessionsTotal.inc({ status: 'refused' });
        return refusal(adapter, open, CLOSE.perKeyLimit, over.reason === 'audio_quota' ? 'audio_quota_exceeded' : 'too_many_sessions', over.message);
      }
    }
    // The slot is taken from the admission on (before the token claim's round trip): concurrent upgrades of one
    // key or a burst at capacity must not all pass the check.
    this.#reserved++;
    this.#countKey(principal.keyId, 1);
    try {
      if (tokenJti !== undefined && !(await this.#d.ledger.claim(tokenJti, tokenExpiresAt ?? now))) {
        throw new HttpError(401, 'unauthorized', 'real-time token was already used', { headers: { 'www-authenticate': 'Bearer realm="dalston"' } });
      }
    } catch (err) {
      this.#countKey(principal.keyId, -1);
      if (!resumed) this.#d.concurrency?.release(principal.tenantId, 'session', sessionId);
      throw err;
    } finally {
      this.#reserved--;
    }
    const config = resumed ? resumed.config : resolveSessionConfig(open.options, open.format, adapter.dialect, this.#d.defaults, principal.tenantId);
    const span = trace.getTracer(TRACER_NAME).startSpan(SPAN.realtimeSession, {
      attributes: { [ATTR.sessionId]: sessionId, [ATTR.tenantId]: principal.tenantId, [ATTR.requestId]: ctx.requestId, [ATTR.model]: config.model },
    }, otelContext.active());
    const sc = span.spanContext();
    const traceparent = sc.traceId !== '00000000000000000000000000000000' ? `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags.toString(16)}` : resumed?.traceparent;
    const startOffset = resumed ? (open.resumeOffsetSamples ?? Math.round(resumed.audioSeconds * RATE)) : 0;
    const s = new LiveSession(
      this, sessionId, principal, ctx.requestId, adapter, adapter.createState(open), open.format, config, startOffset, now, span, traceparent,
      open.protocol, resumed ? { finals: resumed.finals } : undefined,
    );
    ctx.annotate({ session_id: sessionId });
    this.#sessions.set(sessionId, s);
    if (ctx.req.signal.aborted) {
      this.#forget(s);
      span.end();
    } else {
      ctx.req.signal.addEventListener('abort', () => {
        if (s.phase === 'pending') {
          this.#forget(s);
          span.end();
        }
      }, { once: true });
    }
    return s;
  }

  #authenticate(open: OpenRequest): { principal: Principal; tokenJti?: string; tokenExpiresAt?: number } {
    const c = open.credential;
    if (c.kind === 'api_key') return { principal: this.#d.authenticator.authenticate(`Bearer ${c.key}`) };
    const unauthorized = (message: string) => new HttpError(401, 'unauthorized', message, { headers: { 'www-authenticate': 'Bearer realm="dalston"' } });
    if (c.kind === 'none') throw unauthorized('missing credential: Authorization: Bearer <api key> header or ?token=<single-use token>');
    const check = verifyToken(this.#d.tokenSecret, c.token, this.#now());
    if (!check.ok) throw unauthorized(check.message);
    const minter = this.#d.keys?.get(check.claims.keyId);
    if (minter?.revokedAt !== undefined) throw unauthorized('the API key that minted this token was revoked');
    if (minter?.expiresAt !== undefined && this.#now() >= minter.expiresAt) throw unauthorized('the API key that minted this token expired');
    // A token grants what it was minted for, a real-time session, and nothing else.
    return { principal: { tenantId: check.claims.tenantId, keyId: check.claims.keyId, scopes: ['realtime'] }, tokenJti: check.claims.jti, tokenExpiresAt: check.claims.expiresAt };
  }

  #countKey(keyId: string, delta: 1 | -1): void {
    const n = (this.#perKey.get(keyId) ?? 0) + delta;
    if (n <= 0) this.#perKey.delete(keyId);
    else this.#perKey.set(keyId, n);
  }

  #forget(s: LiveSession): void {
    if (this.#sessions.get(s.id) !== s) return;
    this.#sessions.delete(s.id);
    this.#countKey(s.principal.keyId, -1);
  }

  /**
   * Headers of the session's events and controls: the actor host's and engine's handling of them joins the session's
   * trace (one trace per session) and request. Audio frames go without: a span per frame would bury the trace.
   */
  #headers(s: LiveSession): MessageHeaders {
    return newMessageHeaders({ context: trace.setSpan(otelContext.active(), s.span), requestId: s.requestId, tenantId: s.principal.tenantId });
  }

  #logOf(s: LiveSession): Logger {
    return this.#log.child({ session_id: s.id, request_id: s.requestId, ...(s.traceparent ? { trace_id: s.traceparent.slice(3, 35) } : {}) });
  }

  // ---- socket events ----

  opened(s: LiveSession, socket: GatewaySocket): void {
    s.socket = socket;
    s.phase = 'open';
    this.#metrics.sessionsActive.inc();
    const now = this.#now();
    s.lastActivityAt = now;
    const fail = (err: unknown) => this.#publishFailed(s, err);
    if (s.resume) {
      this.#d.publisher.input({ v, type: 'rt.reply_to', sessionId: s.id, gatewayId: this.#d.gatewayId, replyTopic: this.#d.replyTopic, at: now }, this.#headers(s)).catch(fail);
      this.#d.publisher.event({ v, type: 'rt.session.resumed', sessionId: s.id, gatewayId: this.#d.gatewayId, replyTopic: this.#d.replyTopic, at: now }, this.#headers(s)).catch(fail);
      s.resumeWatchUntil = now + 30_000;
    } else {
      this.#publishStart(s, now);
      this.#d.publisher.event({
        v, type: 'rt.session.opened', sessionId: s.id, tenantId: s.principal.tenantId, keyId: s.principal.keyId, requestId: s.requestId,
        gatewayId: this.#d.gatewayId, replyTopic: this.#d.replyTopic, config: s.config, startedAt: s.openedAt,
        ...(s.traceparent !== undefined && { traceparent: s.traceparent }),
      }, this.#headers(s)).catch(fail);
    }
    this.#render(s, { type: 'session.begin', sessionId: s.id, model: s.config.model, format: s.format, options: optionsOf(s.config) });
    if (s.resume) for (const f of s.resume.finals) this.#forwardFinal(s, f, false);
    this.#logOf(s).info({ dialect: s.adapter.dialect, resumed: s.resume !== undefined, input_format: s.config.inputFormat }, 'real-time session opened');
  }

  #publishStart(s: LiveSession, now: number): void {
    this.#d.publisher.input({
      v, type: 'rt.session.start', sessionId: s.id, tenantId: s.principal.tenantId, keyId: s.principal.keyId, requestId: s.requestId,
      gatewayId: this.#d.gatewayId, replyTopic: this.#d.replyTopic, config: s.config, startedAt: now,
      ...(s.traceparent !== undefined && { traceparent: s.traceparent }),
    }, this.#headers(s)).catch((err: unknown) => this.#publishFailed(s, err));
  }

  message(s: LiveSession, data: Buffer, isBinary: boolean): void {
    if (s.phase !== 'open' && s.phase !== 'ending') return;
    s.lastActivityAt = this.#now();
    if (data.length > this.#d.limits.maxFrameBytes) {
      this.#fail(s, CLOSE.frameTooBig, 'frame_too_big', `message of ${data.length} bytes exceeds the limit of ${this.#d.limits.maxFrameBytes}`);
      return;
    }
    for (const cmd of s.adapter.onClientMessage(s.dialectState, data, isBinary)) {
      if (s.serverClose || s.socket?.closed === true) return; // an earlier command closed the session
      this.#command(s, cmd);
    }
  }

  #command(s: LiveSession, cmd: ClientCommand): void {
    switch (cmd.kind) {
      case 'audio':
        this.#audio(s, cmd.bytes);
        return;
      case 'configure':
        this.#configure(s, cmd.format, cmd.options);
        return;
      case 'flush':
      case 'clear':
        if (s.phase !== 'open') return;
        this.#control(s, cmd.kind);
        if (cmd.kind === 'clear') this.#render(s, { type: 'buffer.cleared' });
        return;
      case 'end':
        this.#end(s);
        return;
      case 'keepalive':
        return;
      case 'invalid':
        if (cmd.fatal) this.#fail(s, CLOSE.badMessage, cmd.code, cmd.message);
        // A non-fatal bad message is answered as a warning with its code; the session goes on.
        else this.#render(s, { type: 'warning', code: cmd.code, message: cmd.message });
        return;
    }
  }

  #audio(s: LiveSession, bytes: Buffer): void {
    if (s.phase !== 'open' || s.audioEnded) {
      this.#render(s, { type: 'warning', code: 'audio_after_end', message: 'audio after end is ignored' });
      return;
    }
    const now = this.#now();
    if (!s.decoder) {
      s.decoder = new AudioInputDecoder(s.format);
      s.framer = new AudioFramer(s.startOffset);
      s.lag = initialLag(now);
      if (s.config.retention) s.spool = new AudioSpool(this.#d.spoolDir, s.id);
    }
    let samples: Float32Array;
    try {
      samples = s.decoder.decode(bytes);
    } catch (err) {
      this.#fail(s, CLOSE.badMessage, 'invalid_audio', errText(err));
      return;
    }
    if (s.lag) s.lag = onAudio(s.lag, samples.length / RATE);
    for (const f of s.framer?.push(samples) ?? []) this.#sendFrame(s, f, now);
  }

  #sendFrame(s: LiveSession, f: PcmFrame, now: number): void {
    this.#d.publisher.input({ v, type: 'rt.audio', sessionId: s.id, seq: s.seq++, offset: f.offset, pcm: f.pcm, sentAt: now })
      .catch((err: unknown) => this.#publishFailed(s, err));
    s.spool?.append(f.pcm);
  }

  /** Sends the partial frame held (and, at the end, the resampler's tail) so the engine has every sample. */
  #drainAudio(s: LiveSession, endOfStream: boolean): void {
    if (!s.framer || !s.decoder) return;
    const now = this.#now();
    if (endOfStream && !s.audioEnded) {
      s.audioEnded = true;
      for (const f of s.framer.push(s.decoder.flush())) this.#sendFrame(s, f, now);
    }
    const rest = s.framer.drain();
    if (rest) this.#sendFrame(s, rest, now);
  }

  #control(s: LiveSession, action: 'flush' | 'clear' | 'end'): void {
    this.#drainAudio(s, action === 'end');
    this.#d.publisher.input({ v, type: 'rt.control', sessionId: s.id, action, seq: s.seq++, sentAt: this.#now() }, this.#headers(s))
      .catch((err: unknown) => this.#publishFailed(s, err));
  }

  #end(s: LiveSession): void {
    if (s.phase !== 'open') return;
    this.#control(s, 'end');
    s.phase = 'ending';
    s.endRequestedAt = this.#now();
  }

  #configure(s: LiveSession, format: AudioInputFormat | undefined, options: SessionOptions | undefined): void {
    if (s.decoder) {
      this.#render(s, { type: 'warning', code: 'configure_after_audio', message: 'the session configuration cannot change once audio was sent' });
      return;
    }
    if (format) {
      try {
        compileAudioInputFormat(format);
      } catch (err) {
        this.#fail(s, CLOSE.badMessage, 'invalid_audio_format', errText(err));
        return;
      }
      s.format = format;
    }
    const merged = mergeOptions(optionsOf(s.config), options);
    s.config = resolveSessionConfig(merged, s.format, s.adapter.dialect, this.#d.defaults, s.principal.tenantId);
    // The engine takes a repeated start before any audio as the session's new configuration; the session actor
    // records it for the history and for an engine that restores the session.
    if (!s.resume) {
      const now = this.#now();
      this.#publishStart(s, now);
      this.#d.publisher.event({ v, type: 'rt.session.configured', sessionId: s.id, config: s.config, at: now }, this.#headers(s))
        .catch((err: unknown) => this.#publishFailed(s, err));
    }
    this.#render(s, { type: 'session.updated', format: s.format, options: optionsOf(s.config) });
  }

  closed(s: LiveSession, code: number, reason: string): void {
    if (s.phase === 'closed') return;
    const wasEnding = s.phase === 'ending';
    const wasOpen = s.phase === 'open' || wasEnding;
    s.phase = 'closed';
    this.#forget(s);
    if (!wasOpen) return;
    this.#metrics.sessionsActive.dec();
    const closeCode = s.serverClose?.code ?? code;
    const closeReason = s.serverClose?.reason ?? reason;
    const status = s.engineAudioSeconds !== undefined && closeCode === CLOSE.normal ? 'completed' : closeStatus(closeCode);
    this.#metrics.sessionsTotal.inc({ status });
    // The engine finishes the session unless the gateway went away (1012): then a client resumes it elsewhere.
    if (closeCode !== CLOSE.resumable && !wasEnding && s.engineAudioSeconds === undefined) this.#control(s, 'end');
    else if (closeCode === CLOSE.resumable) this.#drainAudio(s, true);
    const audioSeconds = (s.position - s.startOffset) / RATE;
    const log = this.#logOf(s);
    const latency = summarizeLatency(s.latency);
    const done = (async () => {
      let audioKey: string | undefined;
      if (s.spool) {
        try {
          audioKey = await s.spool.store(this.#d.store, sessionAudioKey(s.id, s.startOffset));
        } catch (err) {
          log.error({ err: errText(err) }, 'storing the session audio failed');
        }
      }
      try {
        await this.#d.publisher.event({
          v, type: 'rt.session.closed', sessionId: s.id, closeCode, reason: closeReason, audioSeconds, ...(audioKey !== undefined && { audioKey }),
          ...(latency !== undefined && { latency }), at: this.#now(),
        }, this.#headers(s));
      } catch (err) {
        log.error({ err: errText(err) }, 'publishing rt.session.closed failed');
      }
      s.span.setAttribute('dalston.realtime.close_code', closeCode);
      s.span.setAttribute(ATTR.audioDurationSeconds, audioSeconds);
      s.span.end();
      log.info({ close_code: closeCode, status, audio_seconds: Math.round(audioSeconds * 100) / 100, finals: s.finals?.length ?? 0 }, 'real-time session closed');
    })();
    this.#closing.add(done);
    void done.finally(() => this.#closing.delete(done));
  }

  // ---- replies from the engine ----

  /** One reply from this gateway's reply topic; `arrivedAt` is when it was read (epoch ms). */
  onReply(r: RealtimeReply, arrivedAt: number = this.#now()): void {
    const s = this.#sessions.get(r.sessionId);
    if (!s || (s.phase !== 'open' && s.phase !== 'ending')) return;
    switch (r.type) {
      case 'rt.progress':
        if (s.lag) s.lag = onProgress(s.lag, r.processedSeconds, arrivedAt);
        return;
      case 'rt.vad':
        this.#hop(r.at, arrivedAt);
        if (r.event === 'speech_start') this.#render(s, { type: 'vad.speech_start', utterance: r.utterance, start: r.start });
        else this.#render(s, { type: 'vad.speech_end', utterance: r.utterance, start: r.start, end: r.end ?? r.start });
        return;
      case 'rt.partial':
        if (r.utterance <= s.highestFinal || !s.config.partials) return;
        this.#hop(r.at, arrivedAt);
        if (r.utterance !== s.lastPartialUtterance) {
          s.lastPartialUtterance = r.utterance;
          const ms = Math.max(0, arrivedAt - r.receivedAt);
          this.#metrics.latency.observe({ kind: 'first_partial' }, ms / 1000);
          s.latency.firstPartialMs.push(ms);
        }
        this.#render(s, { type: 'transcript.partial', utterance: r.utterance, text: r.text, start: r.start, end: r.end }, arrivedAt);
        return;
      case 'rt.final': {
        if (r.final.utterance <= s.highestFinal) return;
        this.#hop(r.at, arrivedAt);
        const ms = Math.max(0, arrivedAt - (r.speechEndAt ?? r.receivedAt));
        this.#metrics.latency.observe({ kind: 'final' }, ms / 1000);
        s.latency.finalMs.push(ms);
        this.#forwardFinal(s, r.final, r.final.reason === 'flush', arrivedAt);
        return;
      }
      case 'rt.ended':
        s.engineAudioSeconds = r.audioSeconds;
        if (s.phase === 'ending') {
          const finals = s.finals ?? [];
          this.#render(s, { type: 'session.end', sessionId: s.id, audioSeconds: r.audioSeconds, text: finals.map((f) => f.text).join(' ').trim(), finals });
          s.serverClose = { code: CLOSE.normal, reason: 'session ended' };
          s.socket?.close(CLOSE.normal, 'session ended');
        }
        return;
      case 'rt.error':
        if (r.retryable) this.#render(s, { type: 'warning', code: r.code, message: r.message });
        else {
          s.engineAudioSeconds = s.engineAudioSeconds ?? 0; // the engine already dropped the session: no `end` to send
          this.#fail(s, CLOSE.internal, r.code, r.message);
        }
        return;
    }
  }

  #forwardFinal(s: LiveSession, final: RealtimeFinal, flushed: boolean, arrivedAt?: number): void {
    if (final.utterance <= s.highestFinal) return;
    s.highestFinal = final.utterance;
    (s.finals ??= []).push(final);
    this.#render(s, { type: 'transcript.final', final, flushed }, arrivedAt);
  }

  #hop(sentAt: number, arrivedAt: number): void {
    this.#hops.observe({ hop: 'engine_to_gateway' }, Math.max(0, arrivedAt - sentAt) / 1000);
  }

  #render(s: LiveSession, event: SessionEvent, arrivedAt?: number): void {
    const socket = s.socket;
    if (!socket || socket.closed) return;
    for (const frame of s.adapter.render(s.dialectState, event)) socket.send(frame);
    if (arrivedAt !== undefined) this.#hops.observe({ hop: 'gateway_to_client' }, Math.max(0, this.#now() - arrivedAt) / 1000);
  }

  // ---- limits and closing ----

  /** Closes a session from the server's side: the dialect's error message, then the close frame. */
  #fail(s: LiveSession, closeCode: number, code: string, message: string): void {
    if (s.phase === 'closed' || s.serverClose) return;
    this.#render(s, { type: 'error', code, message, closeCode });
    s.serverClose = { code: closeCode, reason: reasonText(`${code}: ${message}`) };
    this.#logOf(s).info({ close_code: closeCode, code }, 'closing real-time session');
    if (s.socket) s.socket.close(closeCode, s.serverClose.reason);
  }

  #publishFailed(s: LiveSession, err: unknown): void {
    this.#logOf(s).error({ err: errText(err) }, 'real-time publish failed');
    this.#fail(s, CLOSE.internal, 'internal_error', 'the session could not be forwarded to the engine');
  }

  /** Idle timeout, maximum length, lag budget, end timeout, late finals after a resume: once a second for all. */
  sweep(now: number = this.#now()): void {
    const l = this.#d.limits;
    for (const s of this.#sessions.values()) {
      // The engine's progress on the session's audio is activity too: a client that sent its audio and waits for the
      // transcript is not idle while a loaded engine works through it, and an ending session is not stuck.
      const activeAt = Math.max(s.lastActivityAt, s.lag?.lastProgressAt ?? 0);
      if (s.phase === 'open') {
        if (now - activeAt >= l.idleTimeoutMs) {
          this.#fail(s, CLOSE.idle, 'idle_timeout', `no message for ${Math.round(l.idleTimeoutMs / 1000)} s`);
          continue;
        }
        if (now - s.openedAt >= l.maxSessionMs) {
          this.#fail(s, CLOSE.maxLength, 'max_session_length', `session reached the maximum length of ${Math.round(l.maxSessionMs / 1000)} s`);
          continue;
        }
        if (s.lag) {
          const { state, verdict } = evaluateLag(s.lag, now, l.lag);
          s.lag = state;
          const behind = Math.round((state.receivedSeconds - state.processedSeconds) * 10) / 10;
          if (verdict === 'warn') this.#render(s, { type: 'warning', code: 'lag', message: `transcription is ${behind} s behind the audio` });
          else if (verdict === 'close') {
            this.#fail(s, CLOSE.lag, 'lag_budget_exceeded', `transcription fell ${behind} s behind the audio`);
            continue;
          }
        }
      } else if (s.phase === 'ending' && now - Math.max(s.endRequestedAt, activeAt) >= (l.endTimeoutMs ?? 30_000)) {
        this.#fail(s, CLOSE.internal, 'end_timeout', 'the engine did not finish the session in time');
        continue;
      }
      if (s.resumeWatchUntil > now && this.#d.directory) void this.#catchUpFinals(s, this.#d.directory);
    }
  }

  /** Finals the engine sent to the old gateway after it went away reach the client from the session's snapshot. */
  async #catchUpFinals(s: LiveSession, directory: SessionDirectory): Promise<void> {
    const state = await directory.lookup(s.id, 0);
    if (!state || s.phase === 'closed') return;
    for (const f of state.finals) if (f.utterance > s.highestFinal) this.#forwardFinal(s, f, f.reason === 'flush');
  }

  /**
   * The gateway goes away (SIGTERM): every live socket is closed with 1012 and a reason naming the session and the
   * audio position to resume from; the engine keeps the session, so a client reconnecting with `?resume=` to any
   * gateway goes on. Resolves once the closes are published.
   */
  async shutdown(): Promise<void> {
    this.#shuttingDown = true;
    if (this.#timer) clearInterval(this.#timer);
    for (const s of [...this.#sessions.values()]) {
      if (s.phase !== 'open' && s.phase !== 'ending') continue;
      this.#drainAudio(s, true);
      const reason = resumableReason(s.id, s.position);
      this.#render(s, { type: 'error', code: 'gateway_going_away', message: `this gateway is shutting down; reconnect with ?resume=${s.id}&resume_offset=${s.position}`, closeCode: CLOSE.resumable });
      s.serverClose = { code: CLOSE.resumable, reason };
      s.socket?.close(CLOSE.resumable, reason);
    }
    await Promise.allSettled([...this.#closing]);
    await this.#d.publisher.flushed();
  }
}

/** The handler of a refused session: the dialect's error message, then the close code (no session exists). */
function refusal(adapter: RealtimeDialectAdapter, open: OpenRequest, closeCode: number, code: string, message: string): SocketHandler {
  const state = adapter.createState(open);
  return {
    ...(open.protocol !== undefined && { protocol: open.protocol }),
    open(socket) {
      for (const frame of adapter.render(state, { type: 'error', code, message, closeCode })) socket.send(frame);
      socket.close(closeCode, reasonText(`${code}: ${message}`));
    },
    message() {
      // Refused: nothing the client sends matters.
    },
  };
}

