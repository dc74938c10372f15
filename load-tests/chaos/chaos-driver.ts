/**
 * The chaos run: a private Kafka broker, Dalston's real processes (gateway, actor hosts, engines), N short jobs
 * submitted over HTTP while actor hosts and engine instances are SIGKILLed, restarted, added and removed at random and
 * the broker restarts once. Then it checks from ClickHouse that every accepted job ended exactly once (one terminal
 * audit row each, one task fact per task attempt and outcome) and none is stuck, and measures how long a takeover's
 * restore takes, before and after 10,000 finished jobs are written into jobs.state history.
 *
 * Used by the benchmark (load-tests/chaos/chaos-bench.ts, 500 jobs) and by a short end-to-end test in
 * `./dalston test`. It prints progress through `note` and returns a report; it asserts nothing itself.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createClickHouse } from '../../clickhouse/client.js';
import { applyMigrations } from '../../clickhouse/migrate.js';
import { str } from '../../clickhouse/sql.js';
import { silentLogger } from '../../core/logger.js';
import { MOONSHINE_TINY, batchEngineId } from '../../engines/models/catalogue.js';
import { seededRandom } from '../../core/seeded-random.js';
import { ensureKafkaInstalled, startKafka, type KafkaServerHandle } from '../../infra/kafka-server.js';
import { freePortPair } from '../../infra/ports.js';
import { launchOnFreePort, type ServiceProcess, type ServiceSpec } from '../../infra/service-launcher.js';
import { restartDecision } from '../../infra/supervisor.js';
import {
  JOB_STATE, allTopics, SCHEMA_VERSION, StreamProducer, createKafka, encodeMessage, ensureTopics, newMessageHeaders, prefixed,
  type JobState,
} from '../../streams/index.js';

const run = promisify(execFile);

/**
 * Moonshine tiny (ONNX, loaded once per engine process): what the chaos run measures is orchestration under faults, and
 * pocketsphinx took 8-16 s per one-second clip on a loaded 2-core machine, so the recogniser set the run's length.
 */
export const CHAOS_TRANSCRIBE_ENGINE = batchEngineId(MOONSHINE_TINY);
const STAGE_ENGINES = [
  { stage: 'prepare', engineId: 'audio-prepare' }, { stage: 'transcribe', engineId: CHAOS_TRANSCRIBE_ENGINE }, { stage: 'merge', engineId: 'merge' },
] as const;
const ENGINE_IDS = STAGE_ENGINES.map((e) => e.engineId);
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export interface ChaosOptions {
  /** Jobs to submit. */
  readonly jobs: number;
  /** Submissions in flight at once. @default 8 */
  readonly concurrency?: number;
  /** Time between chaos actions. @default 4000 */
  readonly actionIntervalMs?: number;
  /** The broker restarts once this share of the jobs has been accepted. @default 0.4 */
  readonly brokerRestartAt?: number;
  /** Finished jobs written into jobs.state history before the second restore measurement. @default 10000 */
  readonly historyJobs?: number;
  /** ClickHouse HTTP URL to use (a private database is created); without it a private server is started. */
  readonly clickhouseUrl?: string;
  /** Dalston home holding models and caches. */
  readonly homeDir: string;
  /** A run in which no job ends for this long has stuck jobs (whatever the load, progress must go on). @default 180000 */
  readonly stallTimeoutMs?: number;
  /** Upper bound of the whole run. @default 3600000 */
  readonly settleTimeoutMs?: number;
  /**
   * Process chaos stops once this share of the accepted jobs has ended (after every submission), so the last jobs
   * drain without new failures: a job still stuck then is stuck for good, however slowly a loaded machine recovers
   * from each kill. @default 1 (chaos until the end)
   */
  readonly chaosUntilEnded?: number;
  readonly seed?: number;
  /** Acts of chaos to take first, in order, before random ones (a short run still covers each kind). @default [] */
  readonly firstActions?: readonly ChaosAction[];
  readonly note?: (msg: string) => void;
}

export const CHAOS_ACTIONS = [
  'actor_host_sigkill_restart', 'actor_host_added', 'actor_host_removed', 'engine_sigkill_restart', 'engine_added', 'engine_removed',
] as const;
export type ChaosAction = (typeof CHAOS_ACTIONS)[number];

