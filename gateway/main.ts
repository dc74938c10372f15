/** The gateway process: HTTP API on DALSTON_GATEWAY_PORT, publishing to Kafka, reading job state from ClickHouse. */
import { kafkaSasl } from '../core/config.js';
import { createClickHouse } from '../clickhouse/client.js';
import { createRegistry } from '../core/metrics.js';
import { kafkaAndClickHouseChecks } from '../core/health-server.js';
import { SERVICE } from '../core/observability-names.js';
import { runService } from '../core/service.js';
import { createArtifactStore } from '../storage/index.js';
import { randomUUID } from 'node:crypto';
import { connectStreams, tailConnection } from '../streams/index.js';
import { ClickHouseJobReader } from './adapters/clickhouse-job-reader.js';
import { ClickHouseTraceReader } from './adapters/clickhouse-trace-reader.js';
import { KafkaJobOutcomes } from './adapters/kafka-job-outcomes.js';
import { KafkaJobProgress } from './adapters/kafka-job-progress.js';
import { KafkaJobPublisher } from './adapters/kafka-job-publisher.js';
import { ClickHouseSessionReader } from './adapters/clickhouse-session-reader.js';
import { KafkaSessionPublisher } from './adapters/kafka-session-publisher.js';
import { transcriptRenderers } from './adapters/transcript-renderers.js';
import { createGatewayApp } from './gateway-app.js';
import { createOpenAiResponder } from './openai-transcription.js';
import { KafkaBacklog } from './adapters/kafka-backlog.js';
import { KafkaJobIngress } from './kafka-job-ingress.js';
import { KafkaKeyStore } from './adapters/kafka-key-store.js';
import { KafkaEndpointStore } from '../webhooks/endpoint-store.js';
import { ClickHouseDeliveryLog } from './adapters/clickhouse-delivery-log.js';
import { KafkaDeliveryScheduler } from './adapters/kafka-delivery-scheduler.js';
import { UrlAllowList } from '../core/network-policy.js';
import { KafkaUsageLedger } from './adapters/kafka-usage-ledger.js';
import { RequestLimiter } from './limits/request-limiter.js';
import { TenantAdmission } from './limits/tenant-admission.js';
import { ClickHouseActiveWork } from './adapters/clickhouse-active-work.js';
import { ClickHouseExpiredJobs } from './adapters/clickhouse-expired-jobs.js';
import { ClickHouseExpiredSessions } from './adapters/clickhouse-expired-sessions.js';
import { RetentionPurge } from './retention-purge.js';
import { ClickHouseAuditReader } from './adapters/clickhouse-audit-reader.js';
import { parseTenantLimits } from './limits/tenant-limits.js';
import { REALTIME_DIALECT_ADAPTERS } from './realtime/dialects/index.js';
import { startRealtimeGateway } from './realtime/realtime-gateway.js';

