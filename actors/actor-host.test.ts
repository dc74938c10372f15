/**
 * What the job actor host decides with plain values; its Kafka cycle (persist, send, commit, restore) runs in
 * test/integration/actor-runtime.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCHEMA_VERSION, type JobEvent } from '../streams/index.js';
import { jobWithoutLive } from './actor-host.js';
import type { ActorInput } from './job-transition.js';

const v = SCHEMA_VERSION;
const created: JobEvent = {
  v, type: 'job.created', jobId: 'job_1', tenantId: 'default', keyId: 'k', createdAt: 1,
  audio: { key: 'jobs/job_1/audio.wav', filename: 'a.wav', bytes: 10, contentType: 'audio/wav' }, params: {},
};
const deleted: JobEvent = { v, type: 'job.deleted', jobId: 'job_1', at: 2 };
const started: JobEvent = { v, type: 'task.started', jobId: 'job_1', taskId: 'task_1_prepare', attempt: 1, engineId: 'e', instanceId: 'i', at: 3, queueWaitMs: 1 };
const timer: ActorInput = { type: 'timer' };

test('an event for a job with no live actor: only a new job.created creates one, only job.deleted of a finished job removes it', () => {
  const cases: [ActorInput, string | undefined, 'apply' | 'ignore' | 'remove'][] = [
    [created, undefined, 'apply'],
    [created, 'completed', 'ignore'], // a replay of a finished job's creation
    [created, 'removed', 'ignore'], // a replay of a deleted job's creation
    [deleted, 'completed', 'remove'],
    [deleted, 'failed', 'remove'],
    [deleted, 'cancelled', 'remove'],
    [deleted, 'removed', 'ignore'], // deleted twice
    [deleted, undefined, 'ignore'], // never known here
    [started, undefined, 'ignore'], // a late task event of a job another host owns or that is gone
    [started, 'completed', 'ignore'],
    [timer, undefined, 'ignore'],
  ];
  for (const [input, status, expected] of cases) {
    assert.equal(jobWithoutLive(input, status === undefined ? undefined : { status }), expected, `${input.type} with ${status ?? 'no'} marker`);
  }
});