export interface RestoreFigures {
  /** restore_ms of the surviving host's takeover after a SIGKILL (hook start → actors restored). */
  readonly takeoverRestoreMs: number | undefined;
  /** Kill → the survivor logged its restored actors (includes the session timeout that detects the death). */
  readonly takeoverWallMs: number | undefined;
  /** Spawn → healthy for a new actor host (its tail reads the whole jobs.state first). */
  readonly coldStartMs: number;
  readonly jobsStateRecords: number;
}

export interface ChaosReport {
  readonly jobs: number;
  readonly accepted: number;
  readonly submitRetries: number;
  readonly outcomes: Readonly<Record<string, number>>;
  readonly stuck: readonly string[];
  /** Why waiting for the jobs ended: all ended, none ended for stallTimeoutMs, or the settle deadline passed. */
  readonly waitEnded: 'all-ended' | 'stalled' | 'deadline';
  /** Jobs with more than one terminal audit row (job.completed/failed/cancelled). */
  readonly duplicateTerminalAudits: readonly string[];
  /** Accepted jobs with no terminal audit row. */
  readonly missingTerminalAudits: readonly string[];
  /** (task, attempt, outcome) with more than one task_facts row. */
  readonly duplicateFacts: number;
  /** Completed jobs lacking a success fact for one of their three tasks. */
  readonly completedWithoutFacts: readonly string[];
  readonly actions: Readonly<Record<string, number>>;
  readonly brokerRestart: { readonly atAccepted: number; readonly endedBefore: number; readonly downMs: number } | undefined;
  readonly wallSeconds: number;
  /** Jobs ended per second over the chaos phase (start to the last job's end). */
  readonly jobsPerSecond: number;
  readonly restore: { readonly afterRun: RestoreFigures; readonly withHistory: RestoreFigures | undefined };
}


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A one-second spoken clip (espeak-ng, 16 kHz mono WAV). */
async function makeClip(dir: string): Promise<string> {
  const raw = join(dir, 'clip.espeak.wav');
  const out = join(dir, 'clip.wav');
  await run('espeak-ng', ['-v', 'en-us', '-w', raw, 'go forward ten meters']);
  await run('sox', [raw, '-r', '16000', '-c', '1', '-b', '16', out]);
  return out;
}

class Stack {
  readonly services = new Map<string, ServiceProcess>();
  #seq = 0;

  constructor(readonly env: Readonly<Record<string, string>>, readonly logDir: string, readonly note: (message: string) => void) {}

  /**
   * Starts a process. One that exits during start-up (the broker restarting under it) is started again after the
   * supervisor's back-off, as `./dalston up` does; only a crash loop gives up.
   */
  async start(kind: ServiceSpec['kind'], engineId?: string): Promise<ServiceProcess> {
    const crashes: number[] = [];
    for (;;) {
      const name = `${kind === 'engine' ? engineId : kind}-${this.#seq++}`;
      try {
        const svc = await launchOnFreePort({ name, kind, ...(engineId ? { engineId } : {}) }, { env: this.env, logDir: this.logDir }, 90_000);
        this.services.set(name, svc);
        return svc;
      } catch (err) {
        const decision = restartDecision(crashes, Date.now());
        if (decision.kind === 'give_up') throw err;
        crashes.push(Date.now());
        this.note(`${err instanceof Error ? err.message : String(err)}; starting it again in ${decision.delayMs} ms`);
        await sleep(decision.delayMs);
      }
    }
  }

