/**
 * One uWebSockets.js request/response pair adapted to the gateway's HttpRequest/HttpResponse.
 *
 * uWS rules this file keeps so nothing else has to: the native request is readable only inside the route callback
 * (everything is copied out at once); `onAborted` and `onData` are attached before any async work; a body chunk
 * is valid only inside `onData` (copied); every write happens inside `cork`; a response is never touched after it
 * ended or was aborted. The body stream pauses the socket when its buffer is full and resumes it when read.
 *
 * A response sent before the whole body arrived (a 413, a 401 on an upload) closes the connection: the rest of
 * the body is never read, and the connection cannot be reused mid-body anyway.
 */
import { STATUS_CODES } from 'node:http';
import { Readable } from 'node:stream';
import type { HttpRequest as UwsRequest, HttpResponse as UwsResponse, us_socket_context_t } from '@trufflesuite/uws-js-unofficial';
import { IllegalStateError } from '../core/errors.js';
import type { HttpRequest, HttpResponse, ResponseWriter } from './http-exchange.js';
import { ClientGoneError, bodyIdleTimeout } from './errors.js';
import type { SocketHandler } from './websocket.js';

/** What a WebSocket carries from its upgrade to its events (uWS "user data"). */
export interface SocketSlot {
  readonly handler: SocketHandler;
}

/** The parts of a uWS upgrade callback needed to complete the upgrade later. */
export interface UpgradeTarget {
  readonly context: us_socket_context_t;
}

export interface UwsExchangeOptions {
  /** Body bytes buffered before the socket is paused. */
  readonly bodyHighWaterMark: number;
  /** True while the server drains: responses then close their connection instead of keeping it alive. */
  readonly closing: () => boolean;
  /**
   * A request body that sends nothing for this long while the server waits for it is abandoned: its readers get a
   * 408 error, which is answered and the connection closed. Paused bodies (the server is not reading) do not count.
   */
  readonly bodyIdleMs: number;
}

/** Headers node:http keeps only the first of when repeated (a second Authorization must not be merged in). */
const SINGLE_VALUED = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after',
  'server', 'user-agent',
]);

/** Framing headers the server writes itself; a handler's value would duplicate or contradict them. */
const SERVER_OWNED = new Set(['content-length', 'transfer-encoding', 'connection', 'date']);

function readHeaders(req: UwsRequest): { headers: Record<string, string>; repeated: string[] } {
  const headers: Record<string, string> = {};
  const repeated: string[] = [];
  req.forEach((key, value) => {
    const prior = headers[key];
    if (prior === undefined) headers[key] = value;
    else if (!SINGLE_VALUED.has(key)) headers[key] = `${prior}${key === 'cookie' ? '; ' : ', '}${value}`;
    else if (!repeated.includes(key)) repeated.push(key);
  });
  return { headers, repeated };
}

type State =
  /** Waiting for the handler's answer. */
  | 'open'
  /** A streamed response is going out. */
  | 'streaming'
  /** A response went out in full. */
  | 'sent'
  /** Switched to WebSocket. */
  | 'upgraded'
  /** The server cut the connection. */
  | 'destroyed'
  /** The client went away first. */
  | 'aborted';

export class UwsExchange {
  readonly request: HttpRequest;
  readonly response: HttpResponse;
  private state: State = 'open';
  private status: number | undefined;
  private bodyDone = false;
  private paused = false;
  private readonly pending: Record<string, string> = {};
  private readonly closeListeners: (() => void)[] = [];
  private readonly abort = new AbortController();
  private readonly body: Readable;
  /** Ends a streaming response whose client went away. */
  private stopStreaming: (() => void) | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  /** Call synchronously inside the uWS route (or upgrade) callback. */
  constructor(
    private readonly res: UwsResponse,
    req: UwsRequest,
    private readonly options: UwsExchangeOptions,
    upgrade?: UpgradeTarget,
  ) {
    const method = req.getCaseSensitiveMethod();
    const query = req.getQuery() as string | undefined; // uWS answers undefined, not '', without a query
    const url = query ? `${req.getUrl()}?${query}` : req.getUrl();
    const { headers, repeated } = readHeaders(req);
    // Read now: uWS answers the peer's address only while the route callback runs.
    const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString('utf8');
    this.body = new Readable({
      highWaterMark: options.bodyHighWaterMark,
      read: () => {
        if (this.paused && this.state === 'open') {
          this.paused = false;
          this.res.resume();
          this.armIdle();
        }
      },
    });
    // Readers (an upload's pipeline) get the body's errors; a body nobody reads must not crash the process with one.
    this.body.on('error', () => undefined);
    res.onAborted(() => this.onAborted());
    // Known to be bodiless up front (no Content-Length or a zero one, not chunked, or an upgrade): uWS reports
    // that body only after the route callback returns, and an answer given before then must not be taken for
    // one that cut a body short (which closes the connection).
    const bodiless = upgrade !== undefined || (headers['transfer-encoding'] === undefined && Number(headers['content-length'] ?? '0') === 0);
    if (bodiless) {
      this.bodyDone = true;
      this.body.push(null);
    }
    if (!upgrade) res.onData((chunk, isLast) => this.onData(chunk, isLast));
    if (!this.bodyDone) this.armIdle();
    const bodyDone = () => this.bodyDone;
    const status = () => this.status;
    this.request = {
      method, url, headers, body: this.body, signal: this.abort.signal, repeatedHeaders: repeated, remoteAddress,
      get bodyComplete() {
        return bodyDone();
      },
    };
    this.response = {
      setHeader: (name, value) => {
        this.pending[name.toLowerCase()] = value;
      },
      get headersSent() {
        return status() !== undefined;
      },
      get statusCode() {
        return status();
      },
      send: (status, extra, body) => this.send(method, status, extra, body),
      stream: (status, extra, body, length) => this.stream(method, status, extra, body, length),
      begin: (status, extra) => this.begin(status, extra),
      destroy: () => this.destroy(),
      onClose: (listener) => {
        if (this.state === 'open' || this.state === 'streaming') this.closeListeners.push(listener);
        else listener();
      },
      upgrade: upgrade ? (handler) => this.upgrade(headers, upgrade, handler) : undefined,
    };
  }

