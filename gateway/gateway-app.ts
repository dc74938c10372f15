/**
 * The gateway assembled from its ports: routes, auth, health endpoints and the uWebSockets.js server (HTTP and
 * WebSocket on one port, optionally TLS). `gateway/main.ts` builds the real adapters (Kafka publisher, ClickHouse
 * reader, artifact store) and calls createGatewayApp.
 */
import type { Registry } from 'prom-client';
import { systemClock, type Clock } from '../core/clock.js';
import type { DalstonConfig } from '../core/config.js';
import { ConfigError } from '../core/errors.js';
import { HEALTH_PATHS, healthAnswer, type ReadinessCheck } from '../core/health-server.js';
import type { Logger } from '../core/logger.js';
import { gatewayMetrics } from '../core/metrics.js';
import { SCHEMA_VERSION } from '../streams/index.js';
import { createApiKeyAuthenticator } from './auth.js';
import { Router, createRequestHandler, type AccessDenial, type RequestContext, type RouteSpec } from './http-server.js';
import { newEventId } from './ids.js';
import { keyRoutes } from './keys/key-routes.js';
import { webhookRoutes, type WebhookRoutesDeps } from './webhooks/webhook-routes.js';
import { auditRoutes, type AuditReader } from './audit-routes.js';
import type { KeyStore } from './keys/key-store.js';
import type { RequestLimiter } from './limits/request-limiter.js';
import type { TenantAdmission } from './limits/tenant-admission.js';
import { accessOf, type RouteAccess } from './route-access.js';
import { deepgramRoutes } from './deepgram-listen.js';
import { elevenLabsRoutes } from './elevenlabs-speech-to-text.js';
import type { ArtifactStore, JobEventPublisher, JobOutcomeWaiter, JobReader, TraceReader } from './ports.js';
import { ModelInventory, checkedAliases, modelOfEngine, modelRoutes } from './models.js';
import { realtimeSessionRoutes, type SessionEventPublisher, type SessionHistoryReader } from './realtime-sessions.js';
import { DEFAULT_OPENAI_ALIASES, transcriptionRoutes, type OpenAiSyncResponder, type TranscriptRenderers, type TranscriptionsDeps } from './transcriptions.js';
import { UrlAllowList } from '../core/network-policy.js';
import { openApiDocument } from './openapi.js';
import { translationRoutes } from './openai-translation.js';
import { sendJson } from './http-exchange.js';
import { createUwsServer } from './uws-server.js';
import { webSocketRoute, type WebSocketRouteSpec } from './websocket-route.js';
import type { WebSocketLimits } from './websocket.js';
import type { JobAdmission } from './job-admission.js';

export interface GatewayDeps {
  /** TLS is on when both files are given (core/config.ts checks that they come together). */
  readonly config: Pick<DalstonConfig, 'apiKey' | 'uploadMaxBytes'> & Partial<Pick<DalstonConfig, 'tlsCertFile' | 'tlsKeyFile' | 'openAiModelAliases' | 'urlAllowHosts' | 'urlFetchTimeoutSeconds' | 'transcribeEngine' | 'bodyIdleTimeoutSeconds'>>;
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
  /** txt/srt/vtt export; without them those formats answer 501. */
  readonly renderers?: TranscriptRenderers;
  /** Data directory whose installed models `GET /v1/models` reports. @default no /v1/models route */
  readonly modelsHomeDir?: string;
  /** OpenAI synchronous mode; without it OpenAI model names answer 501. */
  readonly openAi?: OpenAiSyncResponder;
  /**
   * ElevenLabs' and Deepgram's batch APIs (`/v1/speech-to-text`, `POST /v1/listen`), answered once the job's outcome
   * arrives on jobs.results; without it those routes are absent.
   */
  readonly vendorBatch?: { readonly outcomes: JobOutcomeWaiter; readonly syncTimeoutMs: number };
  /** The ClickHouse span store behind `GET …/{id}/trace`; without it that route answers 404 saying the store is off. */
  readonly traces?: TraceReader;
  /** Real-time session history (`/v1/realtime/sessions`); without it those routes are absent. */
  readonly realtimeSessions?: { readonly reader: SessionHistoryReader; readonly publisher: SessionEventPublisher };
  /** Limits of WebSocket connections. @default see WebSocketLimits */
  readonly websocket?: WebSocketLimits;
  /** Refuses HTTP submissions while the engines' queues are over their limit (gateway/job-admission.ts). */
  readonly admission?: JobAdmission;
  /** The access table. @default gateway/route-access.ts (tests that add routes of their own extend it) */
  readonly routeAccess?: (method: string, template: string) => RouteAccess;
  /** Per-tenant request limits (gateway/limits/); without it nothing is counted. */
  readonly limiter?: RequestLimiter;
  /** Per-tenant concurrent-job limits; without it none. */
  readonly concurrency?: TenantAdmission;
  /** The audit trail behind `GET /v1/audit`; without it that route is absent. */
  readonly audit?: AuditReader;
  /** A tenant's default retention in days (0: keep). @default keep */
  readonly retentionDefaultDays?: (tenantId: string) => number;
  /** Issued API keys and `/v1/keys`; without it only DALSTON_API_KEY is accepted and `/v1/keys` is absent. */
  readonly keys?: KeyStore;
  /** Tenant webhook endpoints and their delivery logs (`/v1/webhooks`); also enables `webhook_url` on jobs. */
  readonly webhooks?: Omit<WebhookRoutesDeps, 'publisher' | 'clock' | 'bootstrapKey'>;
}

