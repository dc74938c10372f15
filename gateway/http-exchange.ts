/**
 * One HTTP request and its response as the gateway's handlers see them, whatever server carries them (today
 * uWebSockets.js, see uws-exchange.ts). Handlers and tests depend on these two interfaces only, never on a
 * server's own request/response objects.
 */
import type { Readable } from 'node:stream';
import type { SocketHandler } from './websocket.js';

export interface HttpRequest {
  /** The method as sent, e.g. `GET`. */
  readonly method: string;
  /** Path and query as sent (still percent-encoded), e.g. `/v1/audio/transcriptions/job_1?x=1`. */
  readonly url: string;
  /**
   * Header names lower-case. A repeated header is joined with ", ", except the single-valued ones (authorization,
   * content-type, content-length, host, …) where the first wins, as node:http did.
   */
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** Single-valued headers the request sent more than once (their first value is in `headers`). */
  readonly repeatedHeaders?: readonly string[];
  /** The peer's address (for the audit trail of refused requests). */
  readonly remoteAddress?: string;
  /**
   * The body as bytes. Reading it pulls from the socket: a body nobody reads stops the socket from being read
   * (backpressure), never piles up in memory. It errors when the client goes away mid-body.
   */
  readonly body: Readable;
  /** True once the whole body has arrived. */
  readonly bodyComplete: boolean;
  /** Aborted when the client goes away before the response was sent. */
  readonly signal: AbortSignal;
}

/** The body of a response begun with `HttpResponse.begin`. */
export interface ResponseWriter {
  /** Sends a piece of the body now; dropped once the client has gone. */
  write(data: string): void;
  /** Ends the body; the exchange is over. */
  end(): void;
  /** True once ended or the client left. */
  readonly finished: boolean;
}

export interface HttpResponse {
  /** Sets a header of the response to come; a later `send` header of the same name wins. */
  setHeader(name: string, value: string): void;
  /** True once the status line went out (a response was sent or the connection switched to WebSocket). */
  readonly headersSent: boolean;
  /** The status sent (101 after a WebSocket upgrade); undefined before. */
  readonly statusCode: number | undefined;
  /**
   * Sends status, headers and the whole body, ending the response. A no-op once the client has gone away;
   * throws when a response was already sent. Content-Length is computed, never taken from `headers`.
   */
  send(status: number, headers?: Readonly<Record<string, string>>, body?: string | Uint8Array): void;
  /**
   * Sends status and headers, then `body` as it is read, exactly `length` bytes (Content-Length), pausing the body
   * while the socket's send buffer is full. Resolves once the response went out, the client went away (the body
   * is destroyed), or the body failed or came short (the connection is cut). A HEAD request gets the headers only.
   */
  stream(status: number, headers: Readonly<Record<string, string>>, body: Readable, length: number): Promise<void>;
  /**
   * Starts a response whose body is written piece by piece (chunked), e.g. server-sent events: status and headers
   * go out now. Writes after the client left are dropped; `onClose` listeners run when it ends or the client leaves.
   */
  begin(status: number, headers: Readonly<Record<string, string>>): ResponseWriter;
  /** Cuts the connection without (further) answer: for failures after the status line went out. */
  destroy(): void;
  /** Runs once when the exchange is over: the response went out, the connection was cut, or the client left. */
  onClose(listener: () => void): void;
  /**
   * Present only on a WebSocket upgrade request: switches the connection to WebSocket with `handler` receiving its
   * events; the headers set so far go out on the 101 response.
   */
  readonly upgrade: ((handler: SocketHandler) => void) | undefined;
}

/** Sends a JSON body; headers set earlier with setHeader (X-Request-ID, X-Trace-ID) are kept. */
export function sendJson(res: HttpResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  res.send(status, { 'content-type': 'application/json', ...headers }, JSON.stringify(body));
}

/** Sends a text body; headers set earlier with setHeader are kept. */
export function sendText(res: HttpResponse, status: number, body: string, contentType: string, headers: Readonly<Record<string, string>> = {}): void {
  res.send(status, { ...headers, 'content-type': contentType }, body);
}
