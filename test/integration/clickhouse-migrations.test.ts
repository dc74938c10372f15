/**
 * Migrations, tables, rollups and analytic queries on a real ClickHouse (Debian's 18.16 here). Also the server
 * runner's own promises: fail-fast checks, restart keeps data, stop leaves no process behind.
 *
 * The file always runs its own server, even under `./dalston test` (which offers a shared one): it must run in a
 * half-hour-offset time zone, and it is stopped, killed and restarted. To keep the machine's load down that one
 * server is the only one the file keeps running: the lock and SIGKILL tests use its directory too.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, DependencyUnavailableError } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { freeClickHousePorts, startClickHouse } from '../../infra/clickhouse-server.js';
import { freePort, isPortTaken } from '../../infra/ports.js';
import { ClickHouseQueryError } from '../../clickhouse/errors.js';
import { MIGRATIONS_DIR, applyMigrations, listMigrations } from '../../clickhouse/migrate.js';
import {
  audioMinutesPerHour,
  jobsPerHour,
  processingSecondsPerAudioMinute,
  processingTimeByModel,
  rtfByEngine,
  rtfByLanguage,
  type AudioMinutesRow,
  type JobsPerHourRow,
  type ProcessingPerAudioMinuteRow,
  type ProcessingTimeRow,
  type RtfRow,
} from '../../clickhouse/queries.js';
import { formatDateTime, str } from '../../clickhouse/sql.js';
import { clickhouseForTest, processExists, type ClickHouseFixture } from '../../harness/clickhouse-fixture.js';
import { processesMentioning } from '../../harness/kafka-fixture.js';

let ch: ClickHouseFixture;

const SERVER_TZ = 'Asia/Kolkata';

before(async () => {
  // A server time zone with a half-hour offset: hour buckets and DateTime text must still come out in UTC.
  ch = await clickhouseForTest('migrations', { timezone: SERVER_TZ, ownServer: true });
  const tz = await ch.client.query<{ tz: string }>('SELECT timezone() AS tz', { withoutDatabase: true });
  console.log(`ClickHouse ${ch.version} at ${ch.url} (own server, pid ${ch.server?.pid ?? '?'}), database ${ch.database}, server time zone ${tz[0]?.tz ?? '?'}`);
  assert.ok(ch.server !== undefined, 'the file runs its own server');
  assert.deepEqual(tz, [{ tz: SERVER_TZ }], 'the server runs in the time zone the UTC checks need');
});

/** The fixture's own server's directory and ports (always there: before() insists on an own server). */
function own(): { dataDir: string; httpPort: number; tcpPort: number } {
  const { dataDir, httpPort, tcpPort } = ch;
  assert.ok(dataDir !== undefined && httpPort !== undefined && tcpPort !== undefined, 'own server');
  return { dataDir, httpPort, tcpPort };
}

after(async () => {
  await ch?.close();
});

const H = Date.UTC(2026, 10, 28, 9, 0, 0);
const MIN = 60_000;

void test('migrations apply once: the second run applies nothing', async () => {
  const files = (await listMigrations()).map((f) => f.name);
  assert.ok(files.length >= 7, `found ${files.length} migration files`);
  const first = await applyMigrations(ch.client, ch.database, silentLogger);
  assert.deepEqual(first.applied, files);
  assert.deepEqual(first.alreadyApplied, []);
  const second = await applyMigrations(ch.client, ch.database, silentLogger);
  assert.deepEqual(second.applied, []);
  assert.deepEqual(second.alreadyApplied, files);
  const recorded = await ch.client.query<{ n: number }>(`SELECT count() AS n FROM ${ch.database}.schema_migrations`);
  assert.equal(recorded[0]?.n, files.length);
  const tables = await ch.client.query<{ name: string; engine: string }>(
    `SELECT name, engine FROM system.tables WHERE database = ${str(ch.database)} ORDER BY name`,
  );
  const engines = Object.fromEntries(tables.map((t) => [t.name, t.engine]));
  assert.equal(engines['jobs'], 'ReplacingMergeTree');
  assert.equal(engines['tasks'], 'ReplacingMergeTree');
  assert.equal(engines['task_facts'], 'MergeTree');
  assert.equal(engines['audit_events'], 'MergeTree');
  assert.equal(engines['realtime_sessions'], 'ReplacingMergeTree');
  assert.equal(engines['task_hourly'], 'SummingMergeTree');
  assert.equal(engines['rtf_hourly'], 'AggregatingMergeTree');
  assert.equal(engines['task_hourly_mv'], 'MaterializedView');
  assert.equal(engines['rtf_hourly_mv'], 'MaterializedView');
  assert.equal(engines['spans'], 'MergeTree');
  assert.equal(engines['webhook_deliveries'], 'MergeTree');
});

