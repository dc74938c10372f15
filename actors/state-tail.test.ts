/**
 * The state tail's bookkeeping with plain values (the Kafka side runs in test/integration/actor-runtime.test.ts):
 * which snapshot of a job wins, when a finished job's snapshot is kept whole for a re-send, what a tombstone does,
 * and how jobs.state records decode.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../core/errors.js';
import { MessageDecodeError, SCHEMA_VERSION, encodeMessage, type JobState, type OutboxEntry, type PartitionClaim } from '../streams/index.js';
import { transition, type TransitionSettings } from './job-transition.js';
import { JOB_TAIL_CODEC, TailIndex, assertSamePartitionCount } from './state-tail.js';

const settings: TransitionSettings = {
  maxRetries: 2, minTaskTimeoutMs: 60_000, engineTimeFactor: {}, heartbeatTimeoutMs: 15_000, queueTimeoutMs: 600_000,
  retryBaseDelayMs: 1000, engines: { engineFor: (stage) => `eng-${stage}` },
};

/** A real job state (as the transition builds it), then the fields a test varies. */
function job(jobId: string, fields: Partial<JobState> = {}): JobState {
  const created = transition(undefined, {
    v: SCHEMA_VERSION, type: 'job.created', jobId, tenantId: 'default', keyId: 'k', createdAt: 1000,
    audio: { key: `jobs/${jobId}/audio.wav`, filename: 'a.wav', bytes: 10, contentType: 'audio/wav' }, params: {},
  }, { now: 1000, settings }).state;
  assert.ok(created);
  return { ...created, outbox: [], ...fields };
}

const claim = (partition: number, epoch: number, owner = 'host-a'): PartitionClaim => ({ v: SCHEMA_VERSION, type: 'partition.claim', partition, epoch, owner, at: 1 });
const revisionOf = (s: JobState | undefined): string => (s ? `e${s.epoch ?? 0}r${s.revision}` : 'none');

test('a job\'s snapshot is the newest by (owner epoch, revision), whatever order the records arrive in', () => {
  const tail = new TailIndex(JOB_TAIL_CODEC);
  tail.remember(job('job_a', { revision: 3, epoch: 1 }), 2);
  tail.remember(job('job_a', { revision: 5, epoch: 1 }), 2);
  assert.equal(revisionOf(tail.get('job_a')), 'e1r5');
  tail.remember(job('job_a', { revision: 4, epoch: 1 }), 2);
  tail.remember(job('job_a', { revision: 5, epoch: 1 }), 2);
  assert.equal(revisionOf(tail.get('job_a')), 'e1r5', 'an older or equal revision of the same owner is ignored');
  tail.remember(job('job_a', { revision: 2, epoch: 2 }), 2);
  assert.equal(revisionOf(tail.get('job_a')), 'e2r2', 'a newer owner wins even with a lower revision');
  tail.remember(job('job_a', { revision: 9, epoch: 1 }), 2);
  assert.equal(revisionOf(tail.get('job_a')), 'e2r2', 'a stale owner\'s late write never replaces its successor\'s');
  tail.remember(job('job_b', { revision: 1 }), 4);
  assert.deepEqual(tail.liveInPartition(2).map((s) => s.jobId), ['job_a']);
  assert.deepEqual(tail.liveInPartition(4).map((s) => s.jobId), ['job_b']);
  assert.deepEqual(tail.liveInPartition(0), []);
  assert.equal(tail.liveCount, 2);
  assert.equal(tail.maxEpoch(2), 2);
  assert.equal(tail.maxEpoch(4), 0, 'a snapshot without an epoch is epoch 0');
});

test('claims: each partition keeps its highest claim; snapshots raise the partition\'s epoch too', () => {
  const tail = new TailIndex(JOB_TAIL_CODEC);
  tail.noteClaim(claim(1, 3, 'host-a'));
  tail.noteClaim(claim(1, 2, 'host-old'));
  assert.equal(tail.claim(1)?.owner, 'host-a', 'an older claim read late does not replace the newer');
  tail.noteClaim(claim(1, 4, 'host-b'));
  assert.deepEqual([tail.claim(1)?.owner, tail.maxEpoch(1)], ['host-b', 4]);
  assert.equal(tail.claim(0), undefined);
  tail.remember(job('job_c', { revision: 1, epoch: 7 }), 0);
  assert.equal(tail.maxEpoch(0), 7, 'the next claim on partition 0 must go above 7');
});