  live(kind: ServiceSpec['kind'], engineId?: string): ServiceProcess[] {
    return [...this.services.values()].filter((s) => s.running && s.spec.kind === kind && (engineId === undefined || s.spec.engineId === engineId));
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.services.values()].map((s) => s.stop(20_000)));
  }
}

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const note = o.note ?? (() => undefined);
  // Seeded, so a failing run can be replayed with its seed.
  const random = seededRandom(o.seed ?? 12345);
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'dalston-chaos-'));
  const prefix = `chaos-${randomBytes(3).toString('hex')}.`;
  const kafkaInstall = await ensureKafkaInstalled({ cacheDir: join(o.homeDir, 'cache'), log: silentLogger });
  const kafkaPort = await freePortPair();
  const kafkaOpts = { dataDir: join(dir, 'kafka'), port: kafkaPort, controllerPort: kafkaPort + 1, libDir: kafkaInstall.libDir, version: kafkaInstall.version, log: silentLogger, heapMb: 512 };
  let broker: KafkaServerHandle = await startKafka(kafkaOpts);
  let ownClickHouse: { stop(): Promise<void> } | undefined;
  let clickhouseUrl = o.clickhouseUrl;
  if (!clickhouseUrl) {
    const { startClickHouse } = await import('../../infra/clickhouse-server.js');
    const port = await freePortPair();
    const server = await startClickHouse({ dataDir: join(dir, 'clickhouse'), httpPort: port, tcpPort: port + 1, log: silentLogger });
    ownClickHouse = server;
    clickhouseUrl = server.url;
  }
  const database = `dalston_chaos_${randomBytes(3).toString('hex')}`;
  const ch = createClickHouse({ url: clickhouseUrl, database, log: silentLogger });
  await applyMigrations(ch, database, silentLogger);
  const kafka = createKafka({ brokers: broker.brokers, clientId: 'chaos-driver', log: silentLogger });
  await ensureTopics(kafka, allTopics(STAGE_ENGINES).map((t) => ({ ...t, name: prefixed(prefix, t.name) })), silentLogger);
  const apiKey = `dk_chaos_${randomBytes(8).toString('hex')}`;
  const stack = new Stack({
    DALSTON_KAFKA_BROKERS: broker.brokers.join(','), DALSTON_CLICKHOUSE_URL: clickhouseUrl, DALSTON_CLICKHOUSE_DATABASE: database,
    DALSTON_TOPIC_PREFIX: prefix, DALSTON_API_KEY: apiKey, DALSTON_HOME: o.homeDir, DALSTON_LOG_LEVEL: 'info',
    DALSTON_ENGINE_HEARTBEAT_SECONDS: '1', DALSTON_TASK_RETRY_DELAY_MS: '200', DALSTON_TASK_MAX_RETRIES: '8',
    DALSTON_TRANSCRIBE_ENGINE: CHAOS_TRANSCRIBE_ENGINE, DALSTON_ENGINE_DRAIN_SECONDS: '3',
  }, join(dir, 'logs'), note);
  const actions: Record<string, number> = {};
  const count = (a: string): void => {
    actions[a] = (actions[a] ?? 0) + 1;
  };
  let report: ChaosReport | undefined;
  try {
    const gateway = await stack.start('gateway');
    const base = `http://127.0.0.1:${gateway.spec.port}`;
    await stack.start('actors');
    await stack.start('actors');
    for (const id of ENGINE_IDS) {
      await stack.start('engine', id);
      if (id !== 'merge') await stack.start('engine', id);
    }
    note(`stack up: ${stack.services.size} processes; broker ${broker.brokers.join(',')}`);
    const clip = await readFile(await makeClip(dir));

    // ---- submissions ---------------------------------------------------------------------------------
    const accepted: string[] = [];
    let submitRetries = 0;
    let next = 0;
    const submitOne = async (): Promise<void> => {
      for (;;) {
        try {
          const form = new FormData();
          form.append('file', new Blob([clip]), 'clip.wav');
          const res = await fetch(`${base}/v1/audio/transcriptions`, { method: 'POST', body: form, headers: { authorization: `Bearer ${apiKey}` } });
          const body = (await res.json()) as { id?: string };
          if (res.status === 201 && body.id) {
            accepted.push(body.id);
            return;
          }
        } catch {
          // gateway busy or restarting: a client retries
        }
        submitRetries++;
        await sleep(500);
      }
    };
    const submitters = Array.from({ length: o.concurrency ?? 8 }, async () => {
      while (next < o.jobs) {
        next++;
        await submitOne();
        await sleep(50 + random() * 150);
      }
    });

    // ---- chaos, while jobs are submitted and until every accepted job has ended ------------------------
    let done = false;
    let brokerRestart: ChaosReport['brokerRestart'];
    const restartAt = Math.ceil(o.jobs * (o.brokerRestartAt ?? 0.4));
    const outcomes: Record<string, number> = {};
    const ended = new Set<string>();
    const restartBroker = async (): Promise<void> => {
      const t0 = Date.now();
      const endedBefore = ended.size;
      note(`restarting the Kafka broker (${accepted.length} accepted, ${endedBefore} ended)`);
      await broker.stop();
      broker = await startKafka(kafkaOpts);
      brokerRestart = { atAccepted: accepted.length, endedBefore, downMs: Date.now() - t0 };
      count('broker_restart');
    };
    const keepOneOfEach = async (): Promise<void> => {
      if (stack.live('actors').length === 0) await stack.start('actors');
      for (const id of ENGINE_IDS) if (stack.live('engine', id).length === 0) await stack.start('engine', id);
    };
    /** One act of chaos: kill, add or remove an actor host or an engine instance (the next scripted one, else random). */
    const scripted = [...(o.firstActions ?? [])];
    const pick = (): ChaosAction => {
      const next = scripted.shift();
      if (next) return next;
      const r = random();
      if (r < 0.2) return 'actor_host_sigkill_restart';
      if (r < 0.3) return 'actor_host_added';
      if (r < 0.4) return 'actor_host_removed';
      const e = random();
      return e < 0.5 ? 'engine_sigkill_restart' : e < 0.75 ? 'engine_added' : 'engine_removed';
    };
    const chaosAction = async (): Promise<void> => {
      const action = pick();
      const hosts = stack.live('actors');
      const id = ENGINE_IDS[Math.floor(random() * ENGINE_IDS.length)] ?? CHAOS_TRANSCRIBE_ENGINE;
      const engines = stack.live('engine', id);
      const victim = engines[Math.floor(random() * engines.length)];
      switch (action) {
        case 'actor_host_sigkill_restart':
          if (hosts.length === 0) return;
          await hosts[Math.floor(random() * hosts.length)]?.kill();
          await stack.start('actors');
          break;
        case 'actor_host_added':
          if (hosts.length >= 3) return;
          await stack.start('actors');
          break;
        case 'actor_host_removed':
          if (hosts.length <= 1) return;
          await hosts[Math.floor(random() * hosts.length)]?.stop(20_000);
          break;
        case 'engine_sigkill_restart':
          if (!victim) return;
          await victim.kill();
          await stack.start('engine', id);
          break;
        case 'engine_added':
          if (engines.length >= 3) return;
          await stack.start('engine', id);
          break;
        case 'engine_removed':
          if (!victim || engines.length <= 1) return;
          await victim.stop(20_000);
          break;
      }
      count(action);
    };
    // The broker restart runs beside the process chaos, so a long action cannot push it past the end of the run.
    const brokerChaos = (async () => {
      while (!done && !brokerRestart) {
        if (ended.size >= restartAt) await restartBroker();
        else await sleep(200);
      }
    })();
    let submitted = false;
    const chaosUntil = o.chaosUntilEnded ?? 1;
    const chaos = (async () => {
      while (!done && !(submitted && ended.size >= chaosUntil * accepted.length)) {
        await sleep(o.actionIntervalMs ?? 4000);
        if (done) break;
        try {
          await chaosAction();
        } catch (err) {
          // A process that fails to start is part of the chaos: note it and go on (the keep-alive below restarts it).
          count('action_failed');
          note(`chaos action failed: ${err instanceof Error ? err.message : String(err)}`);
        }
        // Always keep one actor host and one instance of every engine.
        await keepOneOfEach().catch((err: unknown) => note(`restart failed: ${err instanceof Error ? err.message : String(err)}`));
      }
      if (!done) note(`process chaos stopped: ${ended.size} of ${accepted.length} jobs ended; the rest drain without new failures`);
    })();
    void Promise.all(submitters).then(() => {
      submitted = true;
      note(`all ${accepted.length} jobs accepted (${submitRetries} submission retries)`);
    });
    const deadline = Date.now() + (o.settleTimeoutMs ?? 3_600_000);
    let lastProgress = Date.now();
    while (!(submitted && ended.size === accepted.length) && Date.now() < deadline && Date.now() - lastProgress < (o.stallTimeoutMs ?? 180_000)) {
      for (const id of accepted.filter((x) => !ended.has(x))) {
        const res = await fetch(`${base}/v1/audio/transcriptions/${id}`, { headers: { authorization: `Bearer ${apiKey}` } }).catch(() => undefined);
        const body = res && res.ok ? ((await res.json()) as { status: string }) : undefined;
        if (body && TERMINAL.has(body.status)) {
          ended.add(id);
          lastProgress = Date.now();
          outcomes[body.status] = (outcomes[body.status] ?? 0) + 1;
        }
      }
      await sleep(1000);
    }
    const waitEnded = submitted && ended.size === accepted.length ? 'all-ended' : Date.now() >= deadline ? 'deadline' : 'stalled';
    const drainSeconds = (Date.now() - started) / 1000;
    done = true;
    await chaos;
    await brokerChaos;
    const pending = accepted.filter((x) => !ended.has(x));
    note(`jobs ended: ${JSON.stringify(outcomes)}; stuck: ${pending.length} (${waitEnded}); chaos: ${JSON.stringify(actions)}`);
    // Where each stuck job stopped, so a failed run can be diagnosed from its report alone.
    for (const id of pending.slice(0, 10)) {
      const res = await fetch(`${base}/v1/audio/transcriptions/${id}`, { headers: { authorization: `Bearer ${apiKey}` } }).catch(() => undefined);
      const body = res?.ok ? ((await res.json()) as { status?: string; stages?: { stage: string; task_id: string; status: string; retries: number }[] }) : undefined;
      note(`stuck ${id}: http ${res?.status ?? 'unreachable'} ${JSON.stringify({ status: body?.status, stages: body?.stages?.map((s) => [s.task_id, s.status, s.retries]) })}`);
    }

    // ---- exactly once, from ClickHouse ----------------------------------------------------------------
    const ids = accepted.map(str).join(',');
    const terminalRows = async () => ch.query<{ job_id: string; n: number }>(
      `SELECT job_id, count() AS n FROM ${database}.audit_events WHERE event_type IN ('job.completed','job.failed','job.cancelled') AND job_id IN (${ids}) GROUP BY job_id`,
    );
    let rows = await terminalRows();
    for (let i = 0; i < 60 && rows.length < accepted.length - pending.length; i++) {
      await sleep(1000);
      rows = await terminalRows();
    }
    await sleep(3000); // a duplicate, if the system made one, would land by now
    rows = await terminalRows();
    const byJob = new Map(rows.map((r) => [r.job_id, Number(r.n)]));
    const duplicateFacts = Number((await ch.query<{ n: number }>(
      `SELECT count() AS n FROM (SELECT task_id, attempt, status, count() AS c FROM ${database}.task_facts GROUP BY task_id, attempt, status HAVING c > 1)`,
    ))[0]?.n ?? 0);
    const factless = await ch.query<{ job_id: string }>(
      `SELECT job_id FROM ${database}.audit_events WHERE event_type = 'job.completed' AND job_id IN (${ids}) AND job_id NOT IN
         (SELECT job_id FROM ${database}.task_facts WHERE status = 'success' GROUP BY job_id HAVING uniqExact(task_id) = 3)`,
    );

    // ---- restore time: after the run, then with 10,000 finished jobs in history ------------------------
    const afterRun = await measureRestore(stack, prefix, kafka);
    let withHistory: RestoreFigures | undefined;
    if ((o.historyJobs ?? 10_000) > 0) {
      await writeHistory(kafka, prefix, o.historyJobs ?? 10_000);
      note(`${o.historyJobs ?? 10_000} finished jobs written into jobs.state history`);
      withHistory = await measureRestore(stack, prefix, kafka);
    }
    report = {
      jobs: o.jobs, accepted: accepted.length, submitRetries, outcomes, stuck: pending, waitEnded,
      duplicateTerminalAudits: [...byJob].filter(([, n]) => n > 1).map(([id]) => id),
      missingTerminalAudits: accepted.filter((id) => !byJob.has(id)),
      duplicateFacts, completedWithoutFacts: factless.map((r) => r.job_id), actions, brokerRestart,
      wallSeconds: Math.round((Date.now() - started) / 1000), jobsPerSecond: Math.round((ended.size / drainSeconds) * 100) / 100,
      restore: { afterRun, withHistory },
    };
  } finally {
    await stack.stopAll();
    await ch.exec(`DROP DATABASE IF EXISTS ${database}`, { withoutDatabase: true }).catch(() => undefined);
    await ch.close();
    await broker.stop();
    await ownClickHouse?.stop();
    if (process.env['DALSTON_KEEP_CHAOS_LOGS'] !== '1') await rm(dir, { recursive: true, force: true });
  }
  return report;
}

