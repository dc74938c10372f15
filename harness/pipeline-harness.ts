/**
 * An end-to-end harness: the real Kafka and ClickHouse of the test run (or private ones when run alone), a
 * private topic prefix and database per test file, and Dalston's real processes (gateway, actor hosts, engines)
 * launched as children with their JSON logs in a temp directory. Tests talk to it over HTTP like a user.
 */
import { randomBytes } from 'node:crypto';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import assert from 'node:assert/strict';
import { applyMigrations } from '../clickhouse/migrate.js';
import { silentLogger } from '../core/logger.js';
import { writeWav } from '../engines/audio/wav.js';
import { launchOnFreePort, type ServiceProcess, type ServiceSpec } from '../infra/service-launcher.js';
import { SHARED_TOPICS, createKafka, ensureTopics, prefixed, type Kafka } from '../streams/index.js';
import { clickhouseForTest, type ClickHouseFixture } from './clickhouse-fixture.js';
import { startTestKafka, type TestKafka } from './kafka-fixture.js';

export const POCKETSPHINX_ENGINE = 'stt-batch-transcribe-pocketsphinx-en-us';

export interface JobBody {
  readonly id: string;
  readonly status: string;
  readonly error: { code: string; message: string } | null;
  readonly audio_duration_seconds: number | null;
  readonly request_id: string;
  readonly trace_id: string | null;
  readonly text?: string;
  readonly language?: string | null;
  readonly segments?: { start: number; end: number; text: string; words?: { text: string; start: number; end: number }[] }[];
  readonly words?: { text: string; start: number; end: number }[];
  readonly stages: {
    stage: string; task_id: string; engine_id: string; status: string; started_at: string | null; completed_at: string | null;
    duration_ms: number | null; queue_wait_ms: number | null; retries: number; error: { code: string; message: string } | null;
  }[];
}

export interface Harness {
  readonly prefix: string;
  readonly database: string;
  readonly apiKey: string;
  readonly gatewayUrl: string;
  readonly logDir: string;
  readonly kafka: Kafka;
  readonly clickhouse: ClickHouseFixture;
  readonly services: ServiceProcess[];
  /** Starts another service process (a second actor host, another engine instance). */
  start(spec: Omit<ServiceSpec, 'port'>): Promise<ServiceProcess>;
  submit(file: string, fields?: Readonly<Record<string, string>>, headers?: Readonly<Record<string, string>>): Promise<{ status: number; body: { id: string; status: string; error?: { code: string; message: string } }; headers: Headers }>;
  job(id: string): Promise<JobBody>;
  waitFor(id: string, until: (job: JobBody) => boolean, timeoutMs?: number): Promise<JobBody>;
  api(path: string, init?: RequestInit): Promise<Response>;
  /** Every JSON log line written so far by every process. */
  logLines(): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  /** Short tag for topic prefix, database and logs. */
  readonly name: string;
  /** Engines to start, one process each (an id, or an id with extra environment such as fault injection). @default prepare, pocketsphinx, merge */
  readonly engines?: readonly (string | { readonly engineId: string; readonly env?: Readonly<Record<string, string>>; readonly name?: string })[];
  /** @default 1 */
  readonly actorHosts?: number;
  /** Streaming (real-time) engine processes to start, named `realtime-<i>`. @default 0 */
  readonly realtimeEngines?: number;
  /** Environment for every process. */
  readonly env?: Readonly<Record<string, string>>;
}

