/**
 * The webhook worker process: turns job outcomes and session ends into signed deliveries to tenant endpoints and
 * jobs' own URLs, retries them on the durable schedule of `webhooks.deliveries`, and logs every attempt in
 * ClickHouse. /health /ready /metrics on DALSTON_WEBHOOKS_PORT. Any number may run: they share the work by partition.
 */
import { kafkaSasl } from '../core/config.js';
import { ConfigError } from '../core/errors.js';
import { createClickHouse } from '../clickhouse/client.js';
import { systemClock } from '../core/clock.js';
import { kafkaAndClickHouseChecks, startHealthServer } from '../core/health-server.js';
import { createRegistry, streamMetrics, webhookMetrics } from '../core/metrics.js';
import { UrlAllowList } from '../core/network-policy.js';
import { SERVICE } from '../core/observability-names.js';
import { runService } from '../core/service.js';
import { ANALYTICS, JOB_RESULTS, WEBHOOK_DELIVERIES, connectStreams, ensureTopics, prefixed, tailConnection } from '../streams/index.js';
import { KafkaEndpointStore } from './endpoint-store.js';
import { WebhookWorker } from './webhook-worker.js';

runService(SERVICE.webhooks, async (config, log) => {
  // The worker opens the endpoints' sealed signing secrets with it: without it nothing could be signed.
  if (config.apiKey === undefined) throw new ConfigError('DALSTON_API_KEY must be set: the webhook worker opens the endpoints\' signing secrets with it');
  const registry = createRegistry();
  const streams = await connectStreams({ sasl: kafkaSasl(config), brokers: config.kafkaBrokers, clientId: SERVICE.webhooks, topicPrefix: config.topicPrefix, log, deadLetterCounter: streamMetrics(registry).deadLetters });
  const clickhouse = createClickHouse({ username: config.clickhouseUser, password: config.clickhousePassword, url: config.clickhouseUrl, database: config.clickhouseDatabase, log });
  // The worker may start before any other process has created the topics it reads.
  await ensureTopics(streams.kafka, [JOB_RESULTS, ANALYTICS, WEBHOOK_DELIVERIES].map((t) => ({ ...t, name: prefixed(config.topicPrefix, t.name) })), log);
  const endpoints = new KafkaEndpointStore(tailConnection(streams, config.topicPrefix, log, 'webhooks-endpoints'));
  await endpoints.start();
  const worker = new WebhookWorker({
    kafka: streams.kafka, admin: streams.admin, producer: streams.producer, deadLetter: streams.deadLetter, topicPrefix: config.topicPrefix, log,
    endpoints, clickhouse, bootstrapKey: config.apiKey, allow: new UrlAllowList(config.webhookAllowHosts ?? []),
    retry: { baseMs: config.webhookRetryBaseSeconds * 1000, maxDelayMs: config.webhookRetryMaxSeconds * 1000, maxAttempts: config.webhookMaxAttempts },
    timeoutMs: config.webhookTimeoutSeconds * 1000, maxInFlight: config.webhookMaxInFlight, clock: systemClock, metrics: webhookMetrics(registry),
  });
  await worker.start();
  const server = await startHealthServer(config.webhooksPort, {
    registry,
    checks: kafkaAndClickHouseChecks(streams, clickhouse),
  }, config.bindHost);
  log.info({ port: config.webhooksPort }, 'webhook worker running');
  return {
    close: async () => {
      server.close();
      await worker.close();
      await endpoints.close();
      await streams.close();
      await clickhouse.close();
    },
  };
});
