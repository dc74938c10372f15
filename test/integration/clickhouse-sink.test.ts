/**
 * The ClickHouse sink on the real Kafka and ClickHouse of the suite: facts and audit events are written once however
 * often they are delivered (a re-sent outbox, a redelivery after a restart), snapshots are written in batches rather
 * than one insert per message, and the actors' bookkeeping records in jobs.state (claims, tombstones) are skipped.
 * Each test pins a finding of the actor-runtime correctness issue (named in its title).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyMigrations } from '../../clickhouse/migrate.js';
import { ClickHouseSink } from '../../clickhouse/sink.js';
import { silentLogger } from '../../core/logger.js';
import {
  ANALYTICS, JOB_STATE, SCHEMA_VERSION, claimKey, encodeMessage, newMessageHeaders, type AnalyticsMessage, type JobState,
} from '../../streams/index.js';
import { clickhouseForTest } from './clickhouse-fixture.js';
import { eventually, raw, sleep, startRuntimeFixture } from '../support/runtime-fixture.js';

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
