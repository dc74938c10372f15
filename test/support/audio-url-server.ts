/**
 * A loopback HTTP server that serves audio files the way object stores and CDNs do (`GET /<name>` with a
 * Content-Type), and `GET /to?u=<url>` answering 302 to `u`: what URL ingestion tests point the gateway at.
 */
import { createReadStream } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';

export interface AudioUrlServer {
  /** http://127.0.0.1:<port> */
  readonly base: string;
  /** The URL a file is served at. */
  urlOf(file: string): string;
  close(): Promise<void>;
}

export async function startAudioUrlServer(files: readonly string[]): Promise<AudioUrlServer> {
  const byName = new Map(files.map((f) => [basename(f), f]));
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const file = byName.get(decodeURIComponent(url.pathname.slice(1)));
    if (url.pathname === '/to') res.writeHead(302, { location: url.searchParams.get('u') ?? '/' }).end();
    else if (file) {
      res.writeHead(200, { 'content-type': 'audio/wav' });
      createReadStream(file).pipe(res);
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    urlOf: (file) => `${base}/${encodeURIComponent(basename(file))}`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
