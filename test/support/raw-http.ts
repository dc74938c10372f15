/**
 * One raw HTTP/1.1 exchange over a plain socket, for requests no HTTP client would send (malformed framing,
 * repeated headers, unknown methods) and for watching what the server does with the connection afterwards.
 */
import { connect } from 'node:net';

export interface RawAnswer {
  /** Everything the server wrote (latin1), until it closed or the wait ended. */
  readonly text: string;
  /** True when the server closed the connection within the wait. */
  readonly closed: boolean;
  readonly ms: number;
}

/**
 * Sends `request` to `base`'s host and port and collects the answer for at most `waitMs`. `after` may keep writing
 * (its `write` answers undefined once the socket is gone, and the writer should stop then) and may look at what the
 * server has written so far.
 */
export function rawExchange(
  base: string, request: string | Buffer, waitMs = 5000,
  after?: (write: (b: Buffer) => boolean | undefined, received: () => string) => void,
): Promise<RawAnswer> {
  const { port, hostname } = new URL(base);
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(Number(port), hostname, () => {
      socket.write(request);
      after?.((b) => (socket.destroyed ? undefined : socket.write(b)), () => text);
    });
    let text = '';
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('close', () => finish(true));
    socket.on('error', () => undefined);
  });
}

/** The status code of the first response in a raw answer (a `100 Continue` interim answer skipped), or undefined. */
export function rawStatus(text: string): number | undefined {
  const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
  return statuses.find((s) => s !== 100);
}