export interface GatewayApp {
  /** True from listen() until close(). */
  readonly listening: boolean;
  /** What the job routes create and read jobs with: other ingresses (Kafka requests) queue jobs through the same. */
  readonly jobDeps: TranscriptionsDeps;
  /** Starts listening; resolves with the bound port (pass 0 for an ephemeral one). @default host 0.0.0.0 */
  listen(port: number, host?: string): Promise<number>;
  /**
   * Stops accepting connections at once; in-flight requests and open WebSockets get `graceMs` to finish, then
   * their connections are cut (WebSockets with close code 1001), and idle keep-alive connections are closed.
   * @default graceMs 10_000
   */
  close(graceMs?: number): Promise<void>;
  /** Registers a WebSocket route on the same port; authentication and `accept` run before the upgrade. */
  ws(spec: WebSocketRouteSpec): void;
  /** Registers an HTTP route (e.g. the real-time token and status routes, assembled outside the app). */
  route(spec: RouteSpec): void;
}

function healthRoutes(deps: GatewayDeps): RouteSpec[] {
  const options = { registry: deps.registry, checks: deps.readinessChecks };
  const handler = async (ctx: RequestContext) => {
    const answer = await healthAnswer(ctx.method === 'HEAD' ? 'GET' : ctx.method, ctx.route, options);
    if (!answer) throw new Error(`health endpoint ${ctx.route} not handled`);
    ctx.res.send(answer.status, { 'content-type': answer.contentType }, answer.body);
  };
  return HEALTH_PATHS.map((path) => ({ method: 'GET', path, auth: 'none', traced: false, handler }));
}

/**
 * `access.denied` in the audit trail: who (key id and tenant when the key was valid but lacked the scope), what
 * (route, status, reason), from where. Best effort: a refusal is answered whether or not its audit row lands.
 */
function auditDenial(deps: GatewayDeps, d: AccessDenial): void {
  const time = (deps.clock ?? systemClock).now();
  deps.publisher.publishAudit({
    v: SCHEMA_VERSION, type: 'analytics.audit_event', time, eventId: newEventId(time), eventType: 'access.denied',
    tenantId: d.principal?.tenantId ?? (d.presentedKeyId !== undefined ? deps.keys?.get(d.presentedKeyId)?.tenantId : undefined) ?? '', actorKeyId: d.principal?.keyId ?? d.presentedKeyId ?? '', jobId: '', sessionId: '', audioDurationSeconds: 0,
    requestId: d.requestId, traceId: d.traceId ?? '',
    details: JSON.stringify({ status: d.status, code: d.code, reason: d.message, method: d.method, route: d.route, source_address: d.sourceAddress ?? '' }),
  }).catch((err: unknown) => deps.log.warn({ request_id: d.requestId, err: err instanceof Error ? err.message : String(err) }, 'could not audit a refused request'));
}