runService(SERVICE.gateway, async (config, log) => {
  const registry = createRegistry();
  const streams = await connectStreams({ sasl: kafkaSasl(config), brokers: config.kafkaBrokers, clientId: SERVICE.gateway, topicPrefix: config.topicPrefix, log });
  const clickhouse = createClickHouse({ username: config.clickhouseUser, password: config.clickhousePassword, url: config.clickhouseUrl, database: config.clickhouseDatabase, log });
  const store = createArtifactStore(config);
  // OpenAI-mode requests wait for their job's outcome on jobs.results; this gateway reads it from now on.
  const outcomes = new KafkaJobOutcomes({
    kafka: streams.kafka, topicPrefix: config.topicPrefix, groupId: `${config.topicPrefix.replace(/\.$/, '')}-gateway-outcomes-${randomUUID()}`,
    deadLetter: streams.deadLetter, log,
  });
  await outcomes.start();
  // stream=true answers forward transcript text as the transcribe engines report it on jobs.progress.
  const progress = new KafkaJobProgress({
    kafka: streams.kafka, topicPrefix: config.topicPrefix, groupId: `${config.topicPrefix.replace(/\.$/, '')}-gateway-progress-${randomUUID()}`,
    deadLetter: streams.deadLetter, log,
  });
  await progress.start();
  // Over DALSTON_MAX_QUEUED_TASKS queued tasks, new HTTP jobs are refused with 503 and Retry-After.
  const backlog = new KafkaBacklog({ admin: streams.admin, topicPrefix: config.topicPrefix, limit: config.maxQueuedTasks, log });
  await backlog.start();
  // Every issued key, read before the first request is served; revocations arrive while it runs.
  const keys = new KafkaKeyStore(tailConnection(streams, config.topicPrefix, log, 'gateway-keys'));
  await keys.start();
  // Tenant webhook endpoints, read before the first request (the webhook worker holds the same table).
  const webhookEndpoints = new KafkaEndpointStore(tailConnection(streams, config.topicPrefix, log, 'gateway-webhooks'));
  await webhookEndpoints.start();
  // Per-tenant request limits, counted across gateways through tenants.usage (only when some limit is set).
  const limitTable = parseTenantLimits(config.tenantLimits ?? '');
  const usage = limitTable.any
    ? new KafkaUsageLedger({
      kafka: streams.kafka, producer: streams.producer, deadLetter: streams.deadLetter, topicPrefix: config.topicPrefix, log,
      gatewayId: randomUUID(), groupId: `${config.topicPrefix.replace(/\.$/, '')}-gateway-usage-${randomUUID()}`,
    })
    : undefined;
  await usage?.start();
  const concurrency = usage ? new TenantAdmission(limitTable, usage, new ClickHouseActiveWork(clickhouse)) : undefined;
  const sessionReader = new ClickHouseSessionReader(clickhouse);
  const sessionPublisher = new KafkaSessionPublisher(streams.producer, config.topicPrefix);
  const app = createGatewayApp({
    config, log, registry, admission: backlog, keys,
    ...(usage ? { limiter: new RequestLimiter(limitTable, usage) } : {}),
    ...(concurrency ? { concurrency } : {}),
    retentionDefaultDays: (tenantId) => limitTable.limitsFor(tenantId).retentionDays,
    audit: new ClickHouseAuditReader(clickhouse),
    webhooks: {
      endpoints: webhookEndpoints, deliveries: new ClickHouseDeliveryLog(clickhouse), scheduler: new KafkaDeliveryScheduler(streams.producer, config.topicPrefix),
      allow: new UrlAllowList(config.webhookAllowHosts ?? []), secretOverlapMs: config.webhookSecretOverlapSeconds * 1000,
    },
    publisher: new KafkaJobPublisher(streams.producer, config.topicPrefix),
    reader: new ClickHouseJobReader(clickhouse),
    store,
    renderers: transcriptRenderers,
    openAi: createOpenAiResponder({ outcomes, progress, store, renderers: transcriptRenderers, timeoutMs: config.syncTimeoutSeconds * 1000 }),
    vendorBatch: { outcomes, syncTimeoutMs: config.syncTimeoutSeconds * 1000 },
    realtimeSessions: { reader: sessionReader, publisher: sessionPublisher },
    modelsHomeDir: config.homeDir,
    // The span store is written only when tracing is on; otherwise the trace route says so instead of answering empty.
    ...(config.otelEnabled && config.otelSpanStore === 'clickhouse' ? { traces: new ClickHouseTraceReader(clickhouse) } : {}),
    readinessChecks: kafkaAndClickHouseChecks(streams, clickhouse),
    // Up to twice the limit uWS hands the message over and the bridge answers 1009 with an error message; beyond
    // that uWS cuts the connection itself (the client sees 1006) without buffering more.
    websocket: { maxPayloadBytes: config.realtimeMaxFrameBytes * 2 },
  });
  // Real-time: every dialect in this list is served by the one session bridge.
  const dialects = [...REALTIME_DIALECT_ADAPTERS];
  const realtime = await startRealtimeGateway({ config, streams, store, registry, log, port: config.gatewayPort, dialects, keys, ...(concurrency ? { concurrency } : {}),
    retentionDays: (tenantId) => limitTable.limitsFor(tenantId).retentionDays,
  });
  for (const route of realtime.routes) app.route(route);
  for (const route of realtime.wsRoutes) app.ws(route);
  // Kafka producers' job requests: every gateway joins one group, so each request becomes one job.
  const ingress = new KafkaJobIngress({
    kafka: streams.kafka, topicPrefix: config.topicPrefix, deadLetter: streams.deadLetter, log, apiKey: config.apiKey ?? '', // createGatewayApp refused an unset key above
    inlineMaxBytes: config.kafkaInlineAudioMaxBytes, keys,
    deps: app.jobDeps,
  });
  await ingress.start();
  // Ended jobs whose retention ran out are deleted like a DELETE would, audited with reason `retention`.
  const reader = app.jobDeps.reader;
  const purge = new RetentionPurge({
    finder: new ClickHouseExpiredJobs(clickhouse, reader), deps: app.jobDeps, log, intervalMs: config.purgeIntervalSeconds * 1000,
    sessions: { finder: new ClickHouseExpiredSessions(clickhouse, sessionReader), deps: { reader: sessionReader, publisher: sessionPublisher, store, clock: app.jobDeps.clock } },
  });
  purge.start();
  const port = await app.listen(config.gatewayPort, config.bindHost);
  log.info({ port, host: config.bindHost, tls: config.tlsCertFile !== undefined }, 'gateway listening');
  return {
    close: async () => {
      // Live sockets first get 1012 with where to resume, while Kafka is still up to publish their closes.
      await realtime.shutdown();
      await app.close();
      await purge.stop();
      await realtime.close();
      await ingress.close();
      backlog.close();
      await outcomes.close();
      await progress.close();
      await keys.close();
      await webhookEndpoints.close();
      await usage?.close();
      await streams.close();
      await clickhouse.close();
    },
  };
});
