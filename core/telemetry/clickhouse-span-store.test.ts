/**
 * DALSTON_OTEL_SPAN_STORE=clickhouse for real: the fixture app runs with both preloads and no OTLP exporter, and
 * its spans must land in the `spans` table of a real ClickHouse (18.16 here) with the project's migrations, so the
 * docs' "waterfall of a job" query answers without Jaeger.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClickHouse } from '../../clickhouse/client.js';
import { applyMigrations } from '../../clickhouse/migrate.js';
import { REPO_ROOT } from '../config.js';
import { silentLogger } from '../logger.js';
import { freeClickHousePorts, startClickHouse } from '../../infra/clickhouse-server.js';

const DIST = join(REPO_ROOT, 'dist', 'core', 'telemetry');

function runFixture(env: Readonly<Record<string, string>>): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', join(DIST, 'register-hooks.js'), '--import', join(DIST, 'start-telemetry.js'), join(DIST, 'fixtures', 'instrumented-app.js')], {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out });
    });
  });
}

interface SpanRowOut {
  trace_id: string;
  span_id: string;
  parent_span_id: string;
  name: string;
  service: string;
  kind: string;
  start_time: string;
  duration_us: number;
  job_id: string;
  keys: string[];
  values: string[];
}

void test('with DALSTON_OTEL_SPAN_STORE=clickhouse a process writes its span tree to the spans table', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dalston-spans-'));
  const server = await startClickHouse({ dataDir: dir, ...(await freeClickHousePorts()), log: silentLogger });
  const ch = createClickHouse({ url: server.url, database: 'dalston', log: silentLogger });
  try {
    await applyMigrations(ch, 'dalston', silentLogger);
    const run = await runFixture({
      DALSTON_OTEL_ENABLED: 'true',
      DALSTON_OTEL_SPAN_STORE: 'clickhouse',
      OTEL_TRACES_EXPORTER: 'none',
      DALSTON_CLICKHOUSE_URL: server.url,
      DALSTON_CLICKHOUSE_DATABASE: 'dalston',
      DALSTON_SERVICE_NAME: 'dalston-engine',
      DALSTON_ENGINE_ID: 'fixture-engine',
    });
    assert.equal(run.signal, 'SIGTERM', run.out);
    const result = JSON.parse(run.out.split('\n').find((l) => l.startsWith('{"traceId"')) ?? '{}') as { traceId?: string };
    assert.match(result.traceId ?? '', /^[0-9a-f]{32}$/);

    // The docs' waterfall query, by job id.
    const rows = await ch.query<SpanRowOut>(
      `SELECT trace_id, span_id, parent_span_id, name, service, kind, toString(start_time) AS start_time, duration_us, job_id,
              attributes.key AS keys, attributes.value AS values
       FROM dalston.spans
       WHERE trace_id IN (SELECT trace_id FROM dalston.spans WHERE job_id = 'job_fixture')
       ORDER BY start_us`,
    );
    const root = rows.find((r) => r.name === 'fixture.root');
    assert.ok(root, JSON.stringify(rows.map((r) => r.name)));
    assert.equal(root.trace_id, result.traceId);
    assert.equal(root.parent_span_id, '');
    assert.equal(root.service, 'dalston-engine');
    assert.equal(root.kind, 'INTERNAL');
    assert.equal(root.job_id, 'job_fixture');
    assert.deepEqual(root.keys, ['dalston.job_id']);
    assert.deepEqual(root.values, ['job_fixture']);
    assert.ok(Math.abs(Date.parse(`${root.start_time.replace(' ', 'T')}Z`) - Date.now()) < 120_000, `start_time is UTC now-ish: ${root.start_time}`);
    const send = rows.find((r) => r.kind === 'PRODUCER');
    assert.ok(send, 'the kafkajs send span');
    assert.equal(send.parent_span_id, root.span_id);
    const client = rows.find((r) => r.kind === 'CLIENT');
    const srv = rows.find((r) => r.kind === 'SERVER');
    assert.equal(client?.parent_span_id, root.span_id);
    assert.equal(srv?.parent_span_id, client?.span_id);
    assert.ok(rows.every((r) => r.trace_id === root.trace_id && r.duration_us >= 0));
  } finally {
    await ch.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
