/**
 * job-rows: the pure mapping from a job actor's snapshot to the `jobs` row and the `tasks` rows the status API
 * reads. Table-driven: each case is a snapshot and the exact rows expected from it, written out as literals (so the
 * test does not re-derive them with the code under test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobState, TaskState } from '../streams/index.js';
import { JOB_COLUMNS, TASK_COLUMNS, jobRow, taskRows, type JobRow, type TaskRow } from './job-rows.js';

// 2023-11-14 22:13:20.500 UTC
const T0 = 1_700_000_000_500;
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const boom = { name: 'RemoteError', code: 'DALSTON_ERR_ENGINE', message: 'engine crashed', retryable: true };

function state(over: Partial<JobState> = {}): JobState {
  return {
    jobId: 'job_1', tenantId: 'tenant_a', keyId: 'key_1', requestId: 'req_1', status: 'pending', createdAt: T0, params: {},
    audio: { key: 'jobs/job_1/audio/original.wav', filename: 'a.wav', bytes: 10, contentType: 'audio/wav' }, tasks: [], revision: 0,
    ...over,
  };
}

function task(stage: string, over: Partial<TaskState> = {}): TaskState {
  return {
    taskId: `job_1_${stage}`, stage, engineId: `eng-${stage}`, dependsOn: [], required: true, status: 'pending', attempt: 0, retries: 0,
    config: {}, attempts: [], ...over,
  };
}

/** The row of a job created at T0 with nothing else known: every optional column at its empty value. */
const EMPTY_JOB: JobRow = {
  job_id: 'job_1', tenant_id: 'tenant_a', status: 'pending', created_at: '2023-11-14 22:13:20', created_ms: T0, started_ms: 0, completed_ms: 0,
  audio_duration_seconds: 0, language: '', model: '', request_id: 'req_1', trace_id: '', error_code: '', error_message: '', stages_json: '[]',
  params_json: '{}', transcript_key: '', version: 1,
};

interface Case {
  readonly name: string;
  readonly state: JobState;
  /** Columns of the jobs row that differ from EMPTY_JOB. */
  readonly job: Partial<JobRow>;
  readonly tasks: readonly TaskRow[];
}

const prepareDone = task('prepare', {
  status: 'completed', attempt: 1, readyAt: T0 + 10, enqueuedAt: T0 + 10, startedAt: T0 + 30, completedAt: T0 + 530, queueWaitMs: 20, processingMs: 480,
  outputKey: 'jobs/job_1/tasks/job_1_prepare/output.json',
});
const transcribeRetried = task('transcribe', {
  dependsOn: ['job_1_prepare'], status: 'completed', attempt: 2, retries: 1, readyAt: T0 + 600, startedAt: T0 + 2_000, completedAt: T0 + 5_000,
  queueWaitMs: 5, processingMs: 2_900,
});
const mergeFailed = task('merge', { dependsOn: ['job_1_transcribe'], status: 'failed', attempt: 1, readyAt: T0 + 5_100, processingMs: 40, error: boom });

