/**
 * The ClickHouse sink on the real Kafka and ClickHouse of the suite: facts and audit events are written once however
 * often they are delivered (a re-sent outbox, a redelivery after a restart), snapshots are written in batches rather
 * than one insert per message, and the actors' bookkeeping records in jobs.state (claims, tombstones) are skipped.
 * Each test pins a finding of the actor-runtime correctness issue (named in its title), or says what lands in which
 * table: a snapshot's jobs and tasks rows (the newest revision wins, however often and in whatever order snapshots
 * arrive), a fact's task_facts row, an audit event's audit_events row.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jobRow, taskRows } from '../../clickhouse/job-rows.js';
import { applyMigrations } from '../../clickhouse/migrate.js';
import { ClickHouseSink } from '../../clickhouse/sink.js';
import { silentLogger } from '../../core/logger.js';
import { ClickHouseJobReader } from '../../gateway/adapters/clickhouse-job-reader.js';
import { jobViewFromState } from '../../gateway/job-view.js';
import {
  ANALYTICS, JOB_STATE, SCHEMA_VERSION, claimKey, consumerGroupLag, encodeMessage, newMessageHeaders, type AnalyticsMessage, type JobState,
} from '../../streams/index.js';
import { clickhouseForTest } from '../../harness/clickhouse-fixture.js';
import { eventually, raw, sleep, startRuntimeFixture, type RuntimeFixture } from '../support/runtime-fixture.js';

function fact(jobId: string, attempt: number): AnalyticsMessage {
  return {
    v: SCHEMA_VERSION, type: 'analytics.task_fact', time: Date.now(), jobId, taskId: `task_${jobId}_prepare`, tenantId: 'default',
    stage: 'prepare', engineId: 'audio-prepare', model: '', language: 'en', status: 'success', audioDurationSeconds: 2, processingMs: 100,
    queueWaitMs: 5, modelLoadMs: 0, retries: 0, attempt, traceId: '', requestId: 'req_x',
  };
}

function audit(jobId: string): AnalyticsMessage {
  return {
    v: SCHEMA_VERSION, type: 'analytics.audit_event', time: Date.now(), eventId: `${jobId}:job.completed`, eventType: 'job.completed',
    tenantId: 'default', actorKeyId: 'key', jobId, sessionId: '', audioDurationSeconds: 2, requestId: 'req_x', traceId: '', details: '{}',
  };
}

function snapshot(jobId: string, revision: number): JobState {
  return {
    jobId, tenantId: 'default', keyId: 'key', requestId: 'req_x', status: 'running', createdAt: Date.now(), params: {},
    audio: { key: 'k', filename: 'a.wav', bytes: 1, contentType: 'audio/wav' }, tasks: [], revision, epoch: 1,
  };
}

test('finding 11: task facts and audit events are stored once however often they are delivered, also after the sink re-reads everything', async () => {
  const f = await startRuntimeFixture('sinkdedup');
  const ch = await clickhouseForTest('sinkdedup');
  await applyMigrations(ch.client, ch.database, silentLogger);
  const newSink = () => new ClickHouseSink({ kafka: f.kafka, clickhouse: ch.client, deadLetter: f.streams.deadLetter, topicPrefix: f.prefix, log: silentLogger, flushIntervalMs: 100 });
  const count = async (table: string, jobId: string): Promise<number> =>
    Number((await ch.client.query<{ n: number }>(`SELECT count() AS n FROM ${ch.database}.${table} WHERE job_id = '${jobId}'`))[0]?.n ?? 0);
  try {
    const dlq = await f.recorder('dead-letter', (v) => JSON.parse(v.toString('utf8')) as Record<string, unknown>);
    const send = async (messages: AnalyticsMessage[]): Promise<void> => {
      await f.streams.producer.sendBatch([{ topic: f.topic(ANALYTICS.name), messages: messages.map((m) => ({ key: m.jobId, value: encodeMessage(m), headers: newMessageHeaders({}) })) }]);
    };
    // The same fact and event twice (a re-sent outbox), plus a second attempt's fact that must be kept.
    await send([fact('job_d1', 1), audit('job_d1'), fact('job_d1', 1), audit('job_d1'), fact('job_d1', 2)]);
    // Claims and tombstones in jobs.state are not job history.
    await f.streams.producer.sendBatch([{
      topic: f.topic(JOB_STATE.name),
      messages: [
        { key: claimKey(0), partition: 0, value: encodeMessage({ v: SCHEMA_VERSION, type: 'partition.claim', partition: 0, epoch: 1, owner: 'x', at: Date.now() }), headers: newMessageHeaders({}) },
        { key: 'job_gone', value: null, headers: newMessageHeaders({}) },
      ],
    }]);
    const sink = newSink();
    await sink.start();
    await eventually(async () => ((await count('task_facts', 'job_d1')) === 2 && (await count('audit_events', 'job_d1')) === 1 ? true : undefined), 20_000, 'rows written');
    await sleep(1000);
    await sink.close();
    // Redelivery: the group's offsets go back to the start, as after a crash before the commit.
    const group = `${f.prefix.replace(/\.$/, '')}-sink-clickhouse`;
    for (const t of [ANALYTICS.name, JOB_STATE.name]) await f.streams.admin.resetOffsets({ groupId: group, topic: f.topic(t), earliest: true });
    const again = newSink();
    await again.start();
    await eventually(() => (again.duplicatesDropped >= 3 ? true : undefined), 20_000, 'the re-read duplicates were dropped');
    await sleep(500);
    assert.equal(await count('task_facts', 'job_d1'), 2, 'one fact per task attempt');
    assert.equal(await count('audit_events', 'job_d1'), 1, 'one job.completed row');
    await again.close();
    assert.equal(dlq.records.length, 0, 'claims and tombstones are not dead-lettered');
  } finally {
    await ch.close();
    await f.stop();
  }
});

test('finding 12: snapshots are written in batches, not one insert per message', async () => {
  const f = await startRuntimeFixture('sinkbatch');
  const ch = await clickhouseForTest('sinkbatch');
  await applyMigrations(ch.client, ch.database, silentLogger);
  try {
    const states = await f.recorder('jobs.state', raw);
    const messages = Array.from({ length: 200 }, (_, i) => ({
      key: `job_b${i % 20}`, value: encodeMessage({ v: SCHEMA_VERSION, type: 'job.snapshot', state: snapshot(`job_b${i % 20}`, i) }), headers: newMessageHeaders({}),
    }));
    await f.streams.producer.sendBatch([{ topic: f.topic(JOB_STATE.name), messages }]);
    await eventually(() => (states.records.length === 200 ? true : undefined), 20_000, 'snapshots in the topic');
    const sink = new ClickHouseSink({ kafka: f.kafka, clickhouse: ch.client, deadLetter: f.streams.deadLetter, topicPrefix: f.prefix, log: silentLogger, flushIntervalMs: 250 });
    await sink.start();
    await eventually(async () => {
      const n = Number((await ch.client.query<{ n: number }>(`SELECT count() AS n FROM ${ch.database}.jobs`))[0]?.n ?? 0);
      return n === 200 ? true : undefined;
    }, 30_000, 'every snapshot row written');
    assert.ok(sink.batchesWritten < 40, `200 snapshots took ${sink.batchesWritten} inserts`);
    await sink.close();
  } finally {
    await ch.close();
    await f.stop();
  }
});

test('a fact or audit event another sink member stored after this one loaded its seen ids (a late batch after a rebalance) is not stored again', async () => {
  const f = await startRuntimeFixture('sinklate');
  const ch = await clickhouseForTest('sinklate');
  await applyMigrations(ch.client, ch.database, silentLogger);
  const count = async (table: string, jobId: string): Promise<number> =>
    Number((await ch.client.query<{ n: number }>(`SELECT count() AS n FROM ${ch.database}.${table} WHERE job_id = '${jobId}'`))[0]?.n ?? 0);
  const sink = new ClickHouseSink({ kafka: f.kafka, clickhouse: ch.client, deadLetter: f.streams.deadLetter, topicPrefix: f.prefix, log: silentLogger, flushIntervalMs: 100 });
  try {
    await sink.start();
    await sleep(1500); // assigned: the seen ids are loaded (none yet)
    // The member that lost the partition writes its last batch now, then this member re-reads the same messages.
    const late = fact('job_late', 1);
    await ch.client.insert('task_facts', [{
      time: new Date(late.time).toISOString().slice(0, 19).replace('T', ' '), time_ms: late.time, job_id: 'job_late', task_id: 'task_job_late_prepare',
      tenant_id: 'default', stage: 'prepare', engine_id: 'audio-prepare', model: '', language: 'en', status: 'success', audio_duration_seconds: 2,
      processing_ms: 100, queue_wait_ms: 5, model_load_ms: 0, retries: 0, attempt: 1, trace_id: '', request_id: 'req_x',
    }], ['time', 'time_ms', 'job_id', 'task_id', 'tenant_id', 'stage', 'engine_id', 'model', 'language', 'status', 'audio_duration_seconds',
      'processing_ms', 'queue_wait_ms', 'model_load_ms', 'retries', 'attempt', 'trace_id', 'request_id']);
    const event = audit('job_late');
    await ch.client.insert('audit_events', [{
      time: new Date(event.time).toISOString().slice(0, 19).replace('T', ' '), time_ms: event.time, event_id: 'job_late:job.completed', event_type: 'job.completed',
      tenant_id: 'default', actor_key_id: 'key', job_id: 'job_late', session_id: '', audio_duration_seconds: 2, request_id: 'req_x', trace_id: '', details: '{}',
    }], ['time', 'time_ms', 'event_id', 'event_type', 'tenant_id', 'actor_key_id', 'job_id', 'session_id', 'audio_duration_seconds', 'request_id', 'trace_id', 'details']);
    await f.streams.producer.sendBatch([{
      topic: f.topic(ANALYTICS.name),
      messages: [late, event, fact('job_late', 2)].map((m) => ({ key: m.jobId, value: encodeMessage(m), headers: newMessageHeaders({}) })),
    }]);
    await eventually(async () => ((await count('task_facts', 'job_late')) === 2 ? true : undefined), 20_000, 'the second attempt\'s fact written');
    await sleep(500);
    assert.equal(await count('task_facts', 'job_late'), 2, 'attempt 1 once (stored by the other member), attempt 2 once');
    assert.equal(await count('audit_events', 'job_late'), 1, 'the audit event once');
    assert.ok(sink.duplicatesDropped >= 2, `the sink dropped what was already stored (${sink.duplicatesDropped})`);
  } finally {
    await sink.close();
    await ch.close();
    await f.stop();
  }
});

/** Resolves once the sink's group has committed everything on jobs.state and analytics (its rows are then written). */
async function sinkCaughtUp(f: RuntimeFixture): Promise<void> {
  const group = `${f.prefix.replace(/\.$/, '')}-sink-clickhouse`;
  await eventually(async () => {
    const lags = await consumerGroupLag(f.streams.admin, group, [f.topic(JOB_STATE.name), f.topic(ANALYTICS.name)]);
    return lags.every((l) => l.lag === 0) ? true : undefined;
  }, 30_000, 'the sink committed everything');
}

