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

export interface FloodAnswer extends RawAnswer {
  /** Body bytes the socket accepted before the server stopped it. */
  readonly written: number;
}

/**
 * POSTs a `bytes`-long multipart upload without credentials and sends the body as fast as the socket takes it, in
 * 1 MiB chunks, until the server answers or closes. With `expectContinue` it behaves like curl: it sends
 * `Expect: 100-continue`, waits for `100 Continue` (at most 1 s) and sends nothing if the final answer came instead.
 */
export function floodUpload(base: string, path: string, bytes: number, expectContinue: boolean, waitMs = 10_000): Promise<FloodAnswer> {
  let written = 0;
  const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n`
    + `${expectContinue ? 'Expect: 100-continue\r\n' : ''}Content-Length: ${bytes}\r\n\r\n`;
  return rawExchange(base, head, waitMs, (write, received) => {
    const chunk = Buffer.alloc(1 << 20);
    const pump = () => {
      for (let i = 0; i < 16 && written < bytes; i++) {
        const ok = write(chunk);
        if (ok === undefined) return;
        if (ok) written += chunk.length;
      }
      // Like curl, stop sending once a final answer has arrived.
      if (written < bytes && rawStatus(received()) === undefined) setTimeout(pump, 2);
    };
    if (!expectContinue) {
      pump();
      return;
    }
    const started = Date.now();
    const wait = () => {
      if (rawStatus(received()) !== undefined) return;
      if (received().includes(' 100 Continue') || Date.now() - started > 1000) pump();
      else setTimeout(wait, 2);
    };
    wait();
  }).then((r) => ({ ...r, written }));
}
