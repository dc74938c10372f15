/**
 * The liveness/readiness/metrics endpoints every long-running process exposes. /health answers while the event
 * loop runs; /ready runs the process's dependency checks (Kafka, ClickHouse) and answers 503 naming the failing one.
 * `healthAnswer` computes the answer without knowing the server, so the gateway (uWebSockets.js) and the
 * standalone node:http server below write the same bytes.
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

/** One answer of a health endpoint, ready to be written by any HTTP server. */
export interface HealthAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

export const HEALTH_PATHS = ['/health', '/ready', '/metrics'] as const;

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

const json = (status: number, body: unknown): HealthAnswer => ({ status, contentType: 'application/json', body: JSON.stringify(body) });

/** The answer to GET /health, /ready or /metrics; undefined for any other method or path so a caller can route it. */
export async function healthAnswer(method: string, path: string, options: HealthEndpointsOptions): Promise<HealthAnswer | undefined> {
  if (method !== 'GET') return undefined;
  // The pid lets a launcher confirm it reached its own child and not another process holding the same port.
  if (path === '/health') return json(200, { status: 'ok', pid: process.pid });
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
    return json(ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', checks: Object.fromEntries(results) });
  }
  if (path === '/metrics') return { status: 200, contentType: options.registry.contentType, body: await options.registry.metrics() };
  return undefined;
}

/** Handles /health, /ready and /metrics on node:http; returns false for any other path so a caller can route it. */
export async function handleHealthEndpoints(req: IncomingMessage, res: ServerResponse, options: HealthEndpointsOptions): Promise<boolean> {
  const answer = await healthAnswer(req.method ?? 'GET', (req.url ?? '/').split('?')[0] ?? '/', options);
  if (!answer) return false;
  res.writeHead(answer.status, { 'content-type': answer.contentType, 'content-length': Buffer.byteLength(answer.body) });
  res.end(answer.body);
  return true;
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

/**
 * The readiness checks of a process that uses Kafka and ClickHouse: Kafka's cluster answers, ClickHouse answers /ping.
 * Typed by shape, so core/ depends on neither client.
 */
export function kafkaAndClickHouseChecks(
  kafka: { readonly check: ReadinessCheck }, clickhouse: { ping(): Promise<boolean> },
): Record<'kafka' | 'clickhouse', ReadinessCheck> {
  return {
    kafka: kafka.check,
    clickhouse: async () => {
      if (!(await clickhouse.ping())) throw new Error('ClickHouse did not answer /ping');
    },
  };
}