test('a finished job becomes a marker; its recent outbox is kept whole for a takeover until released', () => {
  const tail = new TailIndex(JOB_TAIL_CODEC);
  tail.remember(job('job_f', { revision: 3, epoch: 1, status: 'running' }), 5);
  const audit = { type: 'outcome', outcome: { v: SCHEMA_VERSION, type: 'job.outcome', jobId: 'job_f', tenantId: 'default', requestId: 'r', status: 'completed', createdAt: 1000, completedAt: 5000 } } satisfies OutboxEntry;
  const done = job('job_f', { revision: 4, epoch: 1, status: 'completed', completedAt: 5000, persistedAt: 5000, outbox: [audit] });
  tail.remember(done, 5);
  assert.equal(tail.get('job_f'), undefined, 'no longer live');
  assert.equal(tail.liveCount, 0);
  assert.deepEqual(tail.finished('job_f'), { status: 'completed', partition: 5, epoch: 1, revision: 4, at: 5000, withOutbox: done });
  tail.remember(job('job_f', { revision: 3, epoch: 1, status: 'running' }), 5);
  assert.equal(tail.get('job_f'), undefined, 'an older live snapshot read late does not bring the job back');
  assert.deepEqual(tail.finishedWithOutbox(5, 5000), [done], 'written at the window\'s start: re-sent');
  assert.deepEqual(tail.finishedWithOutbox(5, 5001), [], 'written before the window: not re-sent');
  assert.deepEqual(tail.finishedWithOutbox(4, 0), [], 'another partition');
  tail.releaseOutboxes(5000);
  assert.equal(tail.finished('job_f')?.withOutbox, done, 'not yet older than the cut');
  tail.releaseOutboxes(5001);
  assert.deepEqual(tail.finished('job_f'), { status: 'completed', partition: 5, epoch: 1, revision: 4, at: 5000 }, 'only the marker stays');
  // A finished snapshot whose outbox is empty keeps no copy at all.
  tail.remember(job('job_g', { revision: 2, status: 'failed', completedAt: 6000 }), 5);
  assert.deepEqual(tail.finished('job_g'), { status: 'failed', partition: 5, epoch: 0, revision: 2, at: 6000 });
});

test('a tombstone removes a job for good: later snapshots are ignored until the marker is forgotten', () => {
  const tail = new TailIndex(JOB_TAIL_CODEC);
  tail.remember(job('job_d', { revision: 6, epoch: 2, status: 'cancelled', completedAt: 100 }), 3);
  tail.markRemoved('job_d', 3, 9000);
  assert.deepEqual(tail.finished('job_d'), { status: 'removed', partition: 3, epoch: 2, revision: 6, at: 9000 });
  tail.remember(job('job_d', { revision: 50, epoch: 9 }), 3);
  assert.equal(tail.get('job_d'), undefined, 'a removed job never comes back from a late snapshot');
  tail.markRemoved('job_live', 3, 9100);
  assert.equal(tail.finished('job_live')?.status, 'removed', 'a live job deleted at once is removed too');
  assert.deepEqual([...tail.finishedEntries()].map(([id, m]) => `${id}:${m.status}`), ['job_d:removed', 'job_live:removed']);
  tail.forget('job_d');
  assert.equal(tail.finished('job_d'), undefined);
  tail.remember(job('job_d', { revision: 1 }), 3);
  assert.equal(revisionOf(tail.get('job_d')), 'e0r1', 'once forgotten, the id is free again');
});

test('jobs.state records decode to snapshots or claims; anything else throws (the tail skips it)', () => {
  const state = job('job_x', { revision: 2, epoch: 3, status: 'running' });
  const snap = JOB_TAIL_CODEC.decode(encodeMessage({ v: SCHEMA_VERSION, type: 'job.snapshot', state }));
  // msgpack leaves out keys whose value is undefined (the transition sets some): compare without them.
  assert.deepEqual(snap, { kind: 'snapshot', state: JSON.parse(JSON.stringify(state)) as JobState });
  assert.deepEqual(JOB_TAIL_CODEC.decode(encodeMessage(claim(2, 5))), { kind: 'claim', claim: claim(2, 5) });
  assert.throws(() => JOB_TAIL_CODEC.decode(Buffer.from('not msgpack \u0000\u00ff')), MessageDecodeError);
  assert.throws(() => JOB_TAIL_CODEC.decode(encodeMessage({ v: SCHEMA_VERSION, type: 'job.deleted', jobId: 'job_x', at: 1 })), MessageDecodeError);

  assert.equal(JOB_TAIL_CODEC.id(state), 'job_x');
  assert.equal(JOB_TAIL_CODEC.epoch(job('job_x')), 0, 'snapshots written before epochs count as epoch 0');
  for (const status of ['pending', 'running', 'cancelling'] as const) assert.equal(JOB_TAIL_CODEC.finished(job('job_x', { status })), undefined, status);
  for (const status of ['completed', 'failed', 'cancelled'] as const) assert.equal(JOB_TAIL_CODEC.finished(job('job_x', { status })), status);
  assert.equal(JOB_TAIL_CODEC.outboxWrittenAt?.(job('job_x', { outbox: [], persistedAt: 10 })), undefined, 'an empty outbox has nothing to re-send');
  const withCancel: OutboxEntry = { type: 'cancel', cancel: { v: SCHEMA_VERSION, type: 'task.cancel', jobId: 'job_x', taskId: 't', attempt: 1, at: 1 } };
  assert.equal(JOB_TAIL_CODEC.outboxWrittenAt?.(job('job_x', { outbox: [withCancel], persistedAt: 10 })), 10);
  assert.equal(JOB_TAIL_CODEC.outboxWrittenAt?.(job('job_x', { outbox: [withCancel] })), 0, 'unknown write time: treated as old');
});

test('jobs.events and jobs.state must have the same partition count', () => {
  assert.doesNotThrow(() => assertSamePartitionCount('p.jobs.events', 6, 'p.jobs.state', 6));
  assert.throws(() => assertSamePartitionCount('p.jobs.events', 6, 'p.jobs.state', 3),
    (e: unknown) => e instanceof ConfigError && /^p\.jobs\.events has 6 partitions but p\.jobs\.state has 3: they must be equal/.test(e.message));
});
