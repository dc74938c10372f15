/**
 * The gateway's listener on uWebSockets.js: HTTP and WebSocket on one port (optionally TLS), every request handed
 * to one server-agnostic handler as an HttpRequest/HttpResponse pair. Upgrade requests go through the same handler,
 * whose WebSocket routes complete the upgrade after authentication and admission; plain requests fall through to
 * the HTTP route.
 *
 * close(graceMs) stops accepting at once, lets in-flight requests and open WebSockets finish within the grace
 * period, then cuts what is left (WebSockets get close code 1001) and closes idle keep-alive connections.
 */
import uWS, { type TemplatedApp, type WebSocket, type us_listen_socket } from '@trufflesuite/uws-js-unofficial';
import type { Logger } from '../core/logger.js';
import type { HttpRequest, HttpResponse } from './http-exchange.js';
import { UwsExchange, type SocketSlot } from './uws-exchange.js';
import type { GatewaySocket, SendResult, SocketHandler, WebSocketLimits } from './websocket.js';

/** uSockets' listen option that withholds SO_REUSEPORT; the bundled typings declare neither it nor the 4-argument listen. */
const LIBUS_LISTEN_EXCLUSIVE_PORT = (uWS as unknown as { readonly LIBUS_LISTEN_EXCLUSIVE_PORT?: number }).LIBUS_LISTEN_EXCLUSIVE_PORT ?? 1;
interface ExclusiveListen {
  listen(host: string, port: number, options: number, cb: (socket: us_listen_socket | false) => void): unknown;
}

export type RequestHandler = (req: HttpRequest, res: HttpResponse) => void;

export interface TlsFiles {
  /** PEM certificate chain. */
  readonly certFile: string;
  /** PEM private key. */
  readonly keyFile: string;
}

export interface UwsServerOptions {
  readonly log: Logger;
  /** Serve HTTPS/WSS instead of HTTP/WS. @default plain */
  readonly tls?: TlsFiles | undefined;
  readonly websocket?: WebSocketLimits | undefined;
  /** Request body bytes buffered per request before its socket is paused. @default 65_536 */
  readonly bodyHighWaterMark?: number;
  /** A request body that stalls this long is abandoned (408). @default 60_000 (DALSTON_BODY_IDLE_TIMEOUT_SECONDS) */
  readonly bodyIdleMs?: number;
}

export interface HttpServer {
  readonly listening: boolean;
  /** Resolves with the bound port (pass 0 for an ephemeral one). */
  listen(port: number, host: string): Promise<number>;
  close(graceMs: number): Promise<void>;
}

/** `close()` exists on uWS v20.30 apps (it closes every socket) but is missing from the bundled typings. */
type ClosableApp = TemplatedApp & { close(): void };

const WS_GOING_AWAY = 1001;
const WS_INTERNAL_ERROR = 1011;

/** A uWS WebSocket behind the GatewaySocket interface; unusable (and harmless) once closed. */
class UwsSocket implements GatewaySocket {
  private isClosed = false;
  private isOpened = false;
  constructor(private readonly ws: WebSocket<SocketSlot>) {}

  get closed(): boolean {
    return this.isClosed;
  }

  get bufferedAmount(): number {
    return this.isClosed ? 0 : this.ws.getBufferedAmount();
  }

  send(data: string | Uint8Array): SendResult {
    if (this.isClosed) return 'dropped';
    let result = 2;
    // Sends from timers and promises are corked so a burst leaves in one syscall (one TLS record).
    this.ws.cork(() => {
      result = this.ws.send(data, typeof data !== 'string');
    });
    return result === 1 ? 'sent' : result === 0 ? 'buffered' : 'dropped';
  }

  close(code = 1000, reason = ''): void {
    if (this.isClosed) return;
    this.ws.end(code, reason); // runs the close event synchronously, which marks this socket closed
  }

  markClosed(): void {
    this.isClosed = true;
  }

  /** True the first time only: the handler's open is due. */
  markOpened(): boolean {
    if (this.isOpened) return false;
    this.isOpened = true;
    return true;
  }
}