void test('jobs: a row reads back, and the highest version wins under FINAL', async () => {
  const base = {
    job_id: 'job_1', tenant_id: 't1', status: 'running', created_at: formatDateTime(H), created_ms: H, started_ms: H + 1000,
    completed_ms: 0, audio_duration_seconds: 12.5, language: 'en', model: 'en-us', request_id: 'req_1', trace_id: 'a'.repeat(32),
    error_code: '', error_message: '', stages_json: JSON.stringify([{ stage: 'prepare', status: 'completed' }]),
    params_json: '{"diarize":false}', transcript_key: '', version: 1,
  };
  const cols = Object.keys(base) as (keyof typeof base)[];
  await ch.client.insert('jobs', [base], cols);
  await ch.client.insert('jobs', [{ ...base, status: 'completed', completed_ms: H + 9000, transcript_key: 'jobs/job_1/transcript.json', version: 2 }], cols);
  const rows = await ch.client.query<typeof base>(`SELECT * FROM jobs FINAL WHERE job_id = 'job_1'`);
  assert.equal(rows.length, 1);
  assert.deepEqual(rows[0], { ...base, status: 'completed', completed_ms: H + 9000, transcript_key: 'jobs/job_1/transcript.json', version: 2 });
  // JSON payloads are read with visitParamExtract*, which 18.16 and current releases both have.
  const json = await ch.client.query<{ stage: string; diarize: number }>(
    `SELECT visitParamExtractString(stages_json, 'stage') AS stage, visitParamExtractBool(params_json, 'diarize') AS diarize FROM jobs FINAL`,
  );
  assert.deepEqual(json, [{ stage: 'prepare', diarize: 0 }]);
});

void test('insert() sends only the named columns: extra row fields are dropped, unnamed columns take their DEFAULT', async () => {
  await ch.client.exec(`CREATE TABLE IF NOT EXISTS ${ch.database}.insert_probe (a String, b UInt64 DEFAULT 7) ENGINE = MergeTree ORDER BY a`);
  await ch.client.insert('insert_probe', [{ a: 'one', not_a_column: 1 }], ['a']);
  await ch.client.insert('insert_probe', [{ a: 'two', b: 3, not_a_column: 'x' }], ['a', 'b']);
  assert.deepEqual(await ch.client.query(`SELECT a, b FROM insert_probe ORDER BY a`), [{ a: 'one', b: 7 }, { a: 'two', b: 3 }]);
  await ch.client.exec(`DROP TABLE ${ch.database}.insert_probe`);
});

void test('tasks: a row reads back with unnamed columns at their defaults', async () => {
  await ch.client.insert('tasks', [{ job_id: 'job_1', task_id: 'task_a', stage: 'prepare', engine_id: 'audio-prepare', status: 'completed', retries: 1, created_at: formatDateTime(H), version: 3, duration_ms: 120 }], [
    'job_id', 'task_id', 'stage', 'engine_id', 'status', 'retries', 'created_at', 'version', 'duration_ms',
  ]);
  const rows = await ch.client.query<Record<string, unknown>>(`SELECT * FROM tasks FINAL`);
  assert.deepEqual(rows, [{
    job_id: 'job_1', task_id: 'task_a', stage: 'prepare', engine_id: 'audio-prepare', status: 'completed', retries: 1, ready_ms: 0, started_ms: 0,
    completed_ms: 0, queue_wait_ms: 0, duration_ms: 120, error_json: '', created_at: formatDateTime(H), version: 3,
  }]);
});