export function createGatewayApp(deps: GatewayDeps): GatewayApp {
  const apiKey = deps.config.apiKey;
  if (apiKey === undefined || apiKey === '') throw new ConfigError('DALSTON_API_KEY must be set for the gateway');
  const router = new Router(deps.routeAccess ?? accessOf);
  for (const route of healthRoutes(deps)) router.add(route);
  router.add({
    method: 'GET', path: '/openapi.json', auth: 'none', traced: false,
    handler: async (ctx) => sendJson(ctx.res, 200, openApiDocument()),
  });
  const inventory = deps.modelsHomeDir !== undefined ? new ModelInventory(deps.modelsHomeDir) : undefined;
  // Warmed now: the first request that names the installed models must not wait for their files to be hashed.
  void inventory?.installed().catch(() => undefined);
  const defaultModel = deps.config.transcribeEngine !== undefined ? modelOfEngine(deps.config.transcribeEngine) : undefined;
  const transcriptionDeps: TranscriptionsDeps = {
    publisher: deps.publisher,
    reader: deps.reader,
    store: deps.store,
    clock: deps.clock ?? systemClock,
    uploadMaxBytes: deps.config.uploadMaxBytes,
    urlFetch: {
      policy: { maxBytes: deps.config.uploadMaxBytes, timeoutMs: (deps.config.urlFetchTimeoutSeconds ?? 300) * 1000 },
      allow: new UrlAllowList(deps.config.urlAllowHosts ?? []),
    },
    renderers: deps.renderers,
    openAi: deps.openAi,
    traces: deps.traces,
    openAiAliases: checkedAliases(deps.config.openAiModelAliases ?? DEFAULT_OPENAI_ALIASES),
    ...(inventory ? { installedModels: () => inventory.installed() } : {}),
    ...(defaultModel !== undefined ? { defaultModel } : {}),
    ...(deps.admission ? { admission: deps.admission } : {}),
    ...(deps.concurrency ? { concurrency: deps.concurrency } : {}),
    ...(deps.retentionDefaultDays ? { retentionDefaultDays: deps.retentionDefaultDays } : {}),
    ...(deps.webhooks ? { webhooks: { allow: deps.webhooks.allow, endpoints: deps.webhooks.endpoints } } : {}),
  };
  for (const route of transcriptionRoutes(transcriptionDeps)) router.add(route);
  for (const route of translationRoutes(transcriptionDeps)) router.add(route);
  if (deps.vendorBatch) {
    for (const route of elevenLabsRoutes({ ...transcriptionDeps, ...deps.vendorBatch })) router.add(route);
    for (const route of deepgramRoutes({ ...transcriptionDeps, ...deps.vendorBatch })) router.add(route);
  }
  if (deps.realtimeSessions) {
    for (const route of realtimeSessionRoutes({ ...deps.realtimeSessions, store: deps.store, clock: deps.clock ?? systemClock })) router.add(route);
  }
  if (inventory) for (const route of modelRoutes(inventory)) router.add(route);
  if (deps.audit) for (const route of auditRoutes(deps.audit)) router.add(route);
  if (deps.webhooks) for (const route of webhookRoutes({ ...deps.webhooks, publisher: deps.publisher, clock: deps.clock ?? systemClock, bootstrapKey: apiKey })) router.add(route);
  if (deps.keys) for (const route of keyRoutes({ keys: deps.keys, publisher: deps.publisher, clock: deps.clock ?? systemClock, bootstrapKey: apiKey })) router.add(route);

  const handler = createRequestHandler({
    router, log: deps.log, metrics: gatewayMetrics(deps.registry),
    authenticator: createApiKeyAuthenticator({ bootstrapKey: apiKey, ...(deps.keys ? { keys: deps.keys } : {}), now: () => (deps.clock ?? systemClock).now() }),
    onDenied: (denial) => auditDenial(deps, denial),
    ...(deps.limiter ? { limiter: deps.limiter } : {}),
  });
  const { tlsCertFile, tlsKeyFile } = deps.config;
  const server = createUwsServer(handler, {
    log: deps.log,
    tls: tlsCertFile && tlsKeyFile ? { certFile: tlsCertFile, keyFile: tlsKeyFile } : undefined,
    websocket: deps.websocket,
    bodyIdleMs: (deps.config.bodyIdleTimeoutSeconds ?? 60) * 1000,
  });

  return {
    get listening() {
      return server.listening;
    },
    jobDeps: transcriptionDeps,
    listen: (port, host = '0.0.0.0') => server.listen(port, host),
    close: (graceMs = 10_000) => server.close(graceMs),
    ws(spec) {
      router.add(webSocketRoute(spec));
    },
    route(spec) {
      router.add(spec);
    },
  };
}
