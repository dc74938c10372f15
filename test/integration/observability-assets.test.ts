/**
 * The observability assets, checked with the real tools that exist here (Grafana and a Docker engine do not):
 * promtool on the rules, their unit tests and the scrape config; Debian's Prometheus evaluating every PromQL
 * expression of every alert and dashboard; `docker compose config` on the compose file; every dashboard SQL
 * target run on a real ClickHouse 18.16 with the project's migrations and a few known task_facts rows.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { createRegistry, engineMetrics, gatewayMetrics, orchestratorMetrics, realtimeMetrics } from '../../core/metrics.js';
import { METRIC } from '../../core/observability-names.js';
import { twoFreePorts } from '../../infra/ports.js';
import { startPrometheus, stopPrometheus, type PrometheusServer } from '../support/prometheus-server.js';
import { startClickHouse } from '../../infra/clickhouse-server.js';
import { createClickHouse } from '../../clickhouse/client.js';
import { applyMigrations } from '../../clickhouse/migrate.js';
import { dashboardFiles, expandGrafanaSqlMacros, listDashboardPromQLTargets, listDashboardSqlTargets, listDashboardTargets } from '../../core/telemetry/dashboard-targets.js';
import { knownEngineIds } from '../../engines/engine-registry.js';

const COMPOSE_DIR = join(REPO_ROOT, 'compose');
const COMPOSE_FILE = join(COMPOSE_DIR, 'docker-compose.yml');
const PROM_DIR = join(COMPOSE_DIR, 'prometheus');
const ALERTS = join(PROM_DIR, 'alerts.yml');
const ALERT_TESTS = join(PROM_DIR, 'alerts.test.yml');
const PROM_CONFIG = join(PROM_DIR, 'prometheus.yml');
const PROVISIONING = join(COMPOSE_DIR, 'grafana', 'provisioning');
const DOCS = join(REPO_ROOT, 'docs', 'observability.md');

interface CmdResult {
  readonly code: number | null;
  readonly out: string;
}

function run(cmd: string, args: readonly string[], cwd = REPO_ROOT, env: NodeJS.ProcessEnv = process.env): CmdResult {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 60_000, env });
  if (r.error) throw new Error(`${cmd} could not run (is it installed?): ${r.error.message}`);
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

function alertRules(): AlertRule[] {
  const doc = parseYaml(readFileSync(ALERTS, 'utf8')) as { groups: { rules: AlertRule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

const squash = (s: string): string => s.replace(/\s+/g, ' ').replace(/\(\s+/g, '(').replace(/\s+\)/g, ')').trim();

// ---------------------------------------------------------------------------------------------------------- promtool

void test('promtool check rules and promtool test rules pass', () => {
  const check = run('promtool', ['check', 'rules', ALERTS]);
  assert.equal(check.code, 0, check.out);
  assert.match(check.out, new RegExp(`SUCCESS: ${alertRules().length} rules found`));
  const unit = run('promtool', ['test', 'rules', ALERT_TESTS]);
  assert.equal(unit.code, 0, unit.out);
  assert.match(unit.out, /SUCCESS/);
});

void test('promtool check config accepts prometheus.yml (and the rule file it names)', () => {
  const r = run('promtool', ['check', 'config', PROM_CONFIG]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /SUCCESS: 1 rule files found/);
  const cfg = parseYaml(readFileSync(PROM_CONFIG, 'utf8')) as { scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[] };
  const targets = new Map(cfg.scrape_configs.map((s) => [s.job_name, s.static_configs.flatMap((c) => c.targets)] as const));
  assert.deepEqual(targets.get('dalston-gateway'), ['gateway:8000']);
  assert.deepEqual(targets.get('dalston-orchestrator'), ['orchestrator:8001']);
  assert.deepEqual(targets.get('dalston-webhooks'), ['webhooks:8002']);
  assert.deepEqual(targets.get('dalston-engine'), ['engine-audio-prepare:8010', 'engine-transcribe:8011', 'engine-merge:8012']);
});

void test("the guide's three alerts are there exactly as the contract describes them", () => {
  const rules = new Map(alertRules().map((r) => [r.alert, r] as const));
  const q = rules.get('QueueDepthHigh');
  assert.equal(q?.expr.trim(), 'dalston_queue_depth > 20');
  assert.equal(q?.for, '5m');
  assert.equal(q?.labels?.['severity'], 'warning');
  const e = rules.get('EngineErrorRateHigh');
  assert.equal(
    squash(e?.expr ?? ''),
    squash('(sum(rate(dalston_engine_tasks_processed_total{status="failure"}[10m])) by (engine_id) / sum(rate(dalston_engine_tasks_processed_total[10m])) by (engine_id)) > 0.05'),
  );
  assert.equal(e?.for, '5m');
  assert.equal(e?.labels?.['severity'], 'critical');
  const n = rules.get('NoJobsProcessed');
  assert.match(squash(n?.expr ?? ''), /increase\(dalston_orchestrator_jobs_total\[30m\]\)/);
  assert.match(squash(n?.expr ?? ''), /and ON\(\) \(hour\(\) >= 8 and hour\(\) <= 18\)/);
  assert.equal(n?.for, '30m');
  assert.equal(n?.labels?.['severity'], 'warning');
  for (const name of ['DalstonProcessDown', 'DeadLettersGrowing', 'RealtimeLatencyHigh']) assert.ok(rules.has(name), `operator alert ${name}`);
});

void test('every alert has a promtool case that fires and one that stays quiet', () => {
  const doc = parseYaml(readFileSync(ALERT_TESTS, 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[] };
  const cases = doc.tests.flatMap((t) => t.alert_rule_test ?? []);
  for (const rule of alertRules()) {
    const mine = cases.filter((c) => c.alertname === rule.alert);
    assert.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${rule.alert}: a firing case`);
    assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${rule.alert}: a quiet case`);
  }
});

// ---------------------------------------------------------------------------------------------- metric names, labels

/** Labels of every contract metric, read from the registries of core/metrics.ts (the one definition). */
function contractLabels(): Map<string, { labels: readonly string[]; histogram: boolean }> {
  const registry = createRegistry();
  engineMetrics(registry);
  orchestratorMetrics(registry);
  gatewayMetrics(registry);
  realtimeMetrics(registry);
  const out = new Map<string, { labels: readonly string[]; histogram: boolean }>();
  for (const m of registry.getMetricsAsArray()) {
    if (!m.name.startsWith('dalston_')) continue;
    const labels = (m as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
    out.set(m.name, { labels, histogram: String(m.type) === 'histogram' });
  }
  // Not in core/metrics.ts: Prometheus' own target health, and the dead-letter counter streams/ is to expose.
  out.set('up', { labels: [], histogram: false });
  out.set('dalston_stream_dead_letters_total', { labels: ['topic'], histogram: false });
  return out;
}

function allPromQL(): { where: string; expr: string }[] {
  return [
    ...alertRules().map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
    ...listDashboardPromQLTargets().map((t) => ({ where: `${t.dashboard} "${t.panelTitle}" ${t.refId}`, expr: t.expr })),
  ];
}

void test('every PromQL expression uses contract metric names and only their labels', () => {
  const known = contractLabels();
  assert.equal([...known.keys()].filter((n) => n !== 'up' && n !== 'dalston_stream_dead_letters_total').length, Object.keys(METRIC).length);
  for (const { where, expr } of allPromQL()) {
    const names = [...expr.matchAll(/\b(dalston_[a-z0-9_]+|up)(?=\s*[{[)\s]|$)/g)].map((m) => m[1] ?? '');
    assert.ok(names.length > 0, `${where}: no metric in ${expr}`);
    const allowed = new Set(['job', 'instance']);
    for (const raw of names) {
      const base = raw.replace(/_(bucket|sum|count)$/, '');
      const spec = known.get(raw) ?? (known.get(base)?.histogram ? known.get(base) : undefined);
      assert.ok(spec, `${where}: ${raw} is not a contract metric`);
      for (const l of spec.labels) allowed.add(l);
      if (raw !== base) allowed.add('le');
    }
    const used = [
      ...[...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...(m[1] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((x) => x[1] ?? '')),
      ...[...expr.matchAll(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/gi)].flatMap((m) => (m[1] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')),
    ];
    for (const l of used) assert.ok(allowed.has(l), `${where}: label ${l} is not a label of ${names.join(', ')}`);
  }
});

// ------------------------------------------------------------------------------------------------ a real Prometheus

let prometheus: PrometheusServer | undefined;

void test("Debian's Prometheus loads the alert rules and evaluates every PromQL expression of alerts and dashboards without error", async () => {
  // Only loopback: the compose scrape targets (gateway:8000, …) are not resolvable here.
  prometheus = await startPrometheus({ scrapeInterval: '15s', ruleFiles: [ALERTS], jobs: { prometheus: 'self' } });
  try {
    const rules = (await (await fetch(`${prometheus.url}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string }[] }[] } };
    const loaded = rules.data.groups.flatMap((g) => g.rules);
    assert.deepEqual(loaded.map((r) => r.name).sort(), alertRules().map((r) => r.alert).sort());
    const exprs = allPromQL();
    assert.ok(exprs.length >= 30, `${exprs.length} expressions`);
    for (const { where, expr } of exprs) {
      const res = await fetch(`${prometheus.url}/api/v1/query?${new URLSearchParams({ query: expr }).toString()}`);
      const body = (await res.json()) as { status: string; error?: string; errorType?: string };
      assert.equal(body.status, 'success', `${where}: ${body.errorType ?? ''} ${body.error ?? ''}\n${expr}`);
    }
    // The check has teeth: a broken expression is reported as bad_data.
    const bad = (await (await fetch(`${prometheus.url}/api/v1/query?${new URLSearchParams({ query: 'sum(rate(dalston_queue_depth[5m]) by (' }).toString()}`)).json()) as { status: string; errorType?: string };
    assert.equal(bad.status, 'error');
    assert.equal(bad.errorType, 'bad_data');
  } finally {
    await stopPrometheus(prometheus);
    prometheus = undefined;
  }
});

// -------------------------------------------------------------------------------------------------- docker compose

function composeCommand(): { cmd: string; prefix: string[] } {
  if (spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0) return { cmd: 'docker', prefix: ['compose'] };
  if (spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0) return { cmd: 'docker-compose', prefix: [] };
  throw new Error('neither `docker compose` (plugin) nor `docker-compose` is installed');
}

interface ComposeService {
  readonly image?: string;
  readonly build?: { context: string; dockerfile?: string };
  readonly command?: string[];
  readonly environment?: Readonly<Record<string, string | number | null>>;
  readonly ports?: readonly (string | { published: number | string; target: number })[];
  readonly volumes?: readonly (string | { type: string; source?: string; target: string })[];
  readonly profiles?: readonly string[];
  readonly depends_on?: Readonly<Record<string, { condition: string }>>;
}

/** What an operator exports before `docker compose up` (the compose file refuses to start without them). */
const COMPOSE_SECRETS = { DALSTON_KAFKA_PASSWORD: 'kafka-test-secret-0123', DALSTON_CLICKHOUSE_PASSWORD: 'clickhouse-test-secret-0123' };

function composeConfig(profiles: readonly string[], secrets: Readonly<Record<string, string>> = COMPOSE_SECRETS): { services: Record<string, ComposeService> } {
  const { cmd, prefix } = composeCommand();
  const env = { ...process.env };
  delete env['DALSTON_KAFKA_PASSWORD'];
  delete env['DALSTON_CLICKHOUSE_PASSWORD'];
  const r = run(cmd, [...prefix, '-f', COMPOSE_FILE, ...profiles.flatMap((p) => ['--profile', p]), 'config'], REPO_ROOT, { ...env, ...secrets });
  assert.equal(r.code, 0, r.out);
  return parseYaml(r.out) as { services: Record<string, ComposeService> };
}

function published(s: ComposeService | undefined): string[] {
  return (s?.ports ?? []).map((p) => (typeof p === 'string' ? p.replace(/\/tcp$/, '') : `${p.published}:${p.target}`));
}

void test('docker compose config parses the file with both profiles; services, ports and profiles match the guide', () => {
  const all = composeConfig(['monitoring', 'tracing']).services;
  for (const s of ['kafka', 'clickhouse', 'migrate', 'gateway', 'orchestrator', 'engine-audio-prepare', 'engine-transcribe', 'engine-merge', 'prometheus', 'grafana', 'jaeger']) assert.ok(all[s], `service ${s}`);
  assert.ok(published(all['gateway']).includes('8000:8000'), 'API on 8000');
  assert.ok(published(all['prometheus']).includes('9090:9090'), 'Prometheus on 9090');
  assert.ok(published(all['grafana']).includes('3001:3000'), 'Grafana on 3001');
  assert.ok(published(all['jaeger']).includes('16686:16686'), 'Jaeger UI on 16686');
  assert.ok(published(all['jaeger']).includes('4318:4318'), 'OTLP http on 4318');
  assert.match(all['jaeger']?.image ?? '', /^jaegertracing\/jaeger:2\./, 'Jaeger v2');
  assert.equal(all['grafana']?.environment?.['GF_SECURITY_ADMIN_USER'], 'admin');
  assert.equal(all['grafana']?.environment?.['GF_SECURITY_ADMIN_PASSWORD'], 'dalston');
  assert.match(String(all['grafana']?.environment?.['GF_INSTALL_PLUGINS']), /grafana-clickhouse-datasource/);
  assert.deepEqual(all['prometheus']?.profiles, ['monitoring']);
  assert.deepEqual(all['grafana']?.profiles, ['monitoring']);
  assert.deepEqual(all['jaeger']?.profiles, ['tracing']);

  const expected: Record<string, { service: string; engine?: string; port: [string, string] }> = {
    gateway: { service: 'dalston-gateway', port: ['DALSTON_GATEWAY_PORT', '8000'] },
    orchestrator: { service: 'dalston-orchestrator', port: ['DALSTON_ACTORS_PORT', '8001'] },
    'engine-audio-prepare': { service: 'dalston-engine', engine: 'audio-prepare', port: ['DALSTON_ENGINE_PORT', '8010'] },
    'engine-transcribe': { service: 'dalston-engine', port: ['DALSTON_ENGINE_PORT', '8011'] },
    'engine-merge': { service: 'dalston-engine', engine: 'merge', port: ['DALSTON_ENGINE_PORT', '8012'] },
  };
  for (const [name, want] of Object.entries(expected)) {
    const s = all[name];
    const cmd = s?.command ?? [];
    // The launch order the platform notes demand: loader hook, then the SDK, then the app.
    assert.deepEqual(cmd.slice(0, 5), ['node', '--import', './dist/core/telemetry/register-hooks.js', '--import', './dist/core/telemetry/start-telemetry.js'], `${name} command`);
    assert.equal(s?.environment?.['DALSTON_SERVICE_NAME'], want.service);
    if (want.engine) assert.equal(s?.environment?.['DALSTON_ENGINE_ID'], want.engine);
    assert.equal(String(s?.environment?.[want.port[0]]), want.port[1]);
    assert.equal(s?.environment?.['OTEL_EXPORTER_OTLP_ENDPOINT'], 'http://jaeger:4318');
    assert.equal(s?.environment?.['DALSTON_OTEL_ENABLED'], 'false', 'tracing off unless OTEL_ENABLED=true');
    assert.deepEqual(Object.keys(s?.depends_on ?? {}).sort(), ['clickhouse', 'kafka', 'migrate'], `${name} waits for Kafka, ClickHouse and the migrations`);
  }
  // The transcribe service runs an engine this build has, the one the actor hosts send model-less jobs to.
  const transcribe = all['engine-transcribe']?.environment?.['DALSTON_ENGINE_ID'];
  assert.ok(knownEngineIds().includes(String(transcribe)), `engine-transcribe runs a known engine: ${String(transcribe)}`);
  assert.equal(all['orchestrator']?.environment?.['DALSTON_TRANSCRIBE_ENGINE'], transcribe);

  // Compose v2 leaves profiled services out of `config` without their profile; Debian's docker-compose 1.29 lists
  // every service whatever the flags, so there the `profiles` fields asserted above are the check.
  if (composeCommand().cmd === 'docker') {
    const base = composeConfig([]).services;
    for (const s of ['prometheus', 'grafana', 'jaeger']) assert.equal(base[s], undefined, `${s} only with its profile`);
    assert.ok(base['gateway']);
  }
});

void test('every file the compose file and the provisioning refer to exists', () => {
  const all = composeConfig(['monitoring', 'tracing']).services;
  let binds = 0;
  for (const [name, s] of Object.entries(all)) {
    if (s.build) {
      assert.ok(existsSync(s.build.context), `${name}: build context ${s.build.context}`);
      assert.ok(existsSync(join(s.build.context, s.build.dockerfile ?? 'Dockerfile')), `${name}: Dockerfile`);
    }
    for (const v of s.volumes ?? []) {
      const source = typeof v === 'string' ? v.split(':')[0] ?? '' : v.type === 'bind' ? v.source ?? '' : '';
      if (!isAbsolute(source)) continue; // a named volume
      binds += 1;
      assert.ok(existsSync(source), `${name}: mounted ${source}`);
    }
  }
  assert.equal(binds, 5, 'prometheus.yml, alerts.yml, grafana provisioning, dashboards, the Kafka SASL start script and properties');
  const kafkaMount = (all['kafka']?.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':')[0] : v.source)).find((src) => src === join(COMPOSE_DIR, 'kafka'));
  assert.ok(kafkaMount, 'compose/kafka is mounted into the Kafka container');
  for (const f of ['start-sasl.sh', 'server.properties']) assert.ok(existsSync(join(kafkaMount, f)), `compose/kafka/${f}`);

  // Grafana: the provider reads the directory the dashboards are mounted at; every data source uid exists.
  const grafanaMounts = (all['grafana']?.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':') : [v.source ?? '', v.target]));
  const dashMount = grafanaMounts.find(([src]) => src === join(COMPOSE_DIR, 'grafana', 'dashboards'));
  const providers = parseYaml(readFileSync(join(PROVISIONING, 'dashboards', 'dalston.yml'), 'utf8')) as { providers: { options: { path: string } }[] };
  assert.equal(providers.providers[0]?.options.path, dashMount?.[1]);
  assert.ok(grafanaMounts.some(([src, dst]) => src === PROVISIONING && dst === '/etc/grafana/provisioning'));
  const ds = parseYaml(readFileSync(join(PROVISIONING, 'datasources', 'dalston.yml'), 'utf8')) as { datasources: { uid: string; type: string; url?: string; jsonData?: Record<string, unknown> }[] };
  const byUid = new Map(ds.datasources.map((d) => [d.uid, d] as const));
  assert.equal(byUid.get('prometheus')?.url, 'http://prometheus:9090');
  assert.equal(byUid.get('clickhouse')?.type, 'grafana-clickhouse-datasource');
  assert.equal(byUid.get('clickhouse')?.jsonData?.['defaultDatabase'], 'dalston');
  for (const t of listDashboardTargets()) assert.ok(byUid.has(t.datasourceUid), `${t.dashboard} "${t.panelTitle}": data source ${t.datasourceUid}`);
});

// ------------------------------------------------------------------------------------------------------ dashboards

void test("the four contract dashboards exist; operations holds the guide's five panels verbatim", () => {
  assert.deepEqual(dashboardFiles(), ['dalston-cost.json', 'dalston-engines.json', 'dalston-operations.json', 'dalston-overview.json']);
  const ops = listDashboardPromQLTargets().filter((t) => t.dashboard === 'dalston-operations.json');
  const exprs = new Set(ops.map((t) => squash(t.expr)));
  const guide = [
    'histogram_quantile(0.95, sum(rate(dalston_engine_task_duration_seconds_bucket[5m])) by (engine_id, le))',
    'dalston_queue_depth',
    'sum(rate(dalston_engine_tasks_processed_total{status="failure"}[5m])) by (engine_id) / sum(rate(dalston_engine_tasks_processed_total[5m])) by (engine_id)',
    'sum(rate(dalston_orchestrator_jobs_total{status="completed"}[5m]))',
    'histogram_quantile(0.95, sum(rate(dalston_engine_queue_wait_seconds_bucket[5m])) by (engine_id, le))',
  ];
  for (const g of guide) assert.ok(exprs.has(squash(g)), `operations panel: ${g}`);
  assert.equal(new Set(ops.map((t) => t.panelId)).size, 5);
  const sqlDashboards = new Set(listDashboardSqlTargets().map((t) => t.dashboard));
  assert.deepEqual([...sqlDashboards].sort(), ['dalston-cost.json', 'dalston-engines.json']);
});

void test('SQL targets use only macros 18.16 can run; anything else is rejected', () => {
  for (const t of listDashboardSqlTargets()) {
    assert.ok(['table', 'timeSeries'].includes(t.queryType), `${t.dashboard} "${t.panelTitle}": queryType ${t.queryType}`);
    assert.doesNotMatch(t.rawSql, /\$__(timeGroup|timeInterval|interval)|\$__\w+_ms\b/, `${t.dashboard} "${t.panelTitle}"`);
    assert.doesNotMatch(expandGrafanaSqlMacros(t.rawSql, { from: 0, to: 1 }), /\$/);
  }
  assert.throws(() => expandGrafanaSqlMacros('SELECT $__timeGroup(time, 1h) FROM t', { from: 0, to: 1 }), /unsupported Grafana macro/);
  assert.throws(() => expandGrafanaSqlMacros('SELECT 1 WHERE $__timeFilter_ms(time)', { from: 0, to: 1 }), /unsupported/);
  assert.equal(expandGrafanaSqlMacros('WHERE $__timeFilter(time) AND x < $__toTime', { from: 10, to: 20 }), 'WHERE time >= toDateTime(10) AND time <= toDateTime(20) AND x < toDateTime(20)');
});

// ----------------------------------------------------------------------------------- dashboard SQL on real ClickHouse

let clickhouse: Awaited<ReturnType<typeof startClickHouse>> | undefined;
let chDir: string | undefined;

after(async () => {
  if (prometheus) await stopPrometheus(prometheus);
  if (clickhouse) await clickhouse.stop();
  if (chDir) rmSync(chDir, { recursive: true, force: true });
});

const TASK_FACT_COLUMNS = [
  'time', 'time_ms', 'job_id', 'task_id', 'tenant_id', 'stage', 'engine_id', 'model', 'language', 'status',
  'audio_duration_seconds', 'processing_ms', 'queue_wait_ms', 'model_load_ms', 'retries', 'attempt', 'trace_id', 'request_id',
] as const;
type TaskFact = Record<(typeof TASK_FACT_COLUMNS)[number], string | number>;

function fact(at: string, job: string, stage: string, engine: string, model: string, language: string, status: string, audio: number, processingMs: number, extra: Partial<TaskFact> = {}): TaskFact {
  const ms = Date.parse(`${at}Z`);
  return {
    time: at.replace('T', ' '), time_ms: ms, job_id: job, task_id: `${job.replace('job_', 'task_')}_${stage}`, tenant_id: 'tenant_a', stage, engine_id: engine, model, language, status,
    audio_duration_seconds: audio, processing_ms: processingMs, queue_wait_ms: 1500, model_load_ms: 0, retries: 0, attempt: 1, trace_id: '', request_id: '', ...extra,
  };
}

void test('every dashboard SQL target runs on ClickHouse 18.16 with the migrations; cost and RTF panels compute the right numbers', async () => {
  chDir = mkdtempSync(join(tmpdir(), 'dalston-ch-'));
  const [httpPort, tcpPort] = await twoFreePorts();
  clickhouse = await startClickHouse({ dataDir: chDir, httpPort, tcpPort, log: silentLogger });
  const ch = createClickHouse({ url: clickhouse.url, database: 'dalston', log: silentLogger });
  try {
    // Migrate with the compose file's own one-shot `migrate` command, so that script is proven to work.
    const compose = parseYaml(readFileSync(COMPOSE_FILE, 'utf8')) as { services: Record<string, { command: string[] }> };
    const [node, ...args] = compose.services['migrate']?.command ?? [];
    assert.equal(node, 'node');
    const migrated = spawnSync(process.execPath, args, {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env['PATH'] ?? '', DALSTON_CLICKHOUSE_URL: clickhouse.url, DALSTON_CLICKHOUSE_DATABASE: 'dalston' },
    });
    assert.equal(migrated.status, 0, `${migrated.stdout}${migrated.stderr}`);
    assert.match(migrated.stdout, /"msg":"migrations applied"/);
    // Idempotent, as a restarted stack needs: a second run through the library applies nothing.
    assert.deepEqual((await applyMigrations(ch, 'dalston', silentLogger)).applied, []);
    // Hour 09: job A (en, 2 min audio, RTF 0.5) and job B (de, 1 min, RTF 0.75, one failed attempt first).
    // Hour 10: job C (en, 30 s, RTF 0.5).
    const rows: TaskFact[] = [
      fact('2026-11-27T09:10:00', 'job_a', 'prepare', 'audio-prepare', '', 'en', 'success', 120, 2000),
      fact('2026-11-27T09:12:00', 'job_a', 'transcribe', 'pocketsphinx', 'pocketsphinx-en-us', 'en', 'success', 120, 60000, { model_load_ms: 3000 }),
      fact('2026-11-27T09:13:00', 'job_a', 'merge', 'merge', '', 'en', 'success', 120, 500),
      fact('2026-11-27T09:40:00', 'job_b', 'prepare', 'audio-prepare', '', 'de', 'success', 60, 1000),
      fact('2026-11-27T09:41:00', 'job_b', 'transcribe', 'moonshine', 'moonshine-tiny', 'de', 'failure', 60, 10000),
      fact('2026-11-27T09:42:00', 'job_b', 'transcribe', 'moonshine', 'moonshine-tiny', 'de', 'success', 60, 45000, { retries: 1, attempt: 2 }),
      fact('2026-11-27T09:43:00', 'job_b', 'merge', 'merge', '', 'de', 'success', 60, 500),
      fact('2026-11-27T10:20:00', 'job_c', 'prepare', 'audio-prepare', '', 'en', 'success', 30, 500),
      fact('2026-11-27T10:21:00', 'job_c', 'transcribe', 'pocketsphinx', 'pocketsphinx-en-us', 'en', 'success', 30, 15000),
      fact('2026-11-27T10:22:00', 'job_c', 'merge', 'merge', '', 'en', 'success', 30, 500),
    ];
    await ch.insert('task_facts', rows, [...TASK_FACT_COLUMNS]);
    const range = { from: Date.parse('2026-11-27T00:00:00Z') / 1000, to: Date.parse('2026-11-28T00:00:00Z') / 1000 };

    const results = new Map<string, Record<string, unknown>[]>();
    const targets = listDashboardSqlTargets();
    assert.ok(targets.length >= 8, `${targets.length} SQL targets`);
    for (const t of targets) {
      const sql = expandGrafanaSqlMacros(t.rawSql, range);
      try {
        const rows = await ch.query<Record<string, unknown>>(sql);
        results.set(t.panelTitle, rows);
        assert.ok(rows.length > 0, `${t.dashboard} "${t.panelTitle}" returned no rows for the seeded data`);
        if (t.queryType === 'timeSeries') {
          // The plugin takes the first DateTime column as the time axis: `t`, first, in order.
          const times = rows.map((r) => Object.values(r)[0]);
          assert.ok(times.every((v) => typeof v === 'string' && /^\d{4}-\d{2}-\d{2} \d{2}:00:00$/.test(v)), `${t.panelTitle}: first column is the hour`);
          assert.deepEqual(times, [...times].sort(), `${t.panelTitle}: rows in time order`);
        }
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        assert.fail(`${t.dashboard} "${t.panelTitle}" failed on ClickHouse ${clickhouse.version}: ${error instanceof Error ? error.message : String(error)}\n${sql}`);
      }
    }
    const col = (title: string, name: string): unknown[] => (results.get(title) ?? []).map((r) => r[name]);
    assert.deepEqual(col('Jobs per hour', 'jobs'), [2, 1]);
    assert.deepEqual(col('Jobs per hour', 't'), ['2026-11-27 09:00:00', '2026-11-27 10:00:00']);
    assert.deepEqual(col('Audio minutes processed per hour', 'audio_minutes'), [3, 0.5]);
    // Hour 09: 62.5 s (job A) + 56.5 s (job B, failed attempt included) over 3 transcribed minutes.
    const perMin = col('Processing seconds per audio minute', 'processing_s_per_audio_min') as number[];
    assert.ok(Math.abs((perMin[0] ?? 0) - 119 / 3) < 1e-9, String(perMin[0]));
    assert.ok(Math.abs((perMin[1] ?? 0) - 16 / 0.5) < 1e-9, String(perMin[1]));
    const byLang = new Map((results.get('Real-time factor by language (transcription)') ?? []).map((r) => [r['language'], r] as const));
    assert.equal(byLang.get('en')?.['tasks'], 2);
    assert.ok(Math.abs(Number(byLang.get('en')?.['rtf_p50']) - 0.5) < 1e-9);
    assert.equal(byLang.get('de')?.['tasks'], 1, 'only the successful attempt');
    assert.ok(Math.abs(Number(byLang.get('de')?.['rtf_p50']) - 0.75) < 1e-9);
    const byModel = (results.get('Processing time p50 / p95 / p99 by engine and model') ?? []).find((r) => r['model'] === 'pocketsphinx-en-us');
    assert.equal(byModel?.['tasks'], 2);
    assert.ok(Number(byModel?.['p50_s']) >= 15 && Number(byModel?.['p99_s']) <= 60);
    const tenants = results.get('Audio minutes by tenant') ?? [];
    assert.deepEqual(tenants.map((r) => [r['tenant_id'], r['jobs'], r['audio_minutes']]), [['tenant_a', 3, 3.5]]);
  } finally {
    await ch.close();
  }
});

// ------------------------------------------------------------------------------------------------------------- docs

void test('docs/observability.md names the ports, credentials and launch command the compose file uses', () => {
  const doc = readFileSync(DOCS, 'utf8');
  for (const s of ['http://localhost:16686', 'http://localhost:3001', 'admin / dalston', 'http://localhost:9090', 'http://localhost:8000', '--profile monitoring', '--profile tracing']) {
    assert.ok(doc.includes(s), `docs mention ${s}`);
  }
  assert.ok(doc.includes('node --import ./dist/core/telemetry/register-hooks.js --import ./dist/core/telemetry/start-telemetry.js'), 'launch order documented');
  for (const name of alertRules().map((r) => r.alert)) assert.ok(doc.includes(name), `docs describe alert ${name}`);
});

void test('issue 11 defect 18: the compose deployment requires Kafka SASL/SCRAM and a ClickHouse password, and every service is configured with them', () => {
  // Without the secrets the file does not even resolve: nobody starts an unauthenticated deployment by accident.
  const { cmd, prefix } = composeCommand();
  const env = { ...process.env };
  delete env['DALSTON_KAFKA_PASSWORD'];
  delete env['DALSTON_CLICKHOUSE_PASSWORD'];
  const bare = run(cmd, [...prefix, '-f', COMPOSE_FILE, 'config'], REPO_ROOT, env);
  assert.notEqual(bare.code, 0);
  assert.match(bare.out, /set DALSTON_(KAFKA|CLICKHOUSE)_PASSWORD/);

  const all = composeConfig(['monitoring', 'tracing']).services;
  const kafka = all['kafka'];
  assert.deepEqual((kafka as { entrypoint?: string[] } | undefined)?.entrypoint, ['/bin/bash', '/opt/dalston/kafka/start-sasl.sh']);
  assert.equal(kafka?.environment?.['KAFKA_PASSWORD'], COMPOSE_SECRETS.DALSTON_KAFKA_PASSWORD);
  assert.deepEqual(published(kafka), [], 'Kafka is not published on the host');
  const clickhouse = all['clickhouse'];
  assert.equal(clickhouse?.environment?.['CLICKHOUSE_USER'], 'dalston');
  assert.equal(clickhouse?.environment?.['CLICKHOUSE_PASSWORD'], COMPOSE_SECRETS.DALSTON_CLICKHOUSE_PASSWORD);
  for (const p of clickhouse?.ports ?? []) {
    const hostIp = typeof p === 'string' ? p.split(':')[0] : (p as { host_ip?: string }).host_ip;
    assert.equal(hostIp, '127.0.0.1', `ClickHouse is published on the host's loopback only: ${JSON.stringify(p)}`);
  }
  for (const name of ['migrate', 'gateway', 'orchestrator', 'engine-audio-prepare', 'engine-transcribe', 'engine-merge', 'realtime']) {
    const e = all[name]?.environment ?? {};
    assert.equal(e['DALSTON_KAFKA_SASL_MECHANISM'], 'scram-sha-512', `${name} authenticates to Kafka`);
    assert.equal(e['DALSTON_KAFKA_USERNAME'], kafka?.environment?.['KAFKA_USER'], `${name} Kafka user`);
    assert.equal(e['DALSTON_KAFKA_PASSWORD'], COMPOSE_SECRETS.DALSTON_KAFKA_PASSWORD, `${name} Kafka password`);
    assert.equal(e['DALSTON_CLICKHOUSE_USER'], 'dalston', `${name} ClickHouse user`);
    assert.equal(e['DALSTON_CLICKHOUSE_PASSWORD'], COMPOSE_SECRETS.DALSTON_CLICKHOUSE_PASSWORD, `${name} ClickHouse password`);
  }
  assert.equal(all['grafana']?.environment?.['DALSTON_CLICKHOUSE_PASSWORD'], COMPOSE_SECRETS.DALSTON_CLICKHOUSE_PASSWORD);

  // The broker's only listener other containers reach takes SCRAM-SHA-512; the controller stays on the container's loopback.
  const props = readFileSync(join(COMPOSE_DIR, 'kafka', 'server.properties'), 'utf8');
  assert.match(props, /^listeners=SASL_PLAINTEXT:\/\/:9092,CONTROLLER:\/\/localhost:9093$/m);
  assert.match(props, /^sasl\.enabled\.mechanisms=SCRAM-SHA-512$/m);
  assert.doesNotMatch(props, /(^|[,=])PLAINTEXT:\/\/(?!localhost)/m, 'no unauthenticated listener on the network');
  // The entry point parses, refuses to start without a password, and formats with the SCRAM user it configures.
  const script = join(COMPOSE_DIR, 'kafka', 'start-sasl.sh');
  assert.equal(spawnSync('bash', ['-n', script]).status, 0, 'start-sasl.sh is valid bash');
  const noPassword = spawnSync('bash', [script], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', KAFKA_USER: 'dalston' } });
  assert.notEqual(noPassword.status, 0);
  assert.match(noPassword.stderr, /KAFKA_PASSWORD must be set/);
  const weak = spawnSync('bash', [script], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', KAFKA_USER: 'dalston', KAFKA_PASSWORD: 'short"quote' } });
  assert.notEqual(weak.status, 0);
  assert.match(weak.stderr, /KAFKA_PASSWORD must be at least 12 of/);
  assert.match(readFileSync(script, 'utf8'), /--add-scram "SCRAM-SHA-512=\[name=\$KAFKA_USER,password=\$KAFKA_PASSWORD\]"/);
  const datasource = readFileSync(join(COMPOSE_DIR, 'grafana', 'provisioning', 'datasources', 'dalston.yml'), 'utf8');
  assert.match(datasource, /username: dalston/);
  assert.match(datasource, /password: \$\{DALSTON_CLICKHOUSE_PASSWORD\}/);
});