/**
 * Starts a fresh actor host (cold start: its tail reads all of jobs.state), then SIGKILLs another so the fresh one
 * takes over its partitions, and reads how long that takeover's restore took from its log.
 */
async function measureRestore(stack: Stack, prefix: string, kafka: ReturnType<typeof createKafka>): Promise<RestoreFigures> {
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(prefixed(prefix, JOB_STATE.name));
  await admin.disconnect();
  const records = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
  // Keep exactly two hosts: the fresh one and a victim.
  for (const h of stack.live('actors').slice(1)) await h.stop(20_000);
  const t0 = Date.now();
  const fresh = await stack.start('actors');
  const coldStartMs = Date.now() - t0;
  const victim = stack.live('actors').find((h) => h !== fresh);
  if (!victim) return { takeoverRestoreMs: undefined, takeoverWallMs: undefined, coldStartMs, jobsStateRecords: records };
  await sleep(3000); // let the rebalance that the fresh host caused settle
  const before = (await readFile(fresh.logFile, 'utf8')).split('\n').length;
  const killedAt = Date.now();
  await victim.kill();
  for (let i = 0; i < 600; i++) {
    const lines = (await readFile(fresh.logFile, 'utf8')).split('\n').slice(before);
    for (const line of lines) {
      if (!line.includes('"partitions assigned; actors restored"')) continue;
      const parsed = JSON.parse(line) as { restore_ms?: number; partitions?: number[]; time?: number | string };
      if ((parsed.partitions?.length ?? 0) === 0) continue;
      return { takeoverRestoreMs: parsed.restore_ms, takeoverWallMs: Date.now() - killedAt, coldStartMs, jobsStateRecords: records };
    }
    await sleep(100);
  }
  return { takeoverRestoreMs: undefined, takeoverWallMs: undefined, coldStartMs, jobsStateRecords: records };
}

