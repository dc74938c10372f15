/**
 * A native-protocol real-time client for tests and load tests (`ws`, as a user would write it): streams 16-bit PCM
 * at real-time pace (or faster) in fixed chunks, optionally sends controls at given audio positions, and records
 * every server message with its arrival time and the audio position sent by then.
 */
import WebSocket from 'ws';

export interface ServerMessage {
  readonly type: string;
  readonly [field: string]: unknown;
}

export interface ReceivedMessage {
  /** Arrival, ms since the session's first audio chunk was sent. */
  readonly atMs: number;
  /** Seconds of audio sent when it arrived. */
  readonly sentSeconds: number;
  readonly message: ServerMessage;
}

export interface NativeSessionOptions {
  /** ws(s)://host:port of the gateway. */
  readonly baseUrl: string;
  readonly apiKey?: string;
  /** Extra query parameters (encoding and sample_rate are set from `sampleRate`). */
  readonly query?: Readonly<Record<string, string>>;
  /** Rate of `pcm` (16-bit little-endian mono). @default 16000 */
  readonly sampleRate?: number;
  /** Audio per message. @default 100 */
  readonly chunkMs?: number;
  /** 1 = real time, 2 = twice as fast, Infinity = as fast as possible. @default 1 */
  readonly speed?: number;
  /** JSON controls sent once the audio sent reaches `atSeconds`. */
  readonly controls?: readonly { readonly atSeconds: number; readonly message: Readonly<Record<string, unknown>> }[];
  /** Send `{type:'end'}` after the audio (else only close). @default true */
  readonly sendEnd?: boolean;
  /** Gives up waiting for the server's close after the audio. @default 60000 */
  readonly endTimeoutMs?: number;
  /** Extra WebSocket client options (headers, TLS ca). */
  readonly wsOptions?: WebSocket.ClientOptions;
  /** Called with each message as it arrives. */
  readonly onMessage?: (m: ReceivedMessage) => void;
}

export interface NativeSessionResult {
  readonly messages: readonly ReceivedMessage[];
  readonly closeCode: number;
  readonly closeReason: string;
  /** True when the server refused the upgrade (then `httpStatus` is set). */
  readonly refused: boolean;
  readonly httpStatus?: number;
  readonly httpBody?: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function nativeUrl(options: Pick<NativeSessionOptions, 'baseUrl' | 'query' | 'sampleRate'>): string {
  const q = new URLSearchParams({ encoding: 'pcm_s16le', sample_rate: String(options.sampleRate ?? 16000), ...options.query });
  return `${options.baseUrl.replace(/\/$/, '')}/v1/audio/transcriptions/stream?${q.toString()}`;
}

export interface OpenedSession {
  readonly ws: WebSocket;
  readonly refused?: { status: number; body: string };
  /**
   * Text messages that arrived before the caller could listen: the server's first message can come in the same
   * packet as the upgrade answer, and `ws` emits it before a promise continuation runs. Reading them stops the
   * early collection.
   */
  takeEarly(): string[];
}

/** Opens a native session; resolves once open (or refused). */
export function openNative(options: NativeSessionOptions): Promise<OpenedSession> {
  const headers: Record<string, string> = { ...(options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` }) };
  const ws = new WebSocket(nativeUrl(options), { ...options.wsOptions, headers: { ...headers, ...(options.wsOptions?.headers ?? {}) } });
  const early: string[] = [];
  const collect = (data: WebSocket.RawData, isBinary: boolean) => {
    if (!isBinary) early.push(rawText(data));
  };
  ws.on('message', collect);
  const takeEarly = () => {
    ws.off('message', collect);
    return early.splice(0);
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, takeEarly }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ ws, refused: { status: res.statusCode ?? 0, body }, takeEarly }));
    });
    ws.once('error', reject);
  });
}

/** Streams `pcm` through one native session and collects everything the server sent until it closed. */
export async function streamNative(pcm: Int16Array, options: NativeSessionOptions): Promise<NativeSessionResult> {
  const rate = options.sampleRate ?? 16000;
  const chunk = Math.round((rate * (options.chunkMs ?? 100)) / 1000);
  const speed = options.speed ?? 1;
  const opened = await openNative(options);
  if (opened.refused) return { messages: [], closeCode: 0, closeReason: '', refused: true, httpStatus: opened.refused.status, httpBody: opened.refused.body };
  const { ws } = opened;
  const messages: ReceivedMessage[] = [];
  let sent = 0;
  let t0 = Date.now();
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const receive = (text: string) => {
    let message: ServerMessage;
    try {
      message = JSON.parse(text) as ServerMessage;
    } catch {
      message = { type: '<unparsable>', raw: text };
    }
    const m = { atMs: Date.now() - t0, sentSeconds: sent / rate, message };
    messages.push(m);
    options.onMessage?.(m);
  };
  for (const text of opened.takeEarly()) receive(text);
  ws.on('message', (data, isBinary) => {
    if (!isBinary) receive(rawText(data));
  });
  const controls = [...(options.controls ?? [])].sort((a, b) => a.atSeconds - b.atSeconds);
  t0 = Date.now();
  for (let at = 0; at < pcm.length && ws.readyState === WebSocket.OPEN; at += chunk) {
    const piece = pcm.subarray(at, Math.min(pcm.length, at + chunk));
    ws.send(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
    sent = at + piece.length;
    while (controls[0] !== undefined && controls[0].atSeconds <= sent / rate) ws.send(JSON.stringify(controls.shift()?.message));
    if (Number.isFinite(speed)) {
      const due = t0 + ((sent / rate) * 1000) / speed;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
    }
  }
  for (const c of controls) if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(c.message));
  if (ws.readyState === WebSocket.OPEN && options.sendEnd !== false) ws.send(JSON.stringify({ type: 'end' }));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ code: number; reason: string }>((resolve) => {
    timer = setTimeout(() => {
      ws.terminate();
      resolve({ code: -1, reason: 'client gave up waiting for the end of the session' });
    }, options.endTimeoutMs ?? 60_000);
  });
  // The give-up timer must not outlive the session: a pending one would hold the test process open.
  const end = await Promise.race([closed, timeout]).finally(() => clearTimeout(timer));
  return { messages, closeCode: end.code, closeReason: end.reason, refused: false };
}

function rawText(data: WebSocket.RawData): string {
  return Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
}

/** Float samples in [-1, 1] → 16-bit PCM. */
export function toPcm16(samples: Float32Array): Int16Array {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round((samples[i] ?? 0) * 32767)));
  return out;
}

/** Messages of one type, in arrival order. */
export function ofType(result: Pick<NativeSessionResult, 'messages'>, type: string): ReceivedMessage[] {
  return result.messages.filter((m) => m.message.type === type);
}
