/** The actor host process ("orchestrator"): job actors, the ClickHouse sink, /health /ready /metrics on DALSTON_ACTORS_PORT. */
import { kafkaSasl } from '../core/config.js';
import { createClickHouse } from '../clickhouse/client.js';
import { ClickHouseSink } from '../clickhouse/sink.js';
import { SessionSink } from '../clickhouse/session-sink.js';
import { createArtifactStore } from '../storage/index.js';
import { systemClock } from '../core/clock.js';
import { kafkaAndClickHouseChecks, startHealthServer } from '../core/health-server.js';
import { createRegistry, orchestratorMetrics, streamMetrics } from '../core/metrics.js';
import { SERVICE } from '../core/observability-names.js';
import { runService } from '../core/service.js';
import { createOtelTracer } from '../core/telemetry/tracer.js';
import { allTopics, connectStreams, ensureTopics, prefixed } from '../streams/index.js';
import { ActorHost } from './actor-host.js';
import { createEngineSelection } from './engine-selection.js';
import { transitionSettings } from './job-transition.js';
import { SessionHost } from './session-host.js';
import { transcribeEnginesByModel } from './transcribe-engines.js';

runService(SERVICE.orchestrator, async (config, log) => {
  const registry = createRegistry();
  const streams = await connectStreams({ sasl: kafkaSasl(config), brokers: config.kafkaBrokers, clientId: SERVICE.orchestrator, topicPrefix: config.topicPrefix, log, deadLetterCounter: streamMetrics(registry).deadLetters });
  const engines = createEngineSelection({ defaultTranscribeEngine: config.transcribeEngine, transcribeEngines: transcribeEnginesByModel() });
  // Every catalogue engine's queue exists before any job is dispatched to it, deployed or not (its backlog waits there).
  await ensureTopics(streams.kafka, allTopics(engines.engineIds).map((t) => ({ ...t, name: prefixed(config.topicPrefix, t.name) })), log);
  const clickhouse = createClickHouse({ username: config.clickhouseUser, password: config.clickhousePassword, url: config.clickhouseUrl, database: config.clickhouseDatabase, log });
  const host = new ActorHost({
    kafka: streams.kafka, admin: streams.admin, producer: streams.producer, deadLetter: streams.deadLetter, topicPrefix: config.topicPrefix,
    settings: transitionSettings(config, engines),
    finishedRetentionMs: config.jobStateRetentionSeconds * 1000,
    engineIds: engines.engineIds, clock: systemClock, log, tracer: createOtelTracer(SERVICE.orchestrator),
    metrics: orchestratorMetrics(registry),
  });
  const sink = new ClickHouseSink({ kafka: streams.kafka, clickhouse, deadLetter: streams.deadLetter, topicPrefix: config.topicPrefix, log });
  // Real-time session actors run beside the job actors, on realtime.events / sessions.state.
  const sessions = new SessionHost({
    kafka: streams.kafka, admin: streams.admin, producer: streams.producer, deadLetter: streams.deadLetter, store: createArtifactStore(config),
    topicPrefix: config.topicPrefix, clock: systemClock, log, finishedRetentionMs: config.jobStateRetentionSeconds * 1000,
    settings: { endGraceMs: config.realtimeEndGraceSeconds * 1000, maxSessionMs: config.realtimeMaxSessionSeconds * 1000 },
  });
  const sessionSink = new SessionSink({ kafka: streams.kafka, clickhouse, deadLetter: streams.deadLetter, topicPrefix: config.topicPrefix, log });
  await host.start();
  await sink.start();
  await sessions.start();
  await sessionSink.start();
  const server = await startHealthServer(config.actorsPort, {
    registry,
    checks: kafkaAndClickHouseChecks(streams, clickhouse),
  }, config.bindHost);
  log.info({ port: config.actorsPort, instance: host.instanceId, sessions_instance: sessions.instanceId }, 'actor host running');
  return {
    close: async () => {
      server.close();
      await host.close();
      await sessions.close();
      await sink.close();
      await sessionSink.close();
      await streams.close();
      await clickhouse.close();
    },
  };
});