export const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const tag = `${options.name}_${randomBytes(3).toString('hex')}`;
  const prefix = `e2e-${tag}.`;
  const testKafka: TestKafka = await startTestKafka(silentLogger);
  const clickhouse = await clickhouseForTest(tag.replace(/[^A-Za-z0-9_]/g, '_'));
  await applyMigrations(clickhouse.client, clickhouse.database, silentLogger);
  const kafka = createKafka({ brokers: testKafka.brokers, clientId: `harness-${tag}`, log: silentLogger });
  await ensureTopics(kafka, SHARED_TOPICS.map((t) => ({ ...t, name: prefixed(prefix, t.name) })), silentLogger);
  const logDir = await mkdtemp(join(tmpdir(), `dalston-e2e-${tag}-`));
  const apiKey = `dk_test_${randomBytes(12).toString('hex')}`;
  const env: Record<string, string> = {
    DALSTON_KAFKA_BROKERS: testKafka.brokers.join(','),
    DALSTON_CLICKHOUSE_URL: clickhouse.url,
    DALSTON_CLICKHOUSE_DATABASE: clickhouse.database,
    DALSTON_TOPIC_PREFIX: prefix,
    DALSTON_API_KEY: apiKey,
    DALSTON_HOME: process.env['DALSTON_HOME'] ?? join(process.cwd(), '.dalston'),
    DALSTON_LOG_LEVEL: 'info',
    DALSTON_ENGINE_HEARTBEAT_SECONDS: '1',
    DALSTON_TASK_RETRY_DELAY_MS: '200',
    // The harness starts pocketsphinx by default (tests name other models explicitly).
    DALSTON_TRANSCRIBE_ENGINE: POCKETSPHINX_ENGINE,
    ...options.env,
  };
  const services: ServiceProcess[] = [];
  const start = async (spec: Omit<ServiceSpec, 'port'>): Promise<ServiceProcess> => {
    const svc = await launchOnFreePort(spec, { env, logDir }, 60_000);
    services.push(svc);
    return svc;
  };
  let gatewayPort = 0;
  try {
    gatewayPort = (await start({ name: 'gateway', kind: 'gateway' })).spec.port;
    for (let i = 0; i < (options.actorHosts ?? 1); i++) await start({ name: `actors-${i}`, kind: 'actors' });
    for (const [i, e] of (options.engines ?? ['audio-prepare', POCKETSPHINX_ENGINE, 'merge']).entries()) {
      const spec = typeof e === 'string' ? { engineId: e } : e;
      await start({ name: spec.name ?? `engine-${spec.engineId}-${i}`, kind: 'engine', engineId: spec.engineId, ...(spec.env ? { env: spec.env } : {}) });
    }
    for (let i = 0; i < (options.realtimeEngines ?? 0); i++) await start({ name: `realtime-${i}`, kind: 'realtime' });
  } catch (err) {
    await Promise.all(services.map((s) => s.kill()));
    throw err;
  }
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  const auth = { authorization: `Bearer ${apiKey}` };
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${gatewayUrl}${path}`, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) } });
  const job = async (id: string): Promise<JobBody> => {
    const res = await api(`/v1/audio/transcriptions/${id}`);
    if (res.status !== 200) throw new Error(`GET job ${id}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as JobBody;
  };
  return {
    prefix, database: clickhouse.database, apiKey, gatewayUrl, logDir, kafka, clickhouse, services, start, api, job,
    async submit(file, fields = {}, headers = {}) {
      const form = new FormData();
      form.append('file', new Blob([await readFile(file)]), basename(file));
      for (const [k, v] of Object.entries(fields)) form.append(k, v);
      const res = await api('/v1/audio/transcriptions', { method: 'POST', body: form, headers });
      return { status: res.status, body: (await res.json()) as { id: string; status: string }, headers: res.headers };
    },
    async waitFor(id, until, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      let last: JobBody | undefined;
      while (Date.now() < deadline) {
        // A job submitted by the system itself (enhance_on_end) has no row until its actor's first snapshot: wait.
        const res = await api(`/v1/audio/transcriptions/${id}`);
        if (res.status === 404) {
          await res.body?.cancel();
          await new Promise((r) => setTimeout(r, 150));
          continue;
        }
        if (res.status !== 200) throw new Error(`GET job ${id}: HTTP ${res.status} ${await res.text()}`);
        last = (await res.json()) as JobBody;
        if (until(last)) return last;
        await new Promise((r) => setTimeout(r, 150));
      }
      throw new Error(`job ${id} did not reach the expected state in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    },
    async logLines() {
      const out: Record<string, unknown>[] = [];
      for (const s of services) {
        const text = await readFile(s.logFile, 'utf8').catch(() => '');
        for (const line of text.split('\n')) {
          if (!line.startsWith('{')) continue;
          try {
            out.push(JSON.parse(line) as Record<string, unknown>);
          } catch {
            // a line cut by a kill
          }
        }
      }
      return out;
    },
    async stop() {
      await Promise.all(services.map((s) => s.stop(15_000)));
      await clickhouse.close();
      await testKafka.stop();
      if (process.env['DALSTON_KEEP_E2E_LOGS'] !== '1') await rm(logDir, { recursive: true, force: true });
    },
  };
}

/** Lower-case words without punctuation, for "the transcript contains the spoken words" checks. */
export function words(text: string): string[] {
  return text.toLowerCase().replace(/[^a-z' ]+/g, ' ').split(/\s+/).filter((w) => w.length > 0);
}

/** The batch transcript of `audio` (16 kHz) with `model`: written as a WAV under `dir`, submitted, waited for, asserted completed. */
export async function batchTranscript(h: Harness, dir: string, name: string, audio: Float32Array, model: string): Promise<string> {
  const file = join(dir, `${name}.wav`);
  await writeWav(file, audio, 16000);
  const res = await h.submit(file, { model, language: 'en' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const job = await h.waitFor(res.body.id, (j) => TERMINAL.has(j.status), 180_000);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  return job.text ?? '';
}
