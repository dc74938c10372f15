/**
 * The Kafka an integration test talks to. With DALSTON_TEST_KAFKA_BROKERS set (the test command started one
 * shared broker for the suite) it is used as is, and DALSTON_TEST_KAFKA_VERSION names its version; otherwise a
 * broker is started for this file on free loopback ports in a temp dir and stopped by stop(). startOwnKafka()
 * always starts one, for tests about the broker process itself.
 * These two variables configure the test harness, not Dalston, so they are read here rather than in core/config.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { ensureKafkaInstalled, startKafka } from '../infra/kafka-server.js';
import { twoFreePorts } from '../infra/ports.js';

export interface TestKafka {
  readonly brokers: string[];
  readonly version: string;
  /** True when the broker came from DALSTON_TEST_KAFKA_BROKERS. */
  readonly external: boolean;
  /** Milliseconds from spawning the JVM to the first answered metadata request (own broker only). */
  readonly startMs?: number;
  readonly pid?: number;
  readonly dataDir?: string;
  stop(): Promise<void>;
}

export async function startTestKafka(log: Logger): Promise<TestKafka> {
  const shared = process.env['DALSTON_TEST_KAFKA_BROKERS'];
  if (shared !== undefined && shared.trim() !== '') {
    return {
      brokers: shared.split(',').map((b) => b.trim()).filter((b) => b !== ''),
      version: process.env['DALSTON_TEST_KAFKA_VERSION'] ?? 'unknown (external)',
      external: true,
      stop: async () => undefined,
    };
  }
  return startOwnKafka(log);
}

/** A broker of the caller's own on free loopback ports in a temp dir, whatever the suite shares; stop() deletes the dir. */
export async function startOwnKafka(log: Logger, opts: { readonly heapMb?: number } = {}): Promise<TestKafka> {
  // The jars setup() resolved into DALSTON_HOME (the test command passes it on), so no Maven run here.
  const install = await ensureKafkaInstalled({ cacheDir: join(loadConfig().homeDir, 'cache'), log });
  const dataDir = await mkdtemp(join(tmpdir(), 'dalston-kafka-test-'));
  const [port, controllerPort] = await twoFreePorts();
  const t0 = performance.now();
  const handle = await startKafka({ dataDir, port, controllerPort, libDir: install.libDir, version: install.version, log, heapMb: opts.heapMb ?? 512 });
  const startMs = Math.round(performance.now() - t0);
  return {
    brokers: handle.brokers,
    version: handle.version,
    external: false,
    startMs,
    pid: handle.pid,
    dataDir,
    stop: async () => {
      await handle.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Pids of live processes whose command line mentions `needle` (a leak check for spawned servers). */
export function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes(needle)) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
