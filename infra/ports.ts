/** Port helpers for starting services on loopback. */
import { createServer } from 'node:net';

/** Asks the kernel for a free loopback port. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True when something already listens on host:port (so a server we start there would fail). */
export function isPortTaken(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(true));
    srv.listen(port, host, () => srv.close(() => resolve(false)));
  });
}

/**
 * A port p with p+1 free too, for servers that take two (Kafka broker + controller, ClickHouse HTTP + native).
 * Chosen below Linux's ephemeral range (32768+), so client connections and freePort() callers running at the
 * same time cannot take p+1 between this check and the server's start.
 */
export async function freePortPair(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = 20000 + 2 * Math.floor(Math.random() * 6000);
    if (!(await isPortTaken(p, host)) && !(await isPortTaken(p + 1, host))) return p;
  }
  throw new Error('no free pair of loopback ports found between 20000 and 32000');
}

/** Two adjacent free ports from freePortPair, for a server configured with two listening ports. */
export async function twoFreePorts(host = '127.0.0.1'): Promise<[number, number]> {
  const p = await freePortPair(host);
  return [p, p + 1];
}