const CASES: readonly Case[] = [
  { name: 'a job just created: empty values, version 1 (the gateway wrote version 0)', state: state(), job: {}, tasks: [] },
  {
    name: 'the requested language and model are stored; the trace id comes from traceparent; params are kept as JSON',
    state: state({ params: { language: 'de', model: 'whisper-base', vad: true }, traceparent: `00-${TRACE}-00f067aa0ba902b7-01`, revision: 3 }),
    job: { language: 'de', model: 'whisper-base', trace_id: TRACE, params_json: '{"language":"de","model":"whisper-base","vad":true}', version: 4 },
    tasks: [],
  },
  {
    name: 'language auto is not a language: empty until one is detected, then the detected one',
    state: state({ params: { language: 'auto' } }),
    job: { params_json: '{"language":"auto"}' },
    tasks: [],
  },
  {
    name: 'a detected language wins over the requested one',
    state: state({ params: { language: 'auto' }, language: 'fr' }),
    job: { language: 'fr', params_json: '{"language":"auto"}' },
    tasks: [],
  },
  {
    name: 'a malformed or all-zero traceparent gives no trace id',
    state: state({ traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` }),
    job: {},
    tasks: [],
  },
  {
    name: 'a completed job: times, duration, transcript key; each task a row in DAG order with its attempt window',
    state: state({
      status: 'completed', startedAt: T0 + 30, completedAt: T0 + 5_200, audioDurationSeconds: 12.25, language: 'en',
      transcriptKey: 'jobs/job_1/transcript.json', tasks: [prepareDone, transcribeRetried], revision: 9,
    }),
    job: {
      status: 'completed', started_ms: T0 + 30, completed_ms: T0 + 5_200, audio_duration_seconds: 12.25, language: 'en',
      transcript_key: 'jobs/job_1/transcript.json', version: 10,
      stages_json: JSON.stringify([
        {
          stage: 'prepare', task_id: 'job_1_prepare', engine_id: 'eng-prepare', status: 'completed', started_at: '2023-11-14T22:13:20.530Z',
          completed_at: '2023-11-14T22:13:21.030Z', duration_ms: 500, queue_wait_ms: 20, retries: 0, error: null,
          output_key: 'jobs/job_1/tasks/job_1_prepare/output.json', error_detail: null,
        },
        {
          stage: 'transcribe', task_id: 'job_1_transcribe', engine_id: 'eng-transcribe', status: 'completed', started_at: '2023-11-14T22:13:22.500Z',
          completed_at: '2023-11-14T22:13:25.500Z', duration_ms: 3_000, queue_wait_ms: 5, retries: 1, error: null, error_detail: null,
        },
      ]),
    },
    tasks: [
      {
        job_id: 'job_1', task_id: 'job_1_prepare', stage: 'prepare', engine_id: 'eng-prepare', status: 'completed', retries: 0, ready_ms: T0 + 10,
        started_ms: T0 + 30, completed_ms: T0 + 530, queue_wait_ms: 20, duration_ms: 500, error_json: '', created_at: '2023-11-14 22:13:20', version: 10,
      },
      {
        job_id: 'job_1', task_id: 'job_1_transcribe', stage: 'transcribe', engine_id: 'eng-transcribe', status: 'completed', retries: 1,
        ready_ms: T0 + 600, started_ms: T0 + 2_000, completed_ms: T0 + 5_000, queue_wait_ms: 5, duration_ms: 3_000, error_json: '',
        created_at: '2023-11-14 22:13:20', version: 10,
      },
    ],
  },
  {
    name: 'a failed job: its error code and message; a task without an attempt window takes its processing time; a waiting task is all zeros',
    state: state({ status: 'failed', completedAt: T0 + 6_000, error: boom, tasks: [mergeFailed, task('diarize')], revision: 12 }),
    job: {
      status: 'failed', completed_ms: T0 + 6_000, error_code: 'DALSTON_ERR_ENGINE', error_message: 'engine crashed', version: 13,
      stages_json: JSON.stringify([
        {
          stage: 'merge', task_id: 'job_1_merge', engine_id: 'eng-merge', status: 'failed', started_at: null, completed_at: null, duration_ms: 40,
          queue_wait_ms: null, retries: 0, error: { code: 'DALSTON_ERR_ENGINE', message: 'engine crashed' }, error_detail: boom,
        },
        {
          stage: 'diarize', task_id: 'job_1_diarize', engine_id: 'eng-diarize', status: 'pending', started_at: null, completed_at: null, duration_ms: null,
          queue_wait_ms: null, retries: 0, error: null, error_detail: null,
        },
      ]),
    },
    tasks: [
      {
        job_id: 'job_1', task_id: 'job_1_merge', stage: 'merge', engine_id: 'eng-merge', status: 'failed', retries: 0, ready_ms: T0 + 5_100,
        started_ms: 0, completed_ms: 0, queue_wait_ms: 0, duration_ms: 40, error_json: JSON.stringify(boom), created_at: '2023-11-14 22:13:20', version: 13,
      },
      {
        job_id: 'job_1', task_id: 'job_1_diarize', stage: 'diarize', engine_id: 'eng-diarize', status: 'pending', retries: 0, ready_ms: 0,
        started_ms: 0, completed_ms: 0, queue_wait_ms: 0, duration_ms: 0, error_json: '', created_at: '2023-11-14 22:13:20', version: 13,
      },
    ],
  },
  {
    name: 'a job enhancing a real-time session keeps the session id in params (the reader extracts it)',
    state: state({ params: { sessionId: 'sess_9', api: 'native' } }),
    job: { params_json: '{"sessionId":"sess_9","api":"native"}' },
    tasks: [],
  },
];

for (const c of CASES) {
  void test(`job rows: ${c.name}`, () => {
    const row = jobRow(c.state);
    assert.deepEqual(row, { ...EMPTY_JOB, ...c.job });
    assert.deepEqual(taskRows(c.state), c.tasks);
  });
}

void test('every row has exactly the columns the sink inserts (a missing one would be stored as a zero value)', () => {
  const full = CASES.find((c) => c.tasks.length === 2 && c.state.status === 'completed')?.state ?? state();
  assert.deepEqual(Object.keys(jobRow(full)).sort(), [...JOB_COLUMNS].sort());
  for (const row of taskRows(full)) assert.deepEqual(Object.keys(row).sort(), [...TASK_COLUMNS].sort());
});

void test('a snapshot too early or too late for a DateTime column is refused rather than stored as a wrapped date', () => {
  assert.throws(() => jobRow(state({ createdAt: -1 })), /cannot format -1 as a DateTime/);
  assert.throws(() => taskRows(state({ createdAt: Number.NaN, tasks: [task('prepare')] })), /cannot format NaN as a DateTime/);
});
