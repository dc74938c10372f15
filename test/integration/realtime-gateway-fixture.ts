/**
 * A real gateway process's parts in this process for integration tests: the uWS app with the real-time side over
 * the real Kafka (own topic prefix per test file), in-memory batch ports and a temporary filesystem artifact store.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { Logger } from '../../core/logger.js';
import { createGatewayApp, type GatewayApp } from '../../gateway/gateway-app.js';
import { InMemoryJobReader, RecordingPublisher } from '../../gateway/memory-ports.js';
import { REALTIME_DIALECT_ADAPTERS } from '../../gateway/realtime/dialects/index.js';
import { startRealtimeGateway, type RealtimeConfig, type RealtimeGateway } from '../../gateway/realtime/realtime-gateway.js';
import { FsArtifactStore } from '../../storage/index.js';
import type { StreamRuntime } from '../../streams/index.js';

export const RT_TEST_KEY = 'dk_rt_test_0123456789abcdef';

export interface RealtimeTestGateway {
  readonly app: GatewayApp;
  readonly realtime: RealtimeGateway;
  readonly registry: Registry;
  readonly store: FsArtifactStore;
  readonly port: number;
  /** ws://127.0.0.1:<port> */
  readonly wsBase: string;
  readonly httpBase: string;
  /** SIGTERM's order: live sockets get 1012, the app drains, the consumers stop. */
  stop(): Promise<void>;
}

export function realtimeTestConfig(prefix: string, overrides: Partial<RealtimeConfig> = {}): RealtimeConfig {
  return {
    apiKey: RT_TEST_KEY, topicPrefix: prefix, gatewayId: undefined, realtimeSessionsPerEngine: 16, realtimeModel: 'scripted', realtimeMaxSessionsPerKey: 32,
    realtimeIdleTimeoutSeconds: 30, realtimeMaxSessionSeconds: 3600, realtimeMaxFrameBytes: 65_536, realtimeLagWarnSeconds: 3, realtimeLagCloseSeconds: 5,
    realtimeRetention: false, realtimeTokenTtlSeconds: 60,
    ...overrides,
  };
}

export async function startRealtimeTestGateway(o: {
  streams: StreamRuntime; log: Logger; config: RealtimeConfig; gatewayId: string; lag?: { holdMs?: number; silenceAfterMs?: number; silenceGraceMs?: number };
}): Promise<RealtimeTestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'dalston-rt-gw-'));
  const store = new FsArtifactStore(join(dir, 'artifacts'));
  const registry = new Registry();
  const app = createGatewayApp({
    config: { apiKey: RT_TEST_KEY, uploadMaxBytes: 1024 * 1024 }, log: o.log, registry,
    publisher: new RecordingPublisher(), reader: new InMemoryJobReader(), store, readinessChecks: {},
    websocket: { maxPayloadBytes: o.config.realtimeMaxFrameBytes * 2 },
  });
  const realtime = await startRealtimeGateway({
    config: { ...o.config, gatewayId: o.gatewayId }, streams: o.streams, store, registry, log: o.log, port: 0, dialects: REALTIME_DIALECT_ADAPTERS,
    spoolDir: dir, ...(o.lag ? { lag: o.lag } : {}),
  });
  for (const r of realtime.routes) app.route(r);
  for (const r of realtime.wsRoutes) app.ws(r);
  const port = await app.listen(0, '127.0.0.1');
  return {
    app, realtime, registry, store, port, wsBase: `ws://127.0.0.1:${port}`, httpBase: `http://127.0.0.1:${port}`,
    stop: async () => {
      await realtime.shutdown();
      await app.close(2000);
      await realtime.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
