/**
 * The gateway's WebSocket seam, independent of the server library: a route accepts an upgrade (after
 * authentication and admission have run on the HTTP request) by returning a SocketHandler, which then receives the
 * socket's events and may send on it.
 */

/** What `send` did with a message: written out, queued behind earlier ones (backpressure), or dropped (queue full). */
export type SendResult = 'sent' | 'buffered' | 'dropped';

/** One accepted WebSocket connection. */
export interface GatewaySocket {
  /** Sends a text (string) or binary (bytes) message. After close it does nothing and answers 'dropped'. */
  send(data: string | Uint8Array): SendResult;
  /** Closes with a close frame carrying `code` and `reason` (at most 123 bytes of UTF-8). @default code 1000 */
  close(code?: number, reason?: string): void;
  /** Bytes queued for sending and not yet written to the socket; watch it with `drain` to pace a producer. */
  readonly bufferedAmount: number;
  /** True once the socket closed (either side); sending then does nothing. */
  readonly closed: boolean;
}

/**
 * The events of one accepted socket. Callbacks run synchronously on the server's I/O; a message's bytes are a
 * copy the handler may keep.
 */
export interface SocketHandler {
  /** The subprotocol to answer in Sec-WebSocket-Protocol: one the client offered. @default none */
  readonly protocol?: string;
  open?(socket: GatewaySocket): void;
  message(socket: GatewaySocket, data: Buffer, isBinary: boolean): void;
  /** The send queue drained below the server's backpressure limit. */
  drain?(socket: GatewaySocket): void;
  /** The socket closed; `reason` is the peer's close reason, or '' when the connection just dropped. */
  close?(socket: GatewaySocket, code: number, reason: string): void;
}

/** Server limits of WebSocket connections. */
export interface WebSocketLimits {
  /** Largest message accepted; a bigger one closes the connection. @default 1_048_576 */
  readonly maxPayloadBytes?: number;
  /** Seconds without any frame before the connection is closed (the server pings before that). @default 120 */
  readonly idleTimeoutSeconds?: number;
  /** Largest send queue per socket; beyond it `send` answers 'dropped'. @default 1_048_576 */
  readonly maxBackpressureBytes?: number;
}
