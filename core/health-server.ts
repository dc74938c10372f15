/**
 * The liveness/readiness/metrics endpoints every long-running process exposes. /health answers while the event
 * loop runs; /ready runs the process's dependency checks (Kafka, ClickHouse) and answers 503 naming the failing one.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

export type ReadinessCheck = () => Promise<void>;

export interface HealthEndpointsOptions {
  readonly registry: Registry;
  /** Named dependency checks; each throws when its dependency is unreachable. */
  readonly checks: Readonly<Record<string, ReadinessCheck>>;
  /** @default 2000 */
  readonly checkTimeoutMs?: number;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers });
  res.end(payload);
}

async function withTimeout(check: ReadinessCheck, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** Handles /health, /ready and /metrics; returns false for any other path so a caller can route it. */
export async function handleHealthEndpoints(req: IncomingMessage, res: ServerResponse, options: HealthEndpointsOptions): Promise<boolean> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET') return false;
  if (path === '/health') {
    sendJson(res, 200, { status: 'ok' });
    return true;
  }
  if (path === '/ready') {
    const results = await Promise.all(
      Object.entries(options.checks).map(async ([name, check]) => {
        try {
          await withTimeout(check, options.checkTimeoutMs ?? 2000);
          return [name, 'ok'] as const;
        } catch (err) {
          return [name, err instanceof Error ? err.message : String(err)] as const;
        }
      }),
    );
    const ready = results.every(([, r]) => r === 'ok');
    sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', checks: Object.fromEntries(results) });
    return true;
  }
  if (path === '/metrics') {
    const body = await options.registry.metrics();
    res.writeHead(200, { 'content-type': options.registry.contentType });
    res.end(body);
    return true;
  }
  return false;
}

/** A standalone server for processes whose only HTTP surface is health and metrics (actor host, engines). */
export function startHealthServer(port: number, options: HealthEndpointsOptions, host = '127.0.0.1'): Promise<Server> {
  const server = createServer((req, res) => {
    handleHealthEndpoints(req, res, options)
      .then((handled) => {
        if (!handled) sendJson(res, 404, { error: { code: 'not_found', message: `no route for ${req.method} ${req.url}` } });
      })
      .catch((err: unknown) => sendJson(res, 500, { error: { code: 'internal_error', message: String(err) } }));
  });
  return new Promise((resolveStart, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolveStart(server);
    });
  });
}
