/** The gateway process: HTTP API on DALSTON_GATEWAY_PORT, publishing to Kafka, reading job state from ClickHouse. */
import { createClickHouse } from '../clickhouse/client.js';
import { createRegistry } from '../core/metrics.js';
import { SERVICE } from '../core/observability-names.js';
import { runService } from '../core/service.js';
import { createArtifactStore } from '../storage/index.js';
import { connectStreams } from '../streams/index.js';
import { ClickHouseJobReader } from './adapters/clickhouse-job-reader.js';
import { ClickHouseTraceReader } from './adapters/clickhouse-trace-reader.js';
import { KafkaJobPublisher } from './adapters/kafka-job-publisher.js';
import { transcriptRenderers } from './adapters/transcript-renderers.js';
import { createGatewayApp } from './gateway-app.js';

runService(SERVICE.gateway, async (config, log) => {
  const registry = createRegistry();
  const streams = await connectStreams({ brokers: config.kafkaBrokers, clientId: SERVICE.gateway, topicPrefix: config.topicPrefix, log });
  const clickhouse = createClickHouse({ url: config.clickhouseUrl, database: config.clickhouseDatabase, log });
  const app = createGatewayApp({
    config, log, registry,
    publisher: new KafkaJobPublisher(streams.producer, config.topicPrefix),
    reader: new ClickHouseJobReader(clickhouse),
    store: createArtifactStore(config),
    renderers: transcriptRenderers,
    modelsHomeDir: config.homeDir,
    // The span store is written only when tracing is on; otherwise the trace route says so instead of answering empty.
    ...(config.otelEnabled && config.otelSpanStore === 'clickhouse' ? { traces: new ClickHouseTraceReader(clickhouse) } : {}),
    readinessChecks: {
      kafka: streams.check,
      clickhouse: async () => {
        if (!(await clickhouse.ping())) throw new Error('ClickHouse did not answer /ping');
      },
    },
  });
  const port = await app.listen(config.gatewayPort, config.bindHost);
  log.info({ port, host: config.bindHost }, 'gateway listening');
  return {
    close: async () => {
      await app.close();
      await streams.close();
      await clickhouse.close();
    },
  };
});
