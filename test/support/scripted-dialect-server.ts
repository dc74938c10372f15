/**
 * A real WebSocket server (the gateway's uWS listener, optionally TLS) that speaks any dialect adapter over a
 * scripted session instead of the engine: speech starts, partials, VAD finals, flush/clear/end answers happen at
 * fixed positions of the audio the client sends. It lets the vendor SDKs be tested against the adapters with no
 * Kafka and no model, and shows what the session bridge does with an adapter's commands, in miniature.
 *
 * Authentication mirrors the gateway's: an API key, or a single-use token from `tokens` (refused the second time).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { silentLogger } from '../../core/logger.js';
import type { AudioInputFormat } from '../../engines/streaming/index.js';
import type { RealtimeFinal } from '../../streams/index.js';
import { toHttpError } from '../../gateway/errors.js';
import { sendJson } from '../../gateway/http-exchange.js';
import type { ClientCommand, OpenRequest, RealtimeDialectAdapter, SessionEvent, SessionOptions } from '../../gateway/realtime/dialect.js';
import { createUwsServer, type TlsFiles } from '../../gateway/uws-server.js';
import type { GatewaySocket } from '../../gateway/websocket.js';

/** One scripted utterance: its words are spread evenly over [start, end] seconds of session audio. */
export interface ScriptedUtterance {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

/** Three utterances in the first 7.5 s of audio. */
export const DEFAULT_SCRIPT: readonly ScriptedUtterance[] = [
  { text: 'the quick brown fox', start: 0.5, end: 2.0 },
  { text: 'jumps over the lazy dog', start: 3.0, end: 4.8 },
  { text: 'and runs away', start: 5.8, end: 7.0 },
];

export interface ScriptedServerOptions {
  readonly adapters: readonly RealtimeDialectAdapter<unknown>[];
  readonly apiKey: string;
  /** Single-use tokens the server accepts once each. */
  readonly tokens?: readonly string[];
  readonly tls?: TlsFiles;
  readonly script?: readonly ScriptedUtterance[];
  /** Seconds of audio between partials. @default 0.3 */
  readonly partialEverySeconds?: number;
  /** Silence after an utterance's last word before the VAD final. @default 0.5 */
  readonly pauseSeconds?: number;
  /** Model named in session.begin. @default 'scripted' */
  readonly model?: string;
}

/** What happened on one socket, for assertions. */
export interface ScriptedSessionRecord {
  readonly sessionId: string;
  readonly dialect: string;
  readonly open: OpenRequest;
  readonly commands: ClientCommand[];
  readonly events: SessionEvent[];
  closeCode?: number;
  closeReason?: string;
}

export interface ScriptedDialectServer {
  /** `ws://127.0.0.1:<port>` (or `wss://`). */
  readonly wsUrl: string;
  /** `http://127.0.0.1:<port>` (or `https://`). */
  readonly httpUrl: string;
  readonly sessions: readonly ScriptedSessionRecord[];
  close(): Promise<void>;
}

interface ScriptWord {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

function wordsOf(script: readonly ScriptedUtterance[]): ScriptWord[] {
  return script.flatMap((u) => {
    const parts = u.text.split(/\s+/).filter((w) => w !== '');
    const step = (u.end - u.start) / Math.max(1, parts.length);
    return parts.map((text, i) => ({ text, start: u.start + i * step, end: u.start + (i + 1) * step }));
  });
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/** The scripted stand-in for the engine and session actor of one session. */
class ScriptedSession {
  private format: AudioInputFormat;
  private options: SessionOptions;
  private samples = 0;
  private readonly words: ScriptWord[];
  private consumed = 0;
  private nextScript = 0;
  private current = -1;
  private speechEndPending = false;
  private utterances = 0;
  private open: { n: number; start: number } | undefined;
  private lastPartialAt = -Infinity;
  private lastPartialText = '';
  readonly finals: RealtimeFinal[] = [];

  constructor(
    private readonly script: readonly ScriptedUtterance[],
    open: OpenRequest,
    private readonly partialEvery: number,
    private readonly pause: number,
  ) {
    this.format = open.format;
    this.options = open.options;
    this.words = wordsOf(script);
  }

  get position(): number {
    return this.samples / this.format.sampleRate;
  }

  configure(format: AudioInputFormat | undefined, options: SessionOptions | undefined): SessionEvent {
    if (format) this.format = format;
    if (options) this.options = { ...this.options, ...options };
    return { type: 'session.updated', format: this.format, options: this.options };
  }

  sessionOptions(): SessionOptions {
    return this.options;
  }

  currentFormat(): AudioInputFormat {
    return this.format;
  }

  /** Audio arrived: advance the position and emit what the script says happened by then. */
  audio(bytes: Buffer): SessionEvent[] | string {
    const frameBytes = (this.format.encoding === 'pcm_s16le' ? 2 : 1) * (this.format.channels ?? 1);
    if (bytes.length % frameBytes !== 0) return `audio chunk of ${bytes.length} bytes is not a whole number of ${frameBytes}-byte sample frames`;
    this.samples += bytes.length / frameBytes;
    return this.tick();
  }

  private tick(): SessionEvent[] {
    const pos = this.position;
    const out: SessionEvent[] = [];
    while (this.nextScript < this.script.length && (this.script[this.nextScript]?.start ?? Infinity) <= pos) {
      this.current = this.nextScript++;
      this.speechEndPending = true;
      if (!this.open) out.push(this.startUtterance(this.script[this.current]?.start ?? pos));
    }
    if (this.open && this.options.partials !== false && pos - this.lastPartialAt >= this.partialEvery) {
      const text = this.pending(pos).map((w) => w.text).join(' ');
      if (text !== '' && text !== this.lastPartialText) {
        this.lastPartialAt = pos;
        this.lastPartialText = text;
        out.push({ type: 'transcript.partial', utterance: this.open.n, text, start: round(this.open.start), end: round(pos) });
      }
    }
    const cur = this.script[this.current];
    if (cur && this.speechEndPending && cur.end + this.pause <= pos) {
      this.speechEndPending = false;
      if (this.open) {
        out.push({ type: 'vad.speech_end', utterance: this.open.n, start: round(this.open.start), end: round(cur.end) });
        if (this.options.commitStrategy !== 'manual') out.push(this.finalise(cur.end, 'pause', false));
      }
    }
    return out;
  }

  private startUtterance(start: number): SessionEvent {
    this.open = { n: this.utterances++, start };
    this.lastPartialAt = -Infinity;
    this.lastPartialText = '';
    return { type: 'vad.speech_start', utterance: this.open.n, start: round(start) };
  }

  private pending(until: number): ScriptWord[] {
    const out: ScriptWord[] = [];
    for (let i = this.consumed; i < this.words.length; i++) {
      const w = this.words[i];
      if (!w || w.end > until + 1e-9) break;
      out.push(w);
    }
    return out;
  }

  private finalise(until: number, reason: RealtimeFinal['reason'], flushed: boolean): SessionEvent {
    const open = this.open ?? { n: this.utterances++, start: until };
    const words = this.pending(until);
    this.consumed += words.length;
    this.open = undefined;
    const final: RealtimeFinal = {
      utterance: open.n, text: words.map((w) => w.text).join(' '), start: round(open.start), end: round(Math.max(open.start, until)), reason,
      words: words.map((w) => ({ text: w.text, start: round(w.start), end: round(w.end), confidence: 0.9 })),
    };
    this.finals.push(final);
    return { type: 'transcript.final', final, flushed };
  }

  /** Client commit/Finalize: finalise what was heard now; speech that goes on opens the next utterance. */
  flush(): SessionEvent[] {
    const pos = this.position;
    if (!this.open) return [];
    const out = [this.finalise(pos, 'flush', true)];
    const cur = this.script[this.current];
    if (cur && pos < cur.end) out.push(this.startUtterance(pos));
    return out;
  }

  clear(): SessionEvent[] {
    this.consumed += this.pending(this.position).length;
    this.open = undefined;
    return [{ type: 'buffer.cleared' }];
  }

  end(sessionId: string): SessionEvent[] {
    const out: SessionEvent[] = this.open ? [this.finalise(this.position, 'end', false)] : [];
    out.push({ type: 'session.end', sessionId, audioSeconds: round(this.position), text: this.finals.map((f) => f.text).filter((t) => t !== '').join(' '), finals: [...this.finals] });
    return out;
  }
}

function protocolsOf(header: string | undefined): string[] {
  return (header ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
}

export async function startScriptedDialectServer(options: ScriptedServerOptions): Promise<ScriptedDialectServer> {
  const sessions: ScriptedSessionRecord[] = [];
  const tokens = new Set(options.tokens ?? []);
  const script = options.script ?? DEFAULT_SCRIPT;
  let sessionCount = 0;

  const server = createUwsServer((req, res) => {
    const url = new URL(req.url, 'http://scripted');
    const adapter = options.adapters.find((a) => a.path === url.pathname);
    if (!adapter) return sendJson(res, 404, { error: { code: 'not_found', message: `no dialect at ${url.pathname}` } });
    const upgrade = res.upgrade;
    if (!upgrade) return sendJson(res, 426, { error: { code: 'upgrade_required', message: 'connect with a WebSocket client' } });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = v;
    let open: OpenRequest;
    try {
      open = adapter.parseOpen({ query: url.searchParams, headers, protocols: protocolsOf(headers['sec-websocket-protocol']) });
    } catch (err) {
      const e = toHttpError(err);
      return sendJson(res, e.status, { error: { code: e.apiCode, message: e.message } });
    }
    const c = open.credential;
    const authorised = c.kind === 'api_key' ? c.key === options.apiKey : c.kind === 'token' ? tokens.delete(c.token) : false;
    if (!authorised) return sendJson(res, 401, { error: { code: 'unauthorized', message: c.kind === 'none' ? 'missing credential' : 'invalid credential' } });

    const sessionId = `rt_scripted_${++sessionCount}`;
    const state = adapter.createState(open);
    const session = new ScriptedSession(script, open, options.partialEverySeconds ?? 0.3, options.pauseSeconds ?? 0.5);
    const record: ScriptedSessionRecord = { sessionId, dialect: adapter.dialect, open, commands: [], events: [] };
    sessions.push(record);
    const emit = (socket: GatewaySocket, events: readonly SessionEvent[]) => {
      for (const e of events) {
        record.events.push(e);
        for (const frame of adapter.render(state, e)) socket.send(frame);
      }
    };
    const fail = (socket: GatewaySocket, code: string, message: string) => {
      emit(socket, [{ type: 'error', code, message, closeCode: 4400 }]);
      socket.close(4400, message.slice(0, 100));
    };

    upgrade({
      ...(open.protocol === undefined ? {} : { protocol: open.protocol }),
      open(socket) {
        emit(socket, [{ type: 'session.begin', sessionId, model: options.model ?? 'scripted', format: session.currentFormat(), options: session.sessionOptions() }]);
      },
      message(socket, data, isBinary) {
        for (const cmd of adapter.onClientMessage(state, data, isBinary)) {
          if (socket.closed) return;
          record.commands.push(cmd);
          switch (cmd.kind) {
            case 'audio': {
              const events = session.audio(cmd.bytes);
              if (typeof events === 'string') return fail(socket, 'bad_audio', events);
              emit(socket, events);
              break;
            }
            case 'configure': emit(socket, [session.configure(cmd.format, cmd.options)]); break;
            case 'flush': emit(socket, session.flush()); break;
            case 'clear': emit(socket, session.clear()); break;
            case 'end':
              emit(socket, session.end(sessionId));
              socket.close(1000, 'session ended');
              return;
            case 'keepalive': break;
            case 'invalid':
              if (cmd.fatal) return fail(socket, cmd.code, cmd.message);
              emit(socket, [{ type: 'warning', code: cmd.code, message: cmd.message }]);
              break;
          }
        }
      },
      close(_socket, code, reason) {
        record.closeCode = code;
        record.closeReason = reason;
      },
    });
  }, { log: silentLogger, tls: options.tls });

  const port = await server.listen(0, '127.0.0.1');
  const secure = options.tls !== undefined;
  return {
    wsUrl: `${secure ? 'wss' : 'ws'}://127.0.0.1:${port}`,
    httpUrl: `${secure ? 'https' : 'http'}://127.0.0.1:${port}`,
    sessions,
    close: () => server.close(1000),
  };
}

export interface SelfSignedCert extends TlsFiles {
  /** The certificate (PEM), to trust as a CA on the client side. */
  readonly cert: Buffer;
  remove(): Promise<void>;
}

/** A throwaway certificate for 127.0.0.1 (openssl), valid one day. */
export async function makeSelfSignedCert(): Promise<SelfSignedCert> {
  const dir = await mkdtemp(join(tmpdir(), 'dalston-cert-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile,
  ]);
  return { certFile, keyFile, cert: await readFile(certFile), remove: () => rm(dir, { recursive: true, force: true }) };
}
