/**
 * A streaming (real-time) engine process (`service.name` dalston-realtime): one member of the real-time engine
 * group, serving the sessions of the realtime.input partitions it owns; /health /ready /metrics on
 * DALSTON_REALTIME_ENGINE_PORT. The default real-time model is loaded before joining, so the first session does not
 * hold its partition on a model load.
 */
import { kafkaSasl } from '../../core/config.js';
import { systemClock } from '../../core/clock.js';
import { startHealthServer } from '../../core/health-server.js';
import { createRegistry, realtimeEngineMetrics, realtimeHopMetric, streamMetrics } from '../../core/metrics.js';
import { SERVICE } from '../../core/observability-names.js';
import { runService } from '../../core/service.js';
import { createOtelTracer } from '../../core/telemetry/tracer.js';
import { REALTIME_EVENTS, REALTIME_INPUT, SESSION_STATE, StreamProducer, connectStreams, ensureTopics, prefixed } from '../../streams/index.js';
import { SileroVad } from '../vad/index.js';
import { ModelPool } from './model-pool.js';
import { RealtimeEngine } from './realtime-engine.js';

runService(SERVICE.realtime, async (config, baseLog) => {
  const log = baseLog.child({ component: 'realtime' });
  const registry = createRegistry();
  const streams = await connectStreams({ sasl: kafkaSasl(config),
    brokers: config.kafkaBrokers, clientId: 'dalston-realtime', topicPrefix: config.topicPrefix, log, deadLetterCounter: streamMetrics(registry).deadLetters,
  });
  // Idempotent: whichever process starts first creates the real-time topics (gateways create their reply topics).
  await ensureTopics(streams.kafka, [REALTIME_INPUT, REALTIME_EVENTS, SESSION_STATE].map((t) => ({ ...t, name: prefixed(config.topicPrefix, t.name) })), log);
  const replies = new StreamProducer({ kafka: streams.kafka, log });
  await replies.connect();
  const vad = await SileroVad.load(config.homeDir);
  const models = new ModelPool({ homeDir: config.homeDir, threads: config.onnxThreads, log });
  try {
    await models.get(config.realtimeModel);
  } catch (err) {
    // Sessions naming another model can still be served; sessions of this one get rt.error.
    log.error({ model: config.realtimeModel, err: err instanceof Error ? err.message : String(err) }, 'default real-time model could not be loaded');
  }
  const engine = new RealtimeEngine({
    kafka: streams.kafka, admin: streams.admin, replies, events: streams.producer, deadLetter: streams.deadLetter, topicPrefix: config.topicPrefix,
    models, vad, clock: systemClock, log, tracer: createOtelTracer(SERVICE.realtime),
    metrics: realtimeEngineMetrics(registry), hop: realtimeHopMetric(registry), queueCapacity: config.realtimeEngineQueueFrames,
    decodes: { concurrency: config.realtimeDecodeConcurrency, partialMaxWaitMs: config.realtimePartialMaxWaitMs },
    partialSkipBehindMs: config.realtimePartialSkipBehindMs,
  });
  await engine.start();
  const server = await startHealthServer(config.realtimeEnginePort, { registry, checks: { kafka: streams.check } }, config.bindHost);
  log.info({ port: config.realtimeEnginePort, instance: engine.instanceId, partitions: engine.partitions }, 'streaming engine running');
  return {
    close: async () => {
      server.close();
      await engine.close();
      await replies.close();
      await streams.close();
      await models.close();
      await vad.close();
    },
  };
});
