import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobState, TaskState } from '../streams/index.js';
import { jobStatusBody, jobViewFromState, parseStagesJson, stageViewsFromTasks, stagesJson, traceIdFromTraceparent, transcriptFields } from './job-view.js';

const T0 = Date.UTC(2026, 10, 28, 9, 0, 0);

function task(over: Partial<TaskState> & Pick<TaskState, 'taskId' | 'stage' | 'status'>): TaskState {
  return {
    engineId: `${over.stage}-engine`, dependsOn: [], required: true, attempt: 1, retries: 0, config: {}, attempts: [], ...over,
  };
}

const tasks: TaskState[] = [
  task({ taskId: 't_prep', stage: 'prepare', status: 'completed', startedAt: T0 + 100, completedAt: T0 + 600, queueWaitMs: 30, processingMs: 480, outputKey: 'jobs/j/tasks/t_prep/output.json' }),
  task({
    taskId: 't_tr', stage: 'transcribe', status: 'failed', startedAt: T0 + 700, completedAt: T0 + 900, queueWaitMs: 12, retries: 2, attempt: 3,
    error: { name: 'RemoteError', code: 'DALSTON_ERR_ENGINE', message: 'decoder crashed', retryable: true },
  }),
  task({ taskId: 't_merge', stage: 'merge', status: 'cancelled' }),
  task({ taskId: 't_run', stage: 'transcribe_ch1', status: 'running', startedAt: T0 + 50, processingMs: 20 }),
];

void test('stage rows from task states: statuses as-is, duration from the attempt window, retries and error carried', () => {
  const views = stageViewsFromTasks(tasks);
  assert.deepEqual(views.map((v) => [v.stage, v.status, v.durationMs, v.queueWaitMs, v.retries]), [
    ['prepare', 'completed', 500, 30, 0],
    ['transcribe', 'failed', 200, 12, 2],
    ['merge', 'cancelled', undefined, undefined, 0],
    ['transcribe_ch1', 'running', 20, undefined, 0],
  ]);
  assert.equal(views[1]?.error?.code, 'DALSTON_ERR_ENGINE');
  assert.equal(views[0]?.outputKey, 'jobs/j/tasks/t_prep/output.json');
});

void test('stages_json round-trips through the ClickHouse column, keeping the failure record and output key', () => {
  const views = stageViewsFromTasks(tasks);
  const json = stagesJson(views);
  const rows = JSON.parse(json) as Record<string, unknown>[];
  assert.equal(rows[0]?.['started_at'], '2026-11-28T09:00:00.100Z', 'stored rows are the API rows');
  assert.deepEqual(rows[1]?.['error'], { code: 'DALSTON_ERR_ENGINE', message: 'decoder crashed' });
  assert.deepEqual(parseStagesJson(json), views);
  assert.throws(() => parseStagesJson('[{"stage":"x","task_id":"t","engine_id":"e","status":"exploded","retries":0}]'), /unknown task status exploded/);
  assert.throws(() => parseStagesJson('{}'), /expected an array/);
});

void test('job view from actor state: trace id from traceparent, requested language unless auto, API body with ISO times', () => {
  const state: JobState = {
    jobId: 'job_1', tenantId: 'default', keyId: 'key_1', requestId: 'req_1',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    status: 'failed', createdAt: T0, startedAt: T0 + 50, completedAt: T0 + 900,
    params: { language: 'de', model: 'pocketsphinx' }, audio: { key: 'jobs/job_1/audio/original.wav', filename: 'a.wav', bytes: 10, contentType: 'audio/wav' },
    audioDurationSeconds: 3.5, error: { name: 'RemoteError', code: 'DALSTON_ERR_ENGINE', message: 'decoder crashed', retryable: false },
    tasks, revision: 7,
  };
  const view = jobViewFromState(state);
  assert.equal(view.traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(view.language, 'de');
  assert.equal(jobViewFromState({ ...state, params: { language: 'auto' } }).language, undefined);
  assert.equal(jobViewFromState({ ...state, params: { language: 'auto' }, language: 'fr' }).language, 'fr');
  const body = jobStatusBody(view);
  assert.equal(body.created_at, '2026-11-28T09:00:00.000Z');
  assert.equal(body.completed_at, '2026-11-28T09:00:00.900Z');
  assert.deepEqual(body.error, { code: 'DALSTON_ERR_ENGINE', message: 'decoder crashed' });
  assert.equal(body.audio_duration_seconds, 3.5);
  assert.equal(body.stages.length, 4);
  assert.equal('text' in body, false);

  assert.equal(traceIdFromTraceparent(undefined), undefined);
  assert.equal(traceIdFromTraceparent('00-00000000000000000000000000000000-b7ad6b7169203331-01'), undefined);
  assert.equal(traceIdFromTraceparent('garbage'), undefined);
});

void test('transcript fields: top-level words win, else gathered from segments; a non-object is refused', () => {
  assert.deepEqual(transcriptFields({ text: 'a b', segments: [], words: [{ text: 'a' }] }), { text: 'a b', segments: [], words: [{ text: 'a' }] });
  assert.deepEqual(transcriptFields({ text: 'a b', segments: [{ words: [{ text: 'a' }] }, { words: [{ text: 'b' }] }, {}] }).words, [{ text: 'a' }, { text: 'b' }]);
  assert.throws(() => transcriptFields([1, 2]), /expected an object/);
});