/** Writes `n` synthetic finished jobs' snapshots into jobs.state, as a long-running deployment's history. */
async function writeHistory(kafka: ReturnType<typeof createKafka>, prefix: string, n: number): Promise<void> {
  const producer = new StreamProducer({ kafka, log: silentLogger });
  await producer.connect();
  try {
    const now = Date.now();
    for (let i = 0; i < n; i += 500) {
      const messages = [];
      for (let j = i; j < Math.min(n, i + 500); j++) {
        const jobId = `job_history_${j}`;
        const state: JobState = {
          jobId, tenantId: 'default', keyId: 'key', requestId: 'req_history', status: 'completed', createdAt: now - 60_000, completedAt: now - 1000,
          params: {}, audio: { key: `jobs/${jobId}/audio.wav`, filename: 'a.wav', bytes: 1000, contentType: 'audio/wav' },
          tasks: ['prepare', 'transcribe', 'merge'].map((stage) => ({
            taskId: `task_history_${j}_${stage}`, stage, engineId: stage, dependsOn: [], required: true, status: 'completed' as const,
            attempt: 1, retries: 0, config: {}, attempts: [{ attempt: 1, engineId: stage, endedAt: now - 1000, outcome: 'completed' as const }],
          })),
          revision: 7, epoch: 1,
        };
        messages.push({ key: jobId, value: encodeMessage({ v: SCHEMA_VERSION, type: 'job.snapshot', state }), headers: newMessageHeaders({}) });
      }
      await producer.sendBatch([{ topic: prefixed(prefix, JOB_STATE.name), messages }]);
    }
  } finally {
    await producer.close();
  }
}