const T = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
const failure = { name: 'RemoteError', code: 'DALSTON_ERR_ENGINE', message: 'engine crashed', retryable: true };

/** A job with two tasks at a given revision: running at revision 2, completed at 5. */
function jobAt(jobId: string, revision: 2 | 5): JobState {
  const done = revision === 5;
  return {
    jobId, tenantId: 'tenant_s', keyId: 'key', requestId: `req_${jobId}`, traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01`,
    status: done ? 'completed' : 'running', createdAt: T, startedAt: T + 100, ...(done ? { completedAt: T + 4_000, transcriptKey: `jobs/${jobId}/transcript.json` } : {}),
    params: { language: 'en', model: 'pocketsphinx-en-us' }, audio: { key: `jobs/${jobId}/audio/original.wav`, filename: 'a.wav', bytes: 100, contentType: 'audio/wav' },
    audioDurationSeconds: 3.5, language: 'en', revision, epoch: 1,
    tasks: [
      {
        taskId: `${jobId}_prepare`, stage: 'prepare', engineId: 'audio-prepare', dependsOn: [], required: true, status: 'completed', attempt: 1, retries: 0,
        config: {}, readyAt: T + 1, startedAt: T + 100, completedAt: T + 600, queueWaitMs: 99, outputKey: `jobs/${jobId}/tasks/p/output.json`, attempts: [],
      },
      {
        taskId: `${jobId}_transcribe`, stage: 'transcribe', engineId: 'pocketsphinx', dependsOn: [`${jobId}_prepare`], required: true,
        status: done ? 'completed' : 'running', attempt: 2, retries: 1, config: { language: 'en' }, readyAt: T + 601, startedAt: T + 1_000,
        ...(done ? { completedAt: T + 3_900 } : {}), attempts: [],
      },
    ],
  };
}

function failedJob(jobId: string): JobState {
  return {
    jobId, tenantId: 'tenant_s', keyId: 'key', requestId: `req_${jobId}`, status: 'failed', createdAt: T, completedAt: T + 50, error: failure,
    params: {}, audio: { key: `jobs/${jobId}/audio/original.wav`, filename: 'b.wav', bytes: 100, contentType: 'audio/wav' }, revision: 1, epoch: 1,
    tasks: [{
      taskId: `${jobId}_prepare`, stage: 'prepare', engineId: 'audio-prepare', dependsOn: [], required: true, status: 'failed', attempt: 1, retries: 0,
      config: {}, readyAt: T + 1, processingMs: 40, error: failure, attempts: [],
    }],
  };
}

test('snapshots land in jobs and tasks as job-rows maps them; the newest revision wins whatever the order, also when everything is read again', async () => {
  const f = await startRuntimeFixture('sinkrows');
  const ch = await clickhouseForTest('sinkrows');
  await applyMigrations(ch.client, ch.database, silentLogger);
  const newSink = () => new ClickHouseSink({ kafka: f.kafka, clickhouse: ch.client, deadLetter: f.streams.deadLetter, topicPrefix: f.prefix, log: silentLogger, flushIntervalMs: 100 });
  const jobs = async () => ch.client.query<Record<string, unknown>>(`SELECT * FROM ${ch.database}.jobs FINAL WHERE job_id IN ('job_sa', 'job_sb') ORDER BY job_id`);
  const tasks = async () => ch.client.query<Record<string, unknown>>(`SELECT * FROM ${ch.database}.tasks FINAL WHERE job_id IN ('job_sa', 'job_sb') ORDER BY job_id, task_id`);
  const reader = new ClickHouseJobReader(ch.client);
  let sink = newSink();
  try {
    const snapshot = (state: JobState) => ({ key: state.jobId, value: encodeMessage({ v: SCHEMA_VERSION, type: 'job.snapshot', state }), headers: newMessageHeaders({}) });
    // The older revision of job_sa comes again after the newer one (an outbox re-sent by a takeover).
    await f.streams.producer.sendBatch([{
      topic: f.topic(JOB_STATE.name),
      messages: [snapshot(jobAt('job_sa', 2)), snapshot(jobAt('job_sa', 5)), snapshot(failedJob('job_sb')), snapshot(jobAt('job_sa', 2))],
    }]);
    await sink.start();
    await sinkCaughtUp(f);
    const expectedJobs = [jobRow(jobAt('job_sa', 5)), jobRow(failedJob('job_sb'))];
    const expectedTasks = [...taskRows(jobAt('job_sa', 5)), ...taskRows(failedJob('job_sb'))].sort((a, b) => String(a.task_id).localeCompare(String(b.task_id)));
    assert.deepEqual(await jobs(), expectedJobs);
    assert.deepEqual(await tasks(), expectedTasks);
    // Spot checks in plain values, so the claim does not rest on job-rows alone.
    const [a] = await jobs();
    assert.deepEqual([a?.['status'], a?.['version'], a?.['completed_ms'], a?.['trace_id'], a?.['created_at']], ['completed', 6, T + 4_000, 'c'.repeat(32), '2024-01-02 03:04:05']);
    assert.deepEqual((await tasks()).map((r) => [r['task_id'], r['status'], r['duration_ms'], r['version']]), [
      ['job_sa_prepare', 'completed', 500, 6], ['job_sa_transcribe', 'completed', 2_900, 6], ['job_sb_prepare', 'failed', 40, 2],
    ]);
    // What the sink stored is what the status API reads back: the actor's own view of the job.
    assert.deepEqual(await reader.getJob('job_sa', 'tenant_s'), jobViewFromState(jobAt('job_sa', 5)));
    assert.deepEqual(await reader.getJob('job_sb', 'tenant_s'), { ...jobViewFromState(failedJob('job_sb')), error: { ...failure, name: 'JobError', retryable: false } });
    assert.equal(await reader.getJob('job_sa', 'another_tenant'), undefined);

    // Redelivery of everything (offsets back to the start, as after a crash before the commits): rows are rewritten, the
    // newest revision still wins.
    await sink.close();
    const group = `${f.prefix.replace(/\.$/, '')}-sink-clickhouse`;
    for (const t of [ANALYTICS.name, JOB_STATE.name]) await f.streams.admin.resetOffsets({ groupId: group, topic: f.topic(t), earliest: true });
    sink = newSink();
    await sink.start();
    await sinkCaughtUp(f);
    assert.ok(sink.batchesWritten > 0, 'the snapshots were written again');
    assert.deepEqual(await jobs(), expectedJobs);
    assert.deepEqual(await tasks(), expectedTasks);
    const versions = await ch.client.query<{ job_id: string; v: number }>(
      `SELECT job_id, argMax(version, version) AS v FROM ${ch.database}.jobs WHERE job_id IN ('job_sa', 'job_sb') GROUP BY job_id ORDER BY job_id`,
    );
    assert.deepEqual(versions, [{ job_id: 'job_sa', v: 6 }, { job_id: 'job_sb', v: 2 }]);
  } finally {
    await sink.close();
    await ch.close();
    await f.stop();
  }
});

test('a task fact lands in task_facts and an audit event in audit_events, with every value; bytes that are neither are dead-lettered and do not hold up the partition', async () => {
  const f = await startRuntimeFixture('sinktables');
  const ch = await clickhouseForTest('sinktables');
  await applyMigrations(ch.client, ch.database, silentLogger);
  const sink = new ClickHouseSink({ kafka: f.kafka, clickhouse: ch.client, deadLetter: f.streams.deadLetter, topicPrefix: f.prefix, log: silentLogger, flushIntervalMs: 100 });
  try {
    const dlq = await f.recorder('dead-letter', (v) => JSON.parse(v.toString('utf8')) as Record<string, unknown>);
    const fact: AnalyticsMessage = {
      v: SCHEMA_VERSION, type: 'analytics.task_fact', time: T, jobId: 'job_t', taskId: 'job_t_transcribe', tenantId: 'tenant_t', stage: 'transcribe',
      engineId: 'pocketsphinx', model: 'pocketsphinx-en-us', language: 'en', status: 'failure', audioDurationSeconds: 3.5, processingMs: 1234,
      queueWaitMs: 56, modelLoadMs: 78, retries: 1, attempt: 2, traceId: 'e'.repeat(32), requestId: 'req_t',
    };
    const event: AnalyticsMessage = {
      v: SCHEMA_VERSION, type: 'analytics.audit_event', time: T, eventId: 'job_t:transcript.exported:1', eventType: 'transcript.exported',
      tenantId: 'tenant_t', actorKeyId: 'key_t', jobId: 'job_t', sessionId: '', audioDurationSeconds: 3.5, requestId: 'req_t', traceId: 'e'.repeat(32),
      details: '{"format":"srt"}',
    };
    // All on one key, so one partition: the undecodable record comes first and must not block the two after it.
    await f.streams.producer.sendBatch([{
      topic: f.topic(ANALYTICS.name),
      messages: [Buffer.from('neither a fact nor an event'), encodeMessage(fact), encodeMessage(event)].map((value) => ({ key: 'job_t', value, headers: newMessageHeaders({}) })),
    }]);
    await sink.start();
    await sinkCaughtUp(f);
    const where = `WHERE job_id = 'job_t'`;
    assert.deepEqual(await ch.client.query(`SELECT * FROM ${ch.database}.task_facts ${where}`), [{
      time: '2024-01-02 03:04:05', time_ms: T, job_id: 'job_t', task_id: 'job_t_transcribe', tenant_id: 'tenant_t', stage: 'transcribe',
      engine_id: 'pocketsphinx', model: 'pocketsphinx-en-us', language: 'en', status: 'failure', audio_duration_seconds: 3.5, processing_ms: 1234,
      queue_wait_ms: 56, model_load_ms: 78, retries: 1, attempt: 2, trace_id: 'e'.repeat(32), request_id: 'req_t',
    }]);
    assert.deepEqual(await ch.client.query(`SELECT * FROM ${ch.database}.audit_events ${where}`), [{
      time: '2024-01-02 03:04:05', time_ms: T, event_id: 'job_t:transcript.exported:1', event_type: 'transcript.exported', tenant_id: 'tenant_t',
      actor_key_id: 'key_t', job_id: 'job_t', session_id: '', audio_duration_seconds: 3.5, request_id: 'req_t', trace_id: 'e'.repeat(32),
      details: '{"format":"srt"}',
    }]);
    for (const table of ['jobs', 'tasks']) {
      assert.deepEqual(await ch.client.query(`SELECT count() AS n FROM ${ch.database}.${table}`), [{ n: 0 }], `analytics never reach ${table}`);
    }
    await eventually(() => (dlq.records.length >= 1 ? true : undefined), 20_000, 'the dead letter');
    const [dead] = dlq.values();
    assert.equal(dlq.records.length, 1);
    assert.equal(dead?.['reason'], 'undecodable');
    assert.equal((dead?.['source'] as { topic?: string } | undefined)?.topic, f.topic(ANALYTICS.name));
    assert.equal(Buffer.from(String(dead?.['payloadBase64']), 'base64').toString(), 'neither a fact nor an event');
  } finally {
    await sink.close();
    await ch.close();
    await f.stop();
  }
});
