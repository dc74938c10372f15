import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCHEMA_VERSION, type JobState } from '../streams/index.js';
import { outboxFor } from './outbox.js';

const v = SCHEMA_VERSION;
const ended = (status: JobState['status'], extra: Partial<JobState> = {}): JobState => ({
  jobId: 'job_1', tenantId: 't1', keyId: 'k1', requestId: 'req_1', status, createdAt: 1000, completedAt: 5000, params: {},
  audio: { key: 'jobs/job_1/audio/original.wav', filename: 'a.wav', bytes: 10, contentType: 'audio/wav' },
  tasks: [], revision: 7, audioDurationSeconds: 2.5, language: 'en', transcriptKey: 'jobs/job_1/transcript.json', ...extra,
});

test('a completed job puts its outcome for jobs.results in the outbox, with the transcript location, beside the audit row', () => {
  const { outbox, local } = outboxFor(ended('completed'), [{ type: 'job_finished', status: 'completed' }], 9000);
  assert.deepEqual(outbox.map((e) => e.type), ['analytics', 'outcome']);
  assert.deepEqual(outbox[1], {
    type: 'outcome',
    outcome: {
      v, type: 'job.outcome', jobId: 'job_1', tenantId: 't1', requestId: 'req_1', status: 'completed', createdAt: 1000, completedAt: 5000,
      audioDurationSeconds: 2.5, language: 'en', transcriptKey: 'jobs/job_1/transcript.json',
    },
  });
  assert.deepEqual(local, { finished: 'completed' });
});

test('a failed job\'s outcome carries its error and no transcript; the same state gives the same outcome (a re-send is recognisable)', () => {
  const error = { name: 'EngineError', code: 'DALSTON_ERR_INVALID_INPUT', message: 'not audio', retryable: false };
  const state = ended('failed', { error, language: undefined });
  const a = outboxFor(state, [{ type: 'job_finished', status: 'failed' }], 9000).outbox[1];
  const b = outboxFor(state, [{ type: 'job_finished', status: 'failed' }], 9999).outbox[1];
  assert.ok(a?.type === 'outcome');
  assert.equal(a.outcome.status, 'failed');
  assert.deepEqual(a.outcome.error, error);
  assert.equal(a.outcome.transcriptKey, undefined);
  assert.equal(a.outcome.language, undefined);
  assert.deepEqual(a, b);
});

test('no outcome before the job ends', () => {
  const { outbox } = outboxFor(ended('running', { completedAt: undefined }), [{ type: 'job_started' }], 9000);
  assert.deepEqual(outbox, []);
});