void test('audit_events: a row reads back and an unknown event_type is refused', async () => {
  const row = {
    time: formatDateTime(H), time_ms: H, event_id: 'evt_1', event_type: 'pii.redaction_run', tenant_id: 't1', actor_key_id: 'key_1',
    job_id: 'job_1', session_id: '', audio_duration_seconds: 12.5, request_id: 'req_1', trace_id: 'b'.repeat(32), details: '{"entities":3}',
  };
  const cols = Object.keys(row) as (keyof typeof row)[];
  await ch.client.insert('audit_events', [row], cols);
  const rows = await ch.client.query<typeof row>(`SELECT * FROM audit_events`);
  assert.deepEqual(rows, [row]);
  await assert.rejects(ch.client.insert('audit_events', [{ ...row, event_type: 'job.exploded' }], cols), (err: unknown) => err instanceof ClickHouseQueryError && !err.retryable);
});

void test('a migration interrupted after its ADD COLUMNs runs again: existing columns are skipped, other errors still fail', async () => {
  // The session-history migration applied once already; run its statements again as an unrecorded file.
  const dir = await mkdtemp(join(tmpdir(), 'dalston-ch-rerun-'));
  try {
    await copyFile(join(MIGRATIONS_DIR, '0008_realtime_session_history.sql'), join(dir, '0100_again.sql'));
    const result = await applyMigrations(ch.client, ch.database, silentLogger, { dir });
    assert.deepEqual(result.applied, ['0100_again']);
    await ch.client.insert('audit_events', [{ event_id: 'rt_1', event_type: 'realtime.session.deleted' }], ['event_id', 'event_type']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('realtime_sessions: a row reads back', async () => {
  const row = {
    session_id: 'sess_1', tenant_id: 't1', started_at: formatDateTime(H), ended_at: formatDateTime(H + 90_000), duration_seconds: 90, audio_seconds: 88.5,
    status: 'completed', engine_id: 'pocketsphinx', model: 'en-us', language: 'en', utterances: 7, first_partial_p50_ms: 310.5, first_partial_p95_ms: 620,
    final_p50_ms: 800, final_p95_ms: 1450.25, trace_id: 'c'.repeat(32), request_id: 'req_2', version: 5,
  };
  await ch.client.insert('realtime_sessions', [row], Object.keys(row) as (keyof typeof row)[]);
  // Columns added later (0008, session history; 0012, retention) read back as their defaults for a row written without them.
  const later = {
    started_ms: 0, ended_ms: 0, key_id: '', dialect: '', close_code: 0, close_reason: '', retention: 1, audio_key: '', transcript_key: '',
    enhance_job_id: '', deleted: 0, deleted_ms: 0, retention_seconds: -1,
  };
  const [read] = await ch.client.query<Record<string, unknown>>(`SELECT * FROM realtime_sessions FINAL`);
  assert.deepEqual(read, { ...row, ...later });
});

void test('webhook_deliveries: an attempt row, as the worker writes it, reads back; an unknown status is refused', async () => {
  const row = {
    time: formatDateTime(H), time_ms: H, delivery_id: 'msg_1', tenant_id: 't1', endpoint_id: 'wh_1', url: 'https://hooks.example/x', event_type: 'transcription.completed',
    subject_id: 'job_1', attempt: 2, status: 'failed', http_status: 503, error: 'answered 503', duration_ms: 41, next_attempt_at_ms: H + 10_000, body: '{"object":"event"}',
  };
  const cols = Object.keys(row) as (keyof typeof row)[];
  await ch.client.insert('webhook_deliveries', [row], cols);
  const [read] = await ch.client.query<Record<string, unknown>>(`SELECT * FROM webhook_deliveries WHERE delivery_id = 'msg_1'`);
  assert.deepEqual(read, row);
  await assert.rejects(ch.client.insert('webhook_deliveries', [{ ...row, status: 'lost' }], cols));
});

void test('spans: a row with its Nested attributes reads back and is found by job_id', async () => {
  const row = {
    trace_id: 'd'.repeat(32), span_id: 'e'.repeat(16), parent_span_id: '', name: 'engine.pocketsphinx.process', service: 'dalston-engine', kind: 'INTERNAL',
    start_time: formatDateTime(H), start_us: H * 1000 + 123, duration_us: 4_500_000, status_code: 'OK', status_message: '', job_id: 'job_1',
    'attributes.key': ['dalston.job_id', 'dalston.stage'], 'attributes.value': ['job_1', 'transcribe'],
  };
  await ch.client.insert('spans', [row], Object.keys(row) as (keyof typeof row)[]);
  const rows = await ch.client.query<{ name: string; start_us: number; stage: string }>(
    `SELECT name, start_us, attributes.value[indexOf(attributes.key, 'dalston.stage')] AS stage FROM spans WHERE job_id = 'job_1'`,
  );
  assert.deepEqual(rows, [{ name: 'engine.pocketsphinx.process', start_us: H * 1000 + 123, stage: 'transcribe' }]);
});

/** Task facts of the rollup tests: RTFs 0.5, 0.2 (hour H, en), 1.0 (hour H+1, de), a prepare task, and a failure. */
function fact(o: { min: number; task: string; stage: string; engine: string; model: string; lang: string; status: string; audio: number; proc: number }) {
  const t = H + o.min * MIN;
  return {
    time: formatDateTime(t), time_ms: t, job_id: `job_${o.task}`, task_id: o.task, tenant_id: 't1', stage: o.stage, engine_id: o.engine, model: o.model,
    language: o.lang, status: o.status, audio_duration_seconds: o.audio, processing_ms: o.proc, queue_wait_ms: 15, model_load_ms: 0, retries: 0,
    attempt: 1, trace_id: 'f'.repeat(32), request_id: `req_${o.task}`,
  };
}

void test('task_facts feed the hourly rollups through the materialized views, and the analytic queries read them (hour buckets in UTC on an Asia/Kolkata server)', async () => {
  // The control: on this UTC+5:30 server an hour bucket taken in server time starts at hh:30 UTC, so every
  // on-the-hour bucket below proves the rollups bucket in UTC.
  const control = await ch.client.query<{ tz: string; naive_offset_s: number }>(
    `SELECT timezone() AS tz, toUInt32(toStartOfHour(toDateTime(${(H + 45 * MIN) / 1000}))) % 3600 AS naive_offset_s`,
  );
  assert.deepEqual(control, [{ tz: SERVER_TZ, naive_offset_s: 1800 }]);
  const facts = [
    fact({ min: 5, task: 'f1', stage: 'transcribe', engine: 'pocketsphinx', model: 'en-us', lang: 'en', status: 'success', audio: 10, proc: 5000 }),
    fact({ min: 10, task: 'f2', stage: 'transcribe', engine: 'pocketsphinx', model: 'en-us', lang: 'en', status: 'success', audio: 20, proc: 4000 }),
    fact({ min: 70, task: 'f3', stage: 'transcribe', engine: 'pocketsphinx', model: 'en-us', lang: 'de', status: 'success', audio: 30, proc: 30_000 }),
    fact({ min: 4, task: 'f4', stage: 'prepare', engine: 'audio-prepare', model: '', lang: 'en', status: 'success', audio: 10, proc: 100 }),
    fact({ min: 12, task: 'f5', stage: 'transcribe', engine: 'pocketsphinx', model: 'en-us', lang: 'en', status: 'failure', audio: 10, proc: 999 }),
  ];
  const cols = Object.keys(facts[0] ?? {}) as (keyof (typeof facts)[number])[];
  // Two inserts, so the rollups hold two parts to merge at read time, as in production.
  await ch.client.insert('task_facts', facts.slice(0, 2), cols);
  await ch.client.insert('task_facts', facts.slice(2), cols);
  const stored = await ch.client.query<{ task_id: string; processing_ms: number }>(`SELECT task_id, processing_ms FROM task_facts ORDER BY task_id`);
  assert.deepEqual(stored.map((r) => r.task_id), ['f1', 'f2', 'f3', 'f4', 'f5']);

  const hourly = await ch.client.query<{ hour: string; stage: string; status: string; audio: number; proc: number; n: number }>(
    `SELECT hour, stage, status, sum(audio_seconds) AS audio, sum(processing_ms_total) AS proc, sum(task_count) AS n
     FROM task_hourly GROUP BY hour, stage, status ORDER BY hour, stage, status`,
  );
  assert.deepEqual(hourly, [
    { hour: formatDateTime(H), stage: 'prepare', status: 'success', audio: 10, proc: 100, n: 1 },
    { hour: formatDateTime(H), stage: 'transcribe', status: 'failure', audio: 10, proc: 999, n: 1 },
    { hour: formatDateTime(H), stage: 'transcribe', status: 'success', audio: 30, proc: 9000, n: 2 },
    { hour: formatDateTime(H + 60 * MIN), stage: 'transcribe', status: 'success', audio: 30, proc: 30_000, n: 1 },
  ]);

  const scope = { database: ch.database, fromMs: H, toMs: H + 2 * 60 * MIN };
  const byEngine = await ch.client.query<RtfRow>(rtfByEngine(scope));
  assert.deepEqual(byEngine.map((r) => [r.engine_id, r.tasks, r.total_audio_seconds, r.total_processing_ms]), [
    ['audio-prepare', 1, 10, 100],
    ['pocketsphinx', 3, 60, 39_000],
  ]);
  const ps = byEngine[1];
  assert.ok(ps !== undefined);
  assert.ok(Math.abs(ps.rtf_mean - 0.65) < 1e-9, `pocketsphinx mean RTF ${ps.rtf_mean}`);
  assert.ok(Math.abs(ps.rtf_p50 - 0.5) < 1e-9, `pocketsphinx p50 RTF ${ps.rtf_p50}`);
  assert.ok(ps.rtf_p50 <= ps.rtf_p95 && ps.rtf_p95 <= ps.rtf_p99 && ps.rtf_p99 <= 1.0, `quantiles ordered: ${JSON.stringify(ps)}`);
  assert.ok(Math.abs((byEngine[0]?.rtf_mean ?? 0) - 0.01) < 1e-9);

  const byLanguage = await ch.client.query<RtfRow>(rtfByLanguage(scope));
  assert.deepEqual(byLanguage.map((r) => [r.language, r.tasks, r.total_audio_seconds, r.total_processing_ms]), [
    ['de', 1, 30, 30_000],
    ['en', 3, 40, 9100],
  ]);
  assert.ok(Math.abs((byLanguage[0]?.rtf_mean ?? 0) - 1.0) < 1e-9);
  assert.ok(Math.abs((byLanguage[1]?.rtf_mean ?? 0) - 0.2275) < 1e-9);

  const minutes = await ch.client.query<AudioMinutesRow>(audioMinutesPerHour(scope));
  assert.deepEqual(minutes, [
    { hour: formatDateTime(H), hour_ms: H, audio_minutes: 0.5, tasks: 2 },
    { hour: formatDateTime(H + 60 * MIN), hour_ms: H + 60 * MIN, audio_minutes: 0.5, tasks: 1 },
  ]);
  // The range is half-open on hours: only the first hour.
  assert.equal((await ch.client.query<AudioMinutesRow>(audioMinutesPerHour({ ...scope, toMs: H + 60 * MIN }))).length, 1);

  const perModel = await ch.client.query<ProcessingTimeRow>(processingTimeByModel(scope));
  assert.deepEqual(perModel.map((r) => [r.engine_id, r.model, r.tasks, r.p50_ms]), [
    ['audio-prepare', '', 1, 100],
    ['pocketsphinx', 'en-us', 3, 5000],
  ]);
  const psModel = perModel[1];
  assert.ok(psModel !== undefined && psModel.p95_ms > 5000 && psModel.p95_ms <= psModel.p99_ms && psModel.p99_ms <= 30_000, JSON.stringify(psModel));
  const transcribeOnly = await ch.client.query<ProcessingTimeRow>(processingTimeByModel({ ...scope, stage: 'transcribe' }));
  assert.deepEqual(transcribeOnly.map((r) => r.engine_id), ['pocketsphinx']);

  // Cost: all processing (failures included) per transcribed audio minute. Hour H: 10.099 s / 0.5 min; H+1: 30 s / 0.5 min.
  const cost = await ch.client.query<ProcessingPerAudioMinuteRow>(processingSecondsPerAudioMinute(scope));
  assert.deepEqual(cost.map((r) => [r.hour_ms, r.processing_seconds, r.audio_minutes]), [
    [H, 10.099, 0.5],
    [H + 60 * MIN, 30, 0.5],
  ]);
  assert.ok(Math.abs((cost[0]?.processing_seconds_per_audio_minute ?? 0) - 20.198) < 1e-9);
  assert.ok(Math.abs((cost[1]?.processing_seconds_per_audio_minute ?? 0) - 60) < 1e-9);

  // jobs holds job_1 (created in hour H, two versions, latest completed): counted once, as completed.
  const jobs = await ch.client.query<JobsPerHourRow>(jobsPerHour(scope));
  assert.deepEqual(jobs, [{ hour: formatDateTime(H), hour_ms: H, jobs: 1, completed: 1, failed: 0, cancelled: 0 }]);
});

void test('hostile strings survive a round trip through str() and through insert()', async () => {
  const hostile = ["it's", 'back\\slash', "x'); DROP TABLE jobs; --", 'tab\tnew\nline\r', 'nul\0byte\x01\x7f', 'trailing \\', "\\'", 'é 😀 中'];
  for (const h of hostile) {
    const rows = await ch.client.query<{ s: string }>(`SELECT ${str(h)} AS s`);
    assert.equal(rows[0]?.s, h, `literal round trip of ${JSON.stringify(h)}`);
  }
  await ch.client.insert('audit_events', hostile.map((h, i) => ({ event_id: `hostile_${i}`, event_type: 'data.deleted', details: h })), ['event_id', 'event_type', 'details']);
  for (const [i, h] of hostile.entries()) {
    const rows = await ch.client.query<{ details: string }>(`SELECT details FROM audit_events WHERE details = ${str(h)} AND event_id = ${str(`hostile_${i}`)}`);
    assert.deepEqual(rows, [{ details: h }]);
  }
  const tables = await ch.client.query<{ n: number }>(`SELECT count() AS n FROM system.tables WHERE database = ${str(ch.database)} AND name = 'jobs'`);
  assert.equal(tables[0]?.n, 1, 'jobs table still exists');
});

void test('the server runner refuses a taken port and a missing binary before starting anything', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dalston-ch-refuse-'));
  try {
    const taken = own().httpPort;
    await assert.rejects(startClickHouse({ dataDir: dir, httpPort: taken, tcpPort: await freePort(), log: silentLogger }), (err: unknown) =>
      err instanceof ConfigError && err.message.includes(`port ${taken}`),
    );
    await assert.rejects(
      startClickHouse({ dataDir: dir, ...(await freeClickHousePorts()), log: silentLogger, binary: join(dir, 'no-such-clickhouse') }),
      (err: unknown) => err instanceof ConfigError && err.message.includes('binary not found'),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('a second server on a running data directory is refused, and a server that dies during start-up is reported with its log tail', async () => {
  const running = ch.server;
  assert.ok(running !== undefined);
  await assert.rejects(startClickHouse({ dataDir: own().dataDir, ...(await freeClickHousePorts()), log: silentLogger, timezone: SERVER_TZ }), (err: unknown) =>
    err instanceof ConfigError && err.message.includes(`pid ${running.pid}`),
  );
  assert.ok(processExists(running.pid), 'the running server is untouched');
  assert.deepEqual(await ch.client.query(`SELECT count() AS n FROM jobs FINAL`), [{ n: 1 }], 'and still answers');
  const dir = await mkdtemp(join(tmpdir(), 'dalston-ch-lock-'));
  try {
    // An unknown time zone makes the server abort while starting: the error carries its own words.
    await assert.rejects(
      startClickHouse({ dataDir: dir, ...(await freeClickHousePorts()), log: silentLogger, timezone: 'Not/AZone' }),
      (err: unknown) => err instanceof DependencyUnavailableError && err.message.includes('exited during start-up') && err.message.includes('Not/AZone'),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('stop() falls back to SIGKILL, and a server starts again over the stale status file a kill leaves', async () => {
  // The file's server is swapped for one with a 1 ms grace period on the same directory: SIGTERM cannot finish in
  // time, so stop() must SIGKILL; then the fixture's server starts again over what the kill left.
  const { dataDir, httpPort, tcpPort } = own();
  await ch.stopServer();
  const messages: string[] = [];
  const capture: Logger = { ...silentLogger, warn: (_f, msg) => void messages.push(msg), child: () => capture };
  const first = await startClickHouse({ dataDir, httpPort, tcpPort, log: capture, stopTimeoutMs: 1, timezone: SERVER_TZ });
  try {
    await fetch(`${first.url}/`, { method: 'POST', body: 'CREATE TABLE default.kept (x String) ENGINE = MergeTree ORDER BY x' }).then((r) => r.text());
    await fetch(`${first.url}/`, { method: 'POST', body: "INSERT INTO default.kept VALUES ('survives')" }).then((r) => r.text());
  } finally {
    await first.stop();
  }
  assert.equal(processExists(first.pid), false, 'killed');
  assert.deepEqual(messages, ['clickhouse did not stop after SIGTERM; sending SIGKILL']);
  const second = await ch.startServer();
  assert.notEqual(second.pid, first.pid);
  const res = await fetch(`${second.url}/?query=${encodeURIComponent('SELECT x FROM default.kept')}`);
  assert.equal((await res.text()).trim(), 'survives');
  assert.deepEqual(await ch.client.query<{ status: string }>(`SELECT status FROM jobs FINAL WHERE job_id = 'job_1'`), [{ status: 'completed' }]);
});

void test('own server: a restart on the same directory keeps the data, and stop() leaves no process', async () => {
  assert.ok(ch.server !== undefined, 'the file runs its own server');
  const oldPid = ch.server.pid;
  const restarted = await ch.restart();
  assert.equal(processExists(oldPid), false, `old pid ${oldPid} is gone`);
  assert.notEqual(restarted.pid, oldPid);
  const jobs = await ch.client.query<{ status: string }>(`SELECT status FROM jobs FINAL WHERE job_id = 'job_1'`);
  assert.deepEqual(jobs, [{ status: 'completed' }]);
  const again = await applyMigrations(ch.client, ch.database, silentLogger);
  assert.deepEqual(again.applied, []);
  await ch.stopServer();
  assert.equal(processExists(restarted.pid), false, `pid ${restarted.pid} is gone after stop()`);
  const { dataDir, httpPort, tcpPort } = own();
  assert.deepEqual(processesMentioning(dataDir), [], 'no process runs with the data directory');
  assert.equal(await isPortTaken(httpPort), false, 'HTTP port released');
  assert.equal(await isPortTaken(tcpPort), false, 'native port released');
  // Left stopped: after() only deletes the directory.
});