export function createUwsServer(onRequest: RequestHandler, options: UwsServerOptions): HttpServer {
  const app: ClosableApp = (options.tls
    ? uWS.SSLApp({ cert_file_name: options.tls.certFile, key_file_name: options.tls.keyFile })
    : uWS.App()) as ClosableApp;
  const { log } = options;
  const inflight = new Set<UwsExchange>();
  const sockets = new Map<WebSocket<SocketSlot>, UwsSocket>();
  let listenSocket: us_listen_socket | undefined;
  let closing = false;
  let idle: (() => void) | undefined;
  const exchangeOptions = { bodyHighWaterMark: options.bodyHighWaterMark ?? 65_536, closing: () => closing, bodyIdleMs: options.bodyIdleMs ?? 60_000 };

  let closed: Promise<void> | undefined;

  const drain = async (graceMs: number): Promise<void> => {
    if (listenSocket !== undefined) uWS.us_listen_socket_close(listenSocket);
    listenSocket = undefined;
    closing = true;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const exchange of [...inflight]) exchange.response.destroy();
        for (const socket of [...sockets.values()]) socket.close(WS_GOING_AWAY, 'server shutting down');
        resolve();
      }, graceMs);
      idle = () => {
        clearTimeout(timer);
        resolve();
      };
      settle();
    });
    idle = undefined;
    app.close(); // idle keep-alive connections
  };

  const settle = () => {
    if (idle && inflight.size === 0 && sockets.size === 0) idle();
  };

  const serve = (exchange: UwsExchange) => {
    inflight.add(exchange);
    exchange.response.onClose(() => {
      inflight.delete(exchange);
      settle();
    });
    try {
      onRequest(exchange.request, exchange.response);
    } catch (err) {
      // The handler promises never to throw; if it does, the client still gets an answer and the process lives.
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'request handler threw');
      if (!exchange.response.headersSent) exchange.response.send(500, { 'content-type': 'application/json' }, '{"error":{"code":"internal_error","message":"internal error"}}');
    }
  };

  /** Runs a socket handler callback; a throwing handler closes its socket (1011) instead of the process. */
  const guarded = (socket: UwsSocket, event: string, fn: () => void) => {
    try {
      fn();
    } catch (err) {
      log.error({ event, err: err instanceof Error ? err.message : String(err) }, 'websocket handler threw');
      if (event !== 'close') socket.close(WS_INTERNAL_ERROR, 'internal error');
    }
  };
  const handlerOf = (ws: WebSocket<SocketSlot>): SocketHandler => ws.getUserData().handler;
  /** Runs the handler's open once, before the socket's first other event (see `open` below). */
  const opened = (ws: WebSocket<SocketSlot>, socket: UwsSocket): void => {
    if (!socket.markOpened()) return;
    const handler = handlerOf(ws);
    guarded(socket, 'open', () => handler.open?.(socket));
  };

  const limits = options.websocket ?? {};
  app.ws<SocketSlot>('/*', {
    maxPayloadLength: limits.maxPayloadBytes ?? 1_048_576,
    idleTimeout: limits.idleTimeoutSeconds ?? 120,
    maxBackpressure: limits.maxBackpressureBytes ?? 1_048_576,
    sendPingsAutomatically: true,
    compression: uWS.DISABLED,
    upgrade: (res, req, context) => serve(new UwsExchange(res, req, exchangeOptions, { context })),
    open: (ws) => {
      const socket = new UwsSocket(ws);
      sockets.set(ws, socket);
      // uWS v20.30 runs this inside the upgrade's res.cork(), and a send made here is flushed by that cork's
      // uncork on the HTTP response's stale socket: now and then (about one upgrade in 7,000 here, TLS) the new
      // WebSocket is cut (1006) right after its first message. Fixed upstream in uWebSockets v20.79 (#1929), which
      // no Node 20 build on npm carries; so the handler's open runs after the cork, and before any other event.
      setImmediate(() => opened(ws, socket));
    },
    message: (ws, message, isBinary) => {
      const socket = sockets.get(ws);
      if (!socket) return;
      opened(ws, socket);
      const data = Buffer.from(new Uint8Array(message)); // neutered when this callback returns
      guarded(socket, 'message', () => handlerOf(ws).message(socket, data, isBinary));
    },
    drain: (ws) => {
      const socket = sockets.get(ws);
      const handler = handlerOf(ws);
      if (!socket) return;
      opened(ws, socket);
      if (handler.drain) guarded(socket, 'drain', () => handler.drain?.(socket));
    },
    close: (ws, code, message) => {
      const socket = sockets.get(ws);
      if (!socket) return;
      const reason = Buffer.from(new Uint8Array(message)).toString('utf8');
      socket.markClosed();
      opened(ws, socket);
      sockets.delete(ws);
      const handler = handlerOf(ws);
      guarded(socket, 'close', () => handler.close?.(socket, code, reason));
      settle();
    },
  });
  app.any('/*', (res, req) => serve(new UwsExchange(res, req, exchangeOptions)));

  return {
    get listening() {
      return listenSocket !== undefined;
    },
    listen(port, host) {
      return new Promise((resolve, reject) => {
        // Exclusive: uSockets otherwise sets SO_REUSEPORT for a fixed port, and a second gateway started on the same
        // port would silently take half the connections instead of failing with "address in use".
        (app as unknown as ExclusiveListen).listen(host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, (socket) => {
          if (socket === false) {
            reject(new Error(`could not listen on ${host}:${port} (address in use or not available)`));
            return;
          }
          listenSocket = socket;
          resolve(uWS.us_socket_local_port(socket));
        });
      });
    },
    close(graceMs) {
      // A second call while draining waits for the same drain instead of resolving early.
      if (closed === undefined) {
        if (listenSocket === undefined) return Promise.resolve();
        closed = drain(graceMs);
      }
      return closed;
    },
  };
}
