/**
 * `./dalston up`: set up, start Kafka and ClickHouse with data under DALSTON_HOME, start the gateway, the actor
 * host and the engines, print where the API listens and the key, and stop everything cleanly on Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DalstonConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { startLocalStack } from '../infra/local-stack.js';
import { isPortTaken } from '../infra/ports.js';
import { SetupError } from '../infra/errors.js';
import { Registry } from 'prom-client';
import { startHealthServer } from '../core/health-server.js';
import { launchService, type ServiceSpec } from '../infra/service-launcher.js';
import { Supervisor } from '../infra/supervisor.js';
import { setup } from '../infra/setup.js';
import { CATALOGUE, batchEngineId } from '../engines/models/catalogue.js';

async function apiKey(config: DalstonConfig): Promise<string> {
  if (config.apiKey) return config.apiKey;
  const file = join(config.homeDir, 'api-key');
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const key = `dk_${randomBytes(24).toString('base64url')}`;
  await writeFile(file, `${key}\n`, { mode: 0o600 });
  return key;
}

/** `auto`: prepare, merge and a transcribe engine for every recogniser set-up installed. */
export function engineIds(config: DalstonConfig, installedModels: readonly string[]): string[] {
  if (config.engines.trim() !== 'auto') return config.engines.split(',').map((e) => e.trim()).filter((e) => e.length > 0);
  const asr = CATALOGUE.filter((m) => m.task === 'asr' && installedModels.includes(m.id)).map(batchEngineId);
  const vad = installedModels.includes('silero-vad-v5') ? ['silero-vad-v5'] : [];
  return ['audio-prepare', ...vad, ...asr, 'merge'];
}

export function serviceSpecs(config: DalstonConfig, engines: readonly string[]): ServiceSpec[] {
  return [
    { name: 'gateway', kind: 'gateway', port: config.gatewayPort },
    { name: 'actors', kind: 'actors', port: config.actorsPort },
    { name: 'webhooks', kind: 'webhooks', port: config.webhooksPort },
    ...engines.map((engineId, i): ServiceSpec => ({ name: `engine-${engineId}`, kind: 'engine', engineId, port: config.enginePort + i })),
    ...Array.from({ length: config.realtimeEngines }, (_, i): ServiceSpec => ({ name: `realtime-${i + 1}`, kind: 'realtime', port: config.realtimeEnginePort + i })),
  ];
}

export async function up(config: DalstonConfig, log: Logger): Promise<number> {
  await mkdir(config.homeDir, { recursive: true });
  // Ports of the gateway and actor host are checked before any install work, so a taken port fails at once.
  for (const s of serviceSpecs(config, []).filter((x) => x.kind === 'gateway' || x.kind === 'actors')) {
    if (await isPortTaken(s.port)) throw new SetupError(`port ${s.port} (${s.name}) is already in use; stop what uses it or set ${s.kind === 'gateway' ? 'DALSTON_GATEWAY_PORT' : 'DALSTON_ACTORS_PORT'}`);
  }
  if (await isPortTaken(config.supervisorPort)) throw new SetupError(`port ${config.supervisorPort} (supervisor) is already in use; stop what uses it or set DALSTON_SUPERVISOR_PORT`);
  const installed = await setup(config.homeDir, log);
  const engines = engineIds(config, installed.models.filter((m) => m.status !== 'missing').map((m) => m.id));
  if (!engines.includes(config.transcribeEngine)) {
    throw new SetupError(`DALSTON_TRANSCRIBE_ENGINE ${config.transcribeEngine} is not among the engines to start (${engines.join(', ')}); install its model or change the variable`);
  }
  const specs = serviceSpecs(config, engines);
  for (const s of specs.filter((x) => x.kind === 'engine' || x.kind === 'realtime')) {
    if (await isPortTaken(s.port)) throw new SetupError(`port ${s.port} (${s.name}) is already in use; stop what uses it or set ${s.kind === 'engine' ? 'DALSTON_ENGINE_PORT' : 'DALSTON_REALTIME_ENGINE_PORT'}`);
  }
  const stack = await startLocalStack({
    dataDir: config.homeDir, kafka: installed.kafka, kafkaPort: config.kafkaPort, clickhousePort: config.clickhousePort,
    topicPrefix: config.topicPrefix, database: config.clickhouseDatabase, log,
  });
  const key = await apiKey(config);
  const env: Record<string, string> = {
    DALSTON_HOME: config.homeDir,
    DALSTON_KAFKA_BROKERS: stack.kafka.brokers.join(','),
    DALSTON_CLICKHOUSE_URL: stack.clickhouse.url,
    DALSTON_CLICKHOUSE_DATABASE: config.clickhouseDatabase,
    DALSTON_TOPIC_PREFIX: config.topicPrefix,
    DALSTON_API_KEY: key,
  };
  const logDir = join(config.homeDir, 'logs');
  const registry = new Registry();
  let resolveExit: (code: number) => void = () => undefined;
  const exit = new Promise<number>((resolve) => (resolveExit = resolve));
  let stopping = false;
  const supervisor = new Supervisor({
    launch: (spec) => launchService(spec, { env, logDir }),
    log, registry,
    onCrashLoop: () => void stopAll().then(() => resolveExit(1)),
  });
  let supervisorHealth: Server | undefined;
  const stopAll = async (): Promise<void> => {
    stopping = true;
    // Ingress first so nothing new arrives, engines last so running tasks can finish and report.
    await supervisor.stop();
    await stack.stop();
    await new Promise((r) => (supervisorHealth ? supervisorHealth.close(r) : r(undefined)));
  };
  try {
    await supervisor.start(specs, 60_000);
    supervisorHealth = await startHealthServer(config.supervisorPort, { registry, checks: {} });
  } catch (err) {
    await stopAll();
    throw err;
  }
  process.stdout.write(
    `\nDalston is up.\n  API:      http://127.0.0.1:${config.gatewayPort}  (try: curl -H "Authorization: Bearer ${key}" -F file=@speech.wav http://127.0.0.1:${config.gatewayPort}/v1/audio/transcriptions)\n` +
    `  API key:  ${key}\n  Kafka:    ${stack.kafka.version} at ${stack.kafka.brokers.join(',')}\n  ClickHouse: ${stack.clickhouse.version} at ${stack.clickhouse.url}\n` +
    `  Health:   ${specs.map((s) => `${s.name} :${s.port}`).join(', ')}; supervisor :${config.supervisorPort}\n  Logs:     ${logDir}/*.log (JSON lines)\n` +
    'A service that crashes is restarted (back-off 1 s doubling to 30 s); more than 5 crashes of one service in 5 minutes stop everything.\n' +
    'Press Ctrl-C to stop.\n',
  );
  const onSignal = (signal: string) => {
    if (stopping) return;
    log.info({ signal }, 'stopping Dalston');
    void stopAll().then(() => {
      log.info({}, 'stopped');
      resolveExit(0);
    });
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  return exit;
}
