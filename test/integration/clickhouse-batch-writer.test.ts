/**
 * The batch writer against a real ClickHouse, including an outage: the server is stopped while rows keep coming,
 * then restarted; every row must arrive exactly once. Always uses a private server (the test stops it).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../core/logger.js';
import { clickHouseBatchWriter } from '../../clickhouse/batch-writer.js';
import { applyMigrations } from '../../clickhouse/migrate.js';
import { formatDateTime } from '../../clickhouse/sql.js';
import { until } from '../../harness/metrics-scrape.js';
import { clickhouseForTest, processExists, type ClickHouseFixture } from '../../harness/clickhouse-fixture.js';

let ch: ClickHouseFixture;

before(async () => {
  ch = await clickhouseForTest('batch', { ownServer: true });
  console.log(`ClickHouse ${ch.version} at ${ch.url}, pid ${ch.server?.pid ?? '?'}`);
  await applyMigrations(ch.client, ch.database, silentLogger);
});

after(async () => {
  await ch?.close();
});

const T0 = Date.UTC(2026, 10, 28, 10, 0, 0);

function factRow(i: number) {
  const t = T0 + i * 1000;
  return {
    time: formatDateTime(t), time_ms: t, job_id: `job_${Math.floor(i / 10)}`, task_id: `task_${i}`, tenant_id: 't1', stage: 'transcribe',
    engine_id: 'pocketsphinx', model: 'en-us', language: 'en', status: 'success', audio_duration_seconds: 2, processing_ms: 1000,
    queue_wait_ms: 5, model_load_ms: 0, retries: 0, attempt: 1, trace_id: '', request_id: `req_${i}`,
  };
}
type FactRow = ReturnType<typeof factRow>;
const COLUMNS = Object.keys(factRow(0)) as (keyof FactRow)[];

async function counts(): Promise<{ rows: number; unique: number }> {
  const r = await ch.client.query<{ rows: number; unique: number }>(`SELECT count() AS rows, uniqExact(task_id) AS unique FROM task_facts`);
  return r[0] ?? { rows: -1, unique: -1 };
}

void test('rows survive a ClickHouse outage and arrive exactly once', async () => {
  const writer = clickHouseBatchWriter<FactRow>(ch.client, 'task_facts', COLUMNS, {
    log: silentLogger, batchRows: 50, maxPendingRows: 400, flushIntervalMs: 50, retryDelayMs: 50, maxRetryDelayMs: 500,
  });
  let next = 0;
  for (; next < 200; next++) assert.equal(writer.add(factRow(next)), true);
  await writer.flush();
  assert.deepEqual(await counts(), { rows: 200, unique: 200 });
  assert.equal(writer.failedAttempts, 0);

  const pid = ch.server?.pid ?? -1;
  await ch.stopServer();
  assert.equal(processExists(pid), false, 'server is down');

  // While ClickHouse is down rows are kept up to maxPendingRows; then add() pushes back.
  for (; next < 600; next++) assert.equal(writer.add(factRow(next)), true, `row ${next} accepted`);
  assert.equal(writer.add(factRow(next)), false, 'buffer full: back-pressure');
  assert.equal(writer.refusedRows, 1);
  // Wait for the retries themselves, not for a fixed time: a loaded machine only makes them come later.
  await until('two failed attempts during the outage', async () => (writer.failedAttempts >= 2 ? true : undefined), 60_000);
  assert.equal(writer.pendingRows, 400);
  assert.equal(writer.writtenRows, 200, 'nothing written while the server is down');
  console.log(`outage: ${writer.pendingRows} rows pending, ${writer.failedAttempts} failed attempts, last error ${writer.lastError?.name ?? '-'}`);

  const writable = writer.whenWritable();
  await ch.startServer();
  await writable;
  for (; next < 650; next++) assert.equal(writer.add(factRow(next)), true);
  await writer.close();
  assert.equal(writer.pendingRows, 0);
  assert.equal(writer.writtenRows, 650);
  assert.deepEqual(await counts(), { rows: 650, unique: 650 });
  // The rollup saw every row exactly once too.
  const rollup = await ch.client.query<{ n: number }>(`SELECT sum(task_count) AS n FROM task_hourly`);
  assert.equal(rollup[0]?.n, 650);
});
