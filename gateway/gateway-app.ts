/**
 * The gateway assembled from its ports: routes, auth, health endpoints and the node:http server. `gateway/main.ts`
 * builds the real adapters (Kafka publisher, ClickHouse reader, artifact store) and calls createGatewayApp.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import type { Registry } from 'prom-client';
import { systemClock, type Clock } from '../core/clock.js';
import type { DalstonConfig } from '../core/config.js';
import { ConfigError } from '../core/errors.js';
import { handleHealthEndpoints, type ReadinessCheck } from '../core/health-server.js';
import type { Logger } from '../core/logger.js';
import { gatewayMetrics } from '../core/metrics.js';
import { createApiKeyAuthenticator } from './auth.js';
import { Router, createRequestListener, type RequestContext, type RouteSpec } from './http-server.js';
import type { ArtifactStore, JobEventPublisher, JobReader, TraceReader } from './ports.js';
import { modelRoutes } from './models.js';
import { transcriptionRoutes, type OpenAiSyncResponder, type TranscriptRenderers } from './transcriptions.js';

export interface GatewayDeps {
  readonly config: Pick<DalstonConfig, 'apiKey' | 'uploadMaxBytes'>;
  readonly log: Logger;
  /** The process registry; the gateway registers its request metrics here and serves it on /metrics. */
  readonly registry: Registry;
  readonly publisher: JobEventPublisher;
  readonly reader: JobReader;
  readonly store: ArtifactStore;
  /** Named dependency checks for /ready (e.g. kafka, clickhouse); each throws when its dependency is down. */
  readonly readinessChecks: Readonly<Record<string, ReadinessCheck>>;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Directory uploads are spooled to before they move to the artifact store. @default os.tmpdir() */
  readonly uploadTmpDir?: string;
  /** txt/srt/vtt export; without them those formats answer 501. */
  readonly renderers?: TranscriptRenderers;
  /** Data directory whose installed models `GET /v1/models` reports. @default no /v1/models route */
  readonly modelsHomeDir?: string;
  /** OpenAI synchronous mode; without it OpenAI model names answer 501. */
  readonly openAi?: OpenAiSyncResponder;
  /** The ClickHouse span store behind `GET …/{id}/trace`; without it that route answers 404 saying the store is off. */
  readonly traces?: TraceReader;
  /**
   * Longest time to receive one whole request, upload included (node's default of 300 s would cut a 1 GB upload
   * on a slow link). Headers must still arrive within node's headersTimeout (60 s). @default 1_800_000
   */
  readonly requestTimeoutMs?: number;
}

export interface GatewayApp {
  readonly server: Server;
  /** Starts listening; resolves with the bound port (pass 0 for an ephemeral one). @default host 0.0.0.0 */
  listen(port: number, host?: string): Promise<number>;
  /**
   * Stops accepting connections and closes idle keep-alive ones; in-flight requests get `graceMs` to finish, then
   * their connections are cut. @default graceMs 10_000
   */
  close(graceMs?: number): Promise<void>;
}

function healthRoutes(deps: GatewayDeps): RouteSpec[] {
  const options = { registry: deps.registry, checks: deps.readinessChecks };
  const handler = async (ctx: RequestContext) => {
    const handled = await handleHealthEndpoints(ctx.req, ctx.res, options);
    if (!handled) throw new Error(`health endpoint ${ctx.route} not handled`);
  };
  return (['/health', '/ready', '/metrics'] as const).map((path) => ({ method: 'GET', path, auth: 'none', traced: false, handler }));
}

export function createGatewayApp(deps: GatewayDeps): GatewayApp {
  const apiKey = deps.config.apiKey;
  if (apiKey === undefined || apiKey === '') throw new ConfigError('DALSTON_API_KEY must be set for the gateway');
  const router = new Router();
  for (const route of healthRoutes(deps)) router.add(route);
  const routes = transcriptionRoutes({
    publisher: deps.publisher,
    reader: deps.reader,
    store: deps.store,
    clock: deps.clock ?? systemClock,
    uploadMaxBytes: deps.config.uploadMaxBytes,
    tmpDir: deps.uploadTmpDir ?? tmpdir(),
    renderers: deps.renderers,
    openAi: deps.openAi,
    traces: deps.traces,
  });
  for (const route of routes) router.add(route);
  if (deps.modelsHomeDir !== undefined) for (const route of modelRoutes(deps.modelsHomeDir)) router.add(route);

  const listener = createRequestListener({
    router, authenticator: createApiKeyAuthenticator(apiKey), log: deps.log, metrics: gatewayMetrics(deps.registry),
  });
  const server = createServer({ requestTimeout: deps.requestTimeoutMs ?? 1_800_000 }, listener);

  return {
    server,
    listen(port, host = '0.0.0.0') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    close(graceMs = 10_000) {
      return new Promise((resolve, reject) => {
        if (!server.listening) {
          resolve();
          return;
        }
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
        server.close((err) => {
          clearTimeout(force);
          if (err) reject(err);
          else resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
