/** An engine process: one engine (DALSTON_ENGINE_ID) consuming its own queue tasks.<stage>.<engine_id>; /health /ready /metrics on DALSTON_ENGINE_PORT. */
import { kafkaSasl } from '../core/config.js';
import { systemClock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { startHealthServer } from '../core/health-server.js';
import { createRegistry, engineMetrics, streamMetrics } from '../core/metrics.js';
import { SERVICE } from '../core/observability-names.js';
import { runService } from '../core/service.js';
import { createOtelTracer } from '../core/telemetry/tracer.js';
import { createArtifactStore } from '../storage/index.js';
import { connectStreams } from '../streams/index.js';
import { createEngine } from './engine-registry.js';
import { parseFaultPlan, withFaults } from './runtime/fault-injection.js';
import { EngineRunner } from './runtime/engine-runner.js';

runService(SERVICE.engine, async (config, baseLog) => {
  const engineId = config.engineId;
  if (!engineId) throw new ConfigError('DALSTON_ENGINE_ID must name the engine this process runs');
  const log = baseLog.child({ engine_id: engineId });
  let engine = await createEngine(engineId, { homeDir: config.homeDir, log, onnxThreads: config.onnxThreads });
  if (config.faultInjection) {
    log.warn({ plan: config.faultInjection }, 'fault injection is on (testing only)');
    engine = withFaults(engine, parseFaultPlan(config.faultInjection));
  }
  const registry = createRegistry();
  const streams = await connectStreams({ sasl: kafkaSasl(config), brokers: config.kafkaBrokers, clientId: `dalston-engine-${engineId}`, topicPrefix: config.topicPrefix, log, deadLetterCounter: streamMetrics(registry).deadLetters });
  const runner = new EngineRunner({
    engine, kafka: streams.kafka, admin: streams.admin, producer: streams.producer, deadLetter: streams.deadLetter, store: createArtifactStore(config),
    topicPrefix: config.topicPrefix, clock: systemClock, log, tracer: createOtelTracer(SERVICE.engine), metrics: engineMetrics(registry),
    concurrency: config.engineConcurrency, heartbeatIntervalMs: config.heartbeatSeconds * 1000, drainMs: config.engineDrainSeconds * 1000,
  });
  await runner.start();
  const server = await startHealthServer(config.enginePort, { registry, checks: { kafka: streams.check } }, config.bindHost);
  log.info({ port: config.enginePort, instance: runner.instanceId }, 'engine running');
  return {
    close: async () => {
      server.close();
      await runner.close();
      await streams.close();
    },
  };
});