  /**
   * Runs the body idle timer while the body is awaited and the socket is read, and stops it otherwise. A chunk only
   * restarts the running timer (refresh: no new timer per chunk on a large upload).
   */
  private armIdle(): void {
    const awaited = !this.bodyDone && !this.paused && this.state === 'open' && !this.body.destroyed;
    if (!awaited) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    } else if (this.idleTimer) {
      this.idleTimer.refresh();
    } else {
      // The body is abandoned, not completed: the answer then closes the connection like any cut-short body.
      this.idleTimer = setTimeout(() => this.body.destroy(bodyIdleTimeout(Math.round(this.options.bodyIdleMs / 1000))), this.options.bodyIdleMs).unref();
    }
  }

  private onData(chunk: ArrayBuffer, isLast: boolean): void {
    if (this.state !== 'open' || this.bodyDone || this.body.destroyed) return;
    // uWS neuters the chunk when this callback returns: Buffer.from(Uint8Array) copies it.
    const more = chunk.byteLength === 0 || this.body.push(Buffer.from(new Uint8Array(chunk)));
    if (isLast) {
      this.bodyDone = true;
      this.body.push(null);
    } else if (!more && !this.paused) {
      this.paused = true;
      this.res.pause();
    }
    this.armIdle();
  }

  private onAborted(): void {
    if (this.state !== 'open' && this.state !== 'streaming') return;
    this.state = 'aborted';
    this.stopStreaming?.();
    this.abort.abort();
    if (!this.bodyDone) this.body.destroy(new ClientGoneError());
    this.closed();
  }

  private closed(): void {
    clearTimeout(this.idleTimer);
    for (const listener of this.closeListeners.splice(0)) listener();
  }

  private headerLines(extra: Readonly<Record<string, string>> | undefined): [string, string][] {
    const all: Record<string, string> = { ...this.pending };
    for (const [k, v] of Object.entries(extra ?? {})) all[k.toLowerCase()] = v;
    return Object.entries(all).filter(([k]) => !SERVER_OWNED.has(k));
  }

  private send(method: string, status: number, extra: Readonly<Record<string, string>> | undefined, body: string | Uint8Array | undefined): void {
    if (this.state === 'aborted' || this.state === 'destroyed') return;
    if (this.state !== 'open') throw new IllegalStateError(`response already ${this.state}`);
    this.state = 'sent';
    this.status = status;
    const close = !this.bodyDone || this.options.closing();
    const bodiless = method === 'HEAD' || status === 204 || status === 304;
    const lines = this.headerLines(extra);
    this.res.cork(() => {
      this.res.writeStatus(`${status} ${STATUS_CODES[status] ?? 'Unknown'}`);
      for (const [k, v] of lines) this.res.writeHeader(k, v);
      // HEAD: uWS v20.30 would send the body; without a reported length the connection stays reusable.
      if (bodiless) this.res.endWithoutBody(undefined, close);
      else this.res.end(body ?? '', close);
    });
    this.finishBody();
    this.closed();
  }

  private begin(status: number, extra: Readonly<Record<string, string>>): ResponseWriter {
    const dead: ResponseWriter = { write: () => undefined, end: () => undefined, finished: true };
    if (this.state === 'aborted' || this.state === 'destroyed') return dead;
    if (this.state !== 'open') throw new IllegalStateError(`response already ${this.state}`);
    this.state = 'streaming';
    this.status = status;
    const lines = this.headerLines(extra);
    this.res.cork(() => {
      this.res.writeStatus(`${status} ${STATUS_CODES[status] ?? 'Unknown'}`);
      for (const [k, v] of lines) this.res.writeHeader(k, v);
      // The connection is not reused after a piecewise body: uWS v20.30 leaves such a socket in a state where the
      // next request on it can hang unread (seen under load after OpenAI stream=true answers). Said up front, so the
      // client never puts the socket back in its pool.
      this.res.writeHeader('connection', 'close');
      this.res.write(''); // the status line and headers leave now, not with the first piece
    });
    const live = () => this.state === 'streaming';
    return {
      write: (data) => {
        if (live()) this.res.cork(() => void this.res.write(data));
      },
      end: () => {
        if (!live()) return;
        this.state = 'sent';
        this.res.cork(() => this.res.end());
        this.finishBody();
        this.closed();
      },
      get finished() {
        return !live();
      },
    };
  }

  private stream(method: string, status: number, extra: Readonly<Record<string, string>>, body: Readable, length: number): Promise<void> {
    if (this.state === 'aborted' || this.state === 'destroyed') {
      body.destroy();
      return Promise.resolve();
    }
    if (this.state !== 'open') throw new IllegalStateError(`response already ${this.state}`);
    this.status = status;
    const lines = this.headerLines(extra);
    if (method === 'HEAD') {
      body.destroy();
      this.send(method, status, { ...extra, 'content-length': String(length) }, undefined);
      return Promise.resolve();
    }
    this.state = 'streaming';
    this.res.cork(() => {
      this.res.writeStatus(`${status} ${STATUS_CODES[status] ?? 'Unknown'}`);
      for (const [k, v] of lines) this.res.writeHeader(k, v);
    });
    return new Promise<void>((resolve) => {
      let over = false;
      /** Part of a chunk waits for the socket (onWritable); the body is paused meanwhile. */
      let waiting = false;
      let ended = false;
      const finish = (outcome: 'sent' | 'cut'): void => {
        if (over) return;
        over = true;
        body.destroy();
        if (this.state === 'streaming') {
          this.state = outcome === 'sent' ? 'sent' : 'destroyed';
          if (outcome === 'cut') this.res.close();
          this.finishBody();
          this.closed();
        }
        resolve();
      };
      this.stopStreaming = () => finish('cut');
      /** Offers a chunk; false when the socket took only part of it (the rest waits for onWritable). */
      const offer = (chunk: Buffer): boolean => {
        const startOffset = this.res.getWriteOffset();
        let ok = false;
        let done = false;
        this.res.cork(() => {
          [ok, done] = this.res.tryEnd(chunk, length);
        });
        if (done) {
          finish('sent');
          return true;
        }
        if (ok) return true;
        waiting = true;
        body.pause();
        this.res.onWritable((offset) => {
          const [ok2, done2] = this.res.tryEnd(chunk.subarray(offset - startOffset), length);
          if (done2) finish('sent');
          else if (ok2) {
            waiting = false;
            if (ended) finish('cut');
            else body.resume();
          }
          return ok2;
        });
        return false;
      };
      body.on('data', (chunk: Buffer) => {
        if (!over) offer(chunk);
      });
      // A body that ends short of `length` (or fails) cannot be answered any more: the connection is cut.
      body.on('end', () => {
        ended = true;
        if (length === 0 && !over) offer(Buffer.alloc(0));
        if (!over && !waiting) finish('cut');
      });
      body.on('error', () => finish('cut'));
    });
  }

  /** A body nobody will read any more (the response is out): readers see it end instead of waiting forever. */
  private finishBody(): void {
    if (!this.bodyDone) this.body.destroy(new ClientGoneError('the response was sent before the request body was read'));
  }

  private destroy(): void {
    if (this.state !== 'open') {
      return;
    }
    this.state = 'destroyed';
    this.abort.abort();
    this.res.close();
    this.finishBody();
    this.closed();
  }

  private upgrade(headers: Readonly<Record<string, string>>, target: UpgradeTarget, handler: SocketHandler): void {
    if (this.state === 'aborted' || this.state === 'destroyed') return;
    if (this.state !== 'open') throw new IllegalStateError(`response already ${this.state}`);
    this.state = 'upgraded';
    this.status = 101;
    const lines = this.headerLines(undefined);
    const slot: SocketSlot = { handler };
    this.res.cork(() => {
      // Custom headers on the 101 need the status line written first (uWS would otherwise write 200 OK).
      this.res.writeStatus('101 Switching Protocols');
      for (const [k, v] of lines) this.res.writeHeader(k, v);
      this.res.upgrade(slot, headers['sec-websocket-key'] ?? '', handler.protocol ?? '', headers['sec-websocket-extensions'] ?? '', target.context);
    });
    this.closed();
  }
}
