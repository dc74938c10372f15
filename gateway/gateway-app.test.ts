import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { InvalidInputError } from '../core/errors.js';
import { artifactKeys } from '../storage/index.js';
import { keyIdOf } from './auth.js';
import type { JobView } from './ports.js';
import { TEST_API_KEY, eventually, makeWav, startHarness, type Harness } from './test-harness.js';

async function withGateway(fn: (h: Harness) => Promise<void>, options: Parameters<typeof startHarness>[0] = {}): Promise<void> {
  const h = await startHarness(options);
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

function form(parts: Record<string, string | { data: Buffer; filename: string; type?: string }>): FormData {
  const fd = new FormData();
  for (const [name, value] of Object.entries(parts)) {
    if (typeof value === 'string') fd.append(name, value);
    else fd.append(name, new Blob([value.data], { type: value.type ?? 'audio/wav' }), value.filename);
  }
  return fd;
}

async function errorBody(res: Response): Promise<{ code: string; message: string }> {
  const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
  assert.equal(typeof body.error?.code, 'string', 'error.code');
  assert.equal(typeof body.error?.message, 'string', 'error.message');
  return body.error as { code: string; message: string };
}

const JOB_BASE: JobView = {
  jobId: 'job_01TESTJOB0000000000000000',
  tenantId: 'default',
  status: 'running',
  createdAt: Date.UTC(2026, 10, 28, 9, 0, 0),
  startedAt: Date.UTC(2026, 10, 28, 9, 0, 1),
  requestId: 'req_origin',
  traceId: '0af7651916cd43dd8448eb211c80319c',
  audioDurationSeconds: 12.5,
  language: 'en',
  stages: [
    {
      stage: 'prepare', taskId: 'task_prepare', engineId: 'audio-prepare', status: 'completed',
      startedAt: Date.UTC(2026, 10, 28, 9, 0, 1), completedAt: Date.UTC(2026, 10, 28, 9, 0, 2), durationMs: 1000, queueWaitMs: 40, retries: 0,
    },
    {
      stage: 'transcribe', taskId: 'task_transcribe', engineId: 'stt-batch-transcribe-pocketsphinx-en-us', status: 'running',
      startedAt: Date.UTC(2026, 10, 28, 9, 0, 3), queueWaitMs: 25, retries: 1,
      error: { name: 'RemoteError', code: 'DALSTON_ERR_TIMEOUT', message: 'attempt 1 timed out', retryable: true },
    },
    { stage: 'merge', taskId: 'task_merge', engineId: 'merge', status: 'pending', retries: 0 },
  ],
};

void test('POST /v1/audio/transcriptions: a real WAV lands in the artifact store, the job row is written and job.created published', async () => {
  await withGateway(async (h) => {
    const wavPath = await makeWav(h.dir, 1);
    const wav = await readFile(wavPath);
    const res = await h.request('/v1/audio/transcriptions', {
      method: 'POST',
      headers: { 'x-request-id': 'client-req-42' },
      body: form({ file: { data: wav, filename: 'dir/Hello World.WAV' }, language: 'EN', timestamps_granularity: 'word' }),
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('x-request-id'), 'client-req-42');
    const body = (await res.json()) as Record<string, unknown>;
    assert.match(String(body['id']), /^job_[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.equal(body['status'], 'pending');
    assert.equal(body['created_at'], new Date(h.clock.now()).toISOString());
    assert.equal(body['request_id'], 'client-req-42');
    assert.equal(body['trace_id'], null, 'no tracing SDK in this test process');
    const jobId = String(body['id']);

    const audioKey = artifactKeys.originalAudio(jobId, 'wav');
    assert.deepEqual(await h.store.get(audioKey), wav, 'the stored bytes are the uploaded bytes');

    assert.equal(h.publisher.created.length, 1);
    const created = h.publisher.created[0];
    assert.deepEqual(created?.headers, { requestId: 'client-req-42', tenantId: 'default' });
    assert.deepEqual(created?.msg, {
      v: 1, type: 'job.created', jobId, tenantId: 'default', keyId: keyIdOf(TEST_API_KEY), createdAt: h.clock.now(),
      audio: { key: audioKey, filename: 'Hello World.WAV', bytes: wav.length, contentType: 'audio/wav' },
      params: { api: 'native', language: 'en', timestampsGranularity: 'word' },
    });
    assert.equal(h.reader.records.length, 1);
    assert.equal(h.reader.records[0]?.jobId, jobId);
    assert.equal(h.reader.records[0]?.requestId, 'client-req-42');
    assert.equal(h.publisher.audits.length, 1);
    assert.equal(h.publisher.audits[0]?.eventType, 'job.created');
    assert.equal(h.publisher.audits[0]?.actorKeyId, keyIdOf(TEST_API_KEY));
    assert.deepEqual(await h.storedFiles(), [audioKey], 'the upload went straight to its key: no temporary or partial file is left');

    // The job is immediately visible through the status route.
    const status = await h.request(`/v1/audio/transcriptions/${jobId}`);
    assert.equal(status.status, 200);
    const sb = (await status.json()) as Record<string, unknown>;
    assert.equal(sb['status'], 'pending');
    assert.equal(sb['request_id'], 'client-req-42');
    assert.deepEqual(sb['stages'], []);
  });
});

void test('request ids: sanitised when given, generated as req_<id> when absent, echoed on every response including errors', async () => {
  await withGateway(async (h) => {
    const dirty = await h.request('/health', { headers: { 'x-request-id': 'ab c/12;3<x>' } });
    assert.equal(dirty.headers.get('x-request-id'), 'abc123x');
    const long = await h.request('/health', { headers: { 'x-request-id': 'a'.repeat(300) } });
    assert.equal(long.headers.get('x-request-id'), 'a'.repeat(128));
    const junk = await h.request('/health', { headers: { 'x-request-id': '<<>>' } });
    assert.match(junk.headers.get('x-request-id') ?? '', /^req_[0-9a-z]{16}$/);
    const none = await h.request('/health');
    const generated = none.headers.get('x-request-id') ?? '';
    assert.match(generated, /^req_[0-9a-z]{16}$/);
    const other = await h.request('/health');
    assert.notEqual(other.headers.get('x-request-id'), generated, 'a fresh id per request');

    const errors: [string, RequestInit & { auth?: boolean }, number][] = [
      ['/v1/audio/transcriptions/job_x', { auth: false }, 401],
      ['/nowhere', {}, 404],
      ['/v1/audio/transcriptions', { method: 'PUT' }, 405],
      ['/v1/audio/transcriptions', { method: 'POST', body: form({ language: 'en' }) }, 400],
      ['/v1/audio/transcriptions', { method: 'POST', body: 'plain', headers: { 'content-type': 'text/plain' } }, 415],
    ];
    for (const [path, init, expected] of errors) {
      const res = await h.request(path, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), 'x-request-id': `err-${expected}` } });
      assert.equal(res.status, expected, path);
      assert.equal(res.headers.get('x-request-id'), `err-${expected}`, `X-Request-ID on the ${expected}`);
      await errorBody(res);
    }
  });
});

void test('auth: bearer key required on /v1 routes (401 unauthorized otherwise); health, readiness and metrics need none', async () => {
  await withGateway(async (h) => {
    for (const authorization of [undefined, 'Bearer wrong-key', `Basic ${TEST_API_KEY}`, `Bearer ${TEST_API_KEY}x`, 'Bearer']) {
      const headers: Record<string, string> = authorization ? { authorization } : {};
      const res = await h.request('/v1/audio/transcriptions/job_123', { auth: false, headers });
      assert.equal(res.status, 401, String(authorization));
      assert.equal((await errorBody(res)).code, 'unauthorized');
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    const ok = await h.request('/v1/audio/transcriptions/job_123', { headers: { authorization: `bearer ${TEST_API_KEY}` } });
    assert.equal(ok.status, 404, 'authenticated, and the job does not exist');
    for (const path of ['/health', '/ready', '/metrics']) {
      const res = await h.request(path, { auth: false });
      assert.equal(res.status, 200, path);
    }
    assert.equal(h.publisher.created.length, 0);
  });
});

void test('/ready answers 503 naming the failing dependency', async () => {
  await withGateway(async (h) => {
    const res = await h.request('/ready', { auth: false });
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: 'not_ready', checks: { kafka: 'ok', clickhouse: 'connection refused' } });
  }, { readinessChecks: { kafka: async () => undefined, clickhouse: async () => { throw new Error('connection refused'); } } });
});

void test('404 for unknown routes, 405 with Allow for a wrong method, both in the error shape', async () => {
  await withGateway(async (h) => {
    const unknown = await h.request('/v2/whatever');
    assert.equal(unknown.status, 404);
    assert.equal((await errorBody(unknown)).code, 'not_found');
    const wrong = await h.request('/v1/audio/transcriptions/job_1/cancel', { method: 'GET' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'POST');
    assert.equal((await errorBody(wrong)).code, 'method_not_allowed');
    const del = await h.request('/v1/audio/transcriptions', { method: 'DELETE' });
    assert.equal(del.status, 405);
    assert.equal(del.headers.get('allow'), 'POST, GET, HEAD');
  });
});

void test('uploads: 413 over the byte limit, 400 for a missing or empty file and for bad field values; nothing stored or published', async () => {
  await withGateway(async (h) => {
    const wav = await readFile(await makeWav(h.dir, 1)); // 32 044 bytes > 20 000
    const big = await h.request('/v1/audio/transcriptions', { method: 'POST', body: form({ file: { data: wav, filename: 'a.wav' } }) });
    assert.equal(big.status, 413);
    const tooLarge = await errorBody(big);
    assert.equal(tooLarge.code, 'file_too_large');
    assert.match(tooLarge.message, /20000 bytes/);

    const small = wav.subarray(0, 4000);
    const cases: [Record<string, string | { data: Buffer; filename: string }>, RegExp][] = [
      [{ language: 'en' }, /missing "file"/],
      [{ file: { data: Buffer.alloc(0), filename: 'empty.wav' } }, /empty \(0 bytes\)/],
      [{ file: 'not a file part' }, /must be a file part/],
      [{ file: { data: small, filename: 'a.wav' }, language: 'xx' }, /language "xx" is not an ISO 639-1 code/],
      [{ file: { data: small, filename: 'a.wav' }, language: 'english' }, /ISO 639-1/],
      [{ file: { data: small, filename: 'a.wav' }, timestamps_granularity: 'character' }, /timestamps_granularity "character" must be one of none, segment, word/],
      [{ file: { data: small, filename: 'a.wav' }, response_format: 'srt' }, /needs an OpenAI model/],
      [{ file: { data: small, filename: 'a.wav' }, model: 'whisper-1', response_format: 'yaml' }, /response_format "yaml" must be one of/],
      [{ file: { data: small, filename: 'a.wav' }, model: 'bad model!' }, /not a valid model id/],
      [{ file: { data: small, filename: 'a.wav' }, diarize: 'true' }, /unknown field "diarize"/],
    ];
    for (const [parts, message] of cases) {
      const res = await h.request('/v1/audio/transcriptions', { method: 'POST', body: form(parts) });
      assert.equal(res.status, 400, JSON.stringify(Object.keys(parts)));
      const err = await errorBody(res);
      assert.equal(err.code, 'invalid_request');
      assert.match(err.message, message);
    }
    const two = new FormData();
    two.append('file', new Blob([small]), 'a.wav');
    two.append('file', new Blob([small]), 'b.wav');
    const twoRes = await h.request('/v1/audio/transcriptions', { method: 'POST', body: two });
    assert.equal(twoRes.status, 400);
    assert.match((await errorBody(twoRes)).message, /only one "file" part/);

    assert.equal(h.publisher.created.length, 0);
    assert.equal(h.reader.records.length, 0);
    assert.deepEqual(await h.store.list('jobs/'), []);
    assert.deepEqual(await h.storedFiles(), [], 'rejected uploads leave nothing stored, partial files included');
  }, { uploadMaxBytes: 20000 });
});

void test('OpenAI model names answer 501 when no synchronous responder is wired in, without creating a job', async () => {
  await withGateway(async (h) => {
    const wav = await readFile(await makeWav(h.dir, 1));
    const res = await h.request('/v1/audio/transcriptions', { method: 'POST', body: form({ file: { data: wav, filename: 'a.wav' }, model: 'whisper-1', response_format: 'text' }) });
    assert.equal(res.status, 501);
    const err = await errorBody(res);
    assert.equal(err.code, 'not_implemented');
    assert.match(err.message, /OpenAI-compatible synchronous mode/);
    assert.equal(h.publisher.created.length, 0);
  });
});

// Issue 12, finding 11: a job whose job.created never reached Kafka left a `pending` row that never moved.
void test('a failing publisher surfaces as 503 in the error shape, leaves no pending job row, and is logged once with the cause', async () => {
  await withGateway(async (h) => {
    h.publisher.failWith = new Error('broker down');
    const wav = await readFile(await makeWav(h.dir, 1));
    const res = await h.request('/v1/audio/transcriptions', { method: 'POST', body: form({ file: { data: wav, filename: 'a.wav' } }), headers: { 'x-request-id': 'pub-fail' } });
    assert.equal(res.status, 503);
    assert.deepEqual(await errorBody(res), { code: 'service_unavailable', message: 'a dependency is unavailable; retry later' });
    assert.equal(h.reader.records.length, 0, 'no jobs row for a job that was never queued');
    const lines = await eventually(() => {
      const mine = h.logs.filter((l) => l.fields['request_id'] === 'pub-fail');
      assert.equal(mine.length, 1, 'one log line for the failed request');
      return mine;
    });
    assert.equal(lines[0]?.level, 'error');
    assert.equal(lines[0]?.fields['status'], 503);
    assert.match(String(lines[0]?.fields['err']), /job could not be queued/);
  });
});

void test('GET status maps the job view: timestamps, error, audio duration, request/trace ids and the stages array', async () => {
  await withGateway(async (h) => {
    h.reader.put(JOB_BASE);
    const res = await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      id: JOB_BASE.jobId, status: 'running', created_at: '2026-11-28T09:00:00.000Z', started_at: '2026-11-28T09:00:01.000Z',
      completed_at: null, error: null, audio_duration_seconds: 12.5, language: 'en', model: null, request_id: 'req_origin',
      trace_id: '0af7651916cd43dd8448eb211c80319c',
      stages: [
        {
          stage: 'prepare', task_id: 'task_prepare', engine_id: 'audio-prepare', status: 'completed', started_at: '2026-11-28T09:00:01.000Z',
          completed_at: '2026-11-28T09:00:02.000Z', duration_ms: 1000, queue_wait_ms: 40, retries: 0, error: null,
        },
        {
          stage: 'transcribe', task_id: 'task_transcribe', engine_id: 'stt-batch-transcribe-pocketsphinx-en-us', status: 'running',
          started_at: '2026-11-28T09:00:03.000Z', completed_at: null, duration_ms: null, queue_wait_ms: 25, retries: 1,
          error: { code: 'DALSTON_ERR_TIMEOUT', message: 'attempt 1 timed out' },
        },
        {
          stage: 'merge', task_id: 'task_merge', engine_id: 'merge', status: 'pending', started_at: null, completed_at: null,
          duration_ms: null, queue_wait_ms: null, retries: 0, error: null,
        },
      ],
      name: null, tags: [],
    });

    h.reader.put({ ...JOB_BASE, jobId: 'job_other_tenant', tenantId: 'tenant-b' });
    const other = await h.request('/v1/audio/transcriptions/job_other_tenant');
    assert.equal(other.status, 404, "another tenant's job is not visible");
    assert.equal((await errorBody(other)).code, 'not_found');
  });
});

void test('GET status of a completed job carries text, segments and words from the transcript artifact', async () => {
  await withGateway(async (h) => {
    const words = [{ text: 'go', start: 0.1, end: 0.3 }, { text: 'forward', start: 0.3, end: 0.8 }];
    const transcript = { job_id: JOB_BASE.jobId, text: 'go forward', segments: [{ id: 0, start: 0.1, end: 0.8, text: 'go forward', words }] };
    await h.store.put(artifactKeys.transcript(JOB_BASE.jobId), Buffer.from(JSON.stringify(transcript)));
    h.reader.put({ ...JOB_BASE, status: 'completed', completedAt: Date.UTC(2026, 10, 28, 9, 0, 9), transcriptKey: artifactKeys.transcript(JOB_BASE.jobId) });
    const body = (await (await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}`)).json()) as Record<string, unknown>;
    assert.equal(body['status'], 'completed');
    assert.equal(body['completed_at'], '2026-11-28T09:00:09.000Z');
    assert.equal(body['text'], 'go forward');
    assert.deepEqual(body['segments'], transcript.segments);
    assert.deepEqual(body['words'], words, 'words gathered from the segments');

    h.reader.put({ ...JOB_BASE, jobId: 'job_running' });
    const running = (await (await h.request('/v1/audio/transcriptions/job_running')).json()) as Record<string, unknown>;
    assert.equal('text' in running, false, 'no transcript fields before completion');
  });
});

void test('task artifacts: input and output JSON of a task, 409 before output exists, 404 for unknown tasks, audited', async () => {
  await withGateway(async (h) => {
    h.reader.put(JOB_BASE);
    const input = { stage: 'prepare', inputs: { audio: 'jobs/x/audio/original.wav' } };
    const output = { duration_seconds: 12.5, sample_rate: 16000, channels: 1 };
    await h.store.put(artifactKeys.taskInput(JOB_BASE.jobId, 'task_prepare'), Buffer.from(JSON.stringify(input)));
    await h.store.put(artifactKeys.taskOutput(JOB_BASE.jobId, 'task_prepare'), Buffer.from(JSON.stringify(output)));

    const res = await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}/tasks/task_prepare/artifacts`, { headers: { 'x-request-id': 'art-1' } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      job_id: JOB_BASE.jobId, task_id: 'task_prepare', stage: 'prepare', engine_id: 'audio-prepare', status: 'completed', input, output: { data: output },
    });
    assert.equal(h.publisher.audits.length, 1);
    const audit = h.publisher.audits[0];
    assert.equal(audit?.eventType, 'artifact.read');
    assert.equal(audit?.jobId, JOB_BASE.jobId);
    assert.equal(audit?.requestId, 'art-1');
    assert.equal(audit?.actorKeyId, keyIdOf(TEST_API_KEY));
    assert.equal(audit?.audioDurationSeconds, 12.5);
    assert.deepEqual(JSON.parse(audit?.details ?? ''), { task_id: 'task_prepare', stage: 'prepare' });

    const pending = await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}/tasks/task_transcribe/artifacts`);
    assert.equal(pending.status, 409);
    const err = await errorBody(pending);
    assert.equal(err.code, 'conflict');
    assert.match(err.message, /has not produced output yet \(status running\)/);

    const unknownTask = await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}/tasks/task_nope/artifacts`);
    assert.equal(unknownTask.status, 404);
    const unknownJob = await h.request('/v1/audio/transcriptions/job_nope/tasks/task_prepare/artifacts');
    assert.equal(unknownJob.status, 404);
    assert.equal(h.publisher.audits.length, 1, 'refused reads are not audited as reads');
  });
});

void test('cancel: publishes job.cancel_requested for a live job, 409 once terminal, 404 unknown', async () => {
  await withGateway(async (h) => {
    h.reader.put(JOB_BASE);
    const res = await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}/cancel`, { method: 'POST', headers: { 'x-request-id': 'cancel-1' } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body['id'], JOB_BASE.jobId);
    assert.equal(body['status'], 'cancelling');
    assert.equal(typeof body['message'], 'string');
    assert.deepEqual(h.publisher.cancels, [
      { msg: { v: 1, type: 'job.cancel_requested', jobId: JOB_BASE.jobId, at: h.clock.now() }, headers: { requestId: 'cancel-1', tenantId: 'default' } },
    ]);

    h.reader.put({ ...JOB_BASE, status: 'cancelling' });
    const again = await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}/cancel`, { method: 'POST' });
    assert.equal(again.status, 200);
    assert.equal(h.publisher.cancels.length, 1, 'a second request while cancelling publishes nothing new');

    for (const status of ['completed', 'failed', 'cancelled'] as const) {
      h.reader.put({ ...JOB_BASE, status });
      const done = await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}/cancel`, { method: 'POST' });
      assert.equal(done.status, 409, status);
      assert.match((await errorBody(done)).message, new RegExp(`already ${status}`));
    }
    const unknown = await h.request('/v1/audio/transcriptions/job_nope/cancel', { method: 'POST' });
    assert.equal(unknown.status, 404);
  });
});

void test('export: json from the transcript artifact, txt/srt/vtt through injected renderers (501 without), audited', async () => {
  const transcript = { text: 'go forward', segments: [{ start: 0, end: 1, text: 'go forward' }] };
  const completed: JobView = { ...JOB_BASE, status: 'completed', transcriptKey: artifactKeys.transcript(JOB_BASE.jobId) };
  await withGateway(async (h) => {
    await h.store.put(artifactKeys.transcript(JOB_BASE.jobId), Buffer.from(JSON.stringify(transcript)));
    h.reader.put(completed);
    const json = await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}/export/json`);
    assert.equal(json.status, 200);
    assert.deepEqual(await json.json(), transcript);
    const txt = await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}/export/txt`);
    assert.equal(txt.status, 501);
    assert.equal((await errorBody(txt)).code, 'not_implemented');
    const bad = await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}/export/docx`);
    assert.equal(bad.status, 400);
    h.reader.put(JOB_BASE);
    const notDone = await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}/export/json`);
    assert.equal(notDone.status, 409);
    assert.deepEqual(h.publisher.audits.map((a) => [a.eventType, JSON.parse(a.details) as unknown]), [['transcript.exported', { format: 'json' }]]);
  });
  await withGateway(async (h) => {
    await h.store.put(artifactKeys.transcript(JOB_BASE.jobId), Buffer.from(JSON.stringify(transcript)));
    h.reader.put(completed);
    const srt = await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}/export/srt`);
    assert.equal(srt.status, 200);
    assert.match(srt.headers.get('content-type') ?? '', /^application\/x-subrip/);
    assert.equal(srt.headers.get('content-disposition'), `attachment; filename="${JOB_BASE.jobId}.srt"`);
    assert.equal(await srt.text(), 'SRT:go forward');
    const vtt = await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}/export/webvtt`);
    assert.equal(await vtt.text(), 'VTT:go forward');
    const broken = await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}/export/txt`);
    assert.equal(broken.status, 500, 'a renderer refusing the stored document is a server fault, not a 400');
    assert.equal((await errorBody(broken)).code, 'internal_error');
  }, {
    renderers: {
      txt: () => {
        throw new InvalidInputError('transcript.segments: expected array, got undefined');
      },
      srt: (t) => `SRT:${(t as { text: string }).text}`,
      vtt: (t) => `VTT:${(t as { text: string }).text}`,
    },
  });
});

void test('metrics are labelled with the route template, never the raw path; one log line per request without bodies', async () => {
  await withGateway(async (h) => {
    h.reader.put(JOB_BASE);
    await (await h.request(`/v1/audio/transcriptions/${JOB_BASE.jobId}`, { headers: { 'x-request-id': 'm-1' } })).arrayBuffer();
    await (await h.request('/v1/audio/transcriptions/job_unknown_123')).arrayBuffer();
    await (await h.request('/v1/audio/transcriptions/job_unknown_456')).arrayBuffer();
    await (await h.request('/no/such/path/secret_xyz')).arrayBuffer();
    const wav = await readFile(await makeWav(h.dir, 1));
    await (await h.request('/v1/audio/transcriptions', { method: 'POST', body: form({ file: { data: wav, filename: 'a.wav' } }) })).arrayBuffer();

    await eventually(() => assert.equal(h.logs.length, 5, 'all five requests closed'));
    const text = await (await h.request('/metrics', { auth: false })).text();
    const line = (labels: string) => {
      const m = new RegExp(`^dalston_gateway_requests_total\\{${labels.replace(/[/]/g, '\\/')}\\} (\\d+)$`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    assert.equal(line('method="GET",route="/v1/audio/transcriptions/:id",status="200"'), 1);
    assert.equal(line('method="GET",route="/v1/audio/transcriptions/:id",status="404"'), 2);
    assert.equal(line('method="GET",route="unmatched",status="404"'), 1);
    assert.equal(line('method="POST",route="/v1/audio/transcriptions",status="201"'), 1);
    assert.match(text, /^dalston_gateway_request_duration_seconds_count\{method="GET",route="\/v1\/audio\/transcriptions\/:id"\} 3$/m);
    assert.doesNotMatch(text, /job_unknown|secret_xyz|01TESTJOB/, 'no raw path or id in any label');

    const mine = h.logs.filter((l) => l.fields['request_id'] === 'm-1');
    assert.equal(mine.length, 1);
    const f = mine[0]?.fields ?? {};
    assert.equal(f['method'], 'GET');
    assert.equal(f['route'], '/v1/audio/transcriptions/:id');
    assert.equal(f['status'], 200);
    assert.equal(typeof f['duration_ms'], 'number');
    assert.equal(f['job_id'], JOB_BASE.jobId);
    assert.equal(f['tenant_id'], 'default');
    const requestLines = h.logs.filter((l) => typeof l.fields['route'] === 'string' && l.fields['route'] !== '/metrics');
    assert.equal(requestLines.length, 5, 'one line per request');
    assert.doesNotMatch(JSON.stringify(h.logs), /RIFF|stages|go forward/, 'no bodies in logs');
  });
});

/** A raw multipart upload the test writes by hand, so it can stop half-way; `outcome` settles on the response or error. */
function rawUpload(h: Harness, declaredBytes: number): { req: ClientRequest; outcome: Promise<string>; settled: () => boolean } {
  let done = false;
  const req = httpRequest(`${h.base}/v1/audio/transcriptions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'multipart/form-data; boundary=xyz', 'content-length': String(declaredBytes) },
  });
  const outcome = new Promise<string>((resolve) => {
    req.on('error', (err) => resolve(`error:${(err as NodeJS.ErrnoException).code ?? err.message}`));
    req.on('response', (res) => {
      res.resume();
      resolve(`status:${res.statusCode}`);
    });
  }).finally(() => (done = true));
  return { req, outcome, settled: () => done };
}

/** Resolves once the gateway is streaming an upload into the store (a partial file exists): the request is in flight. */
async function uploadInFlight(h: Harness): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await h.storedFiles()).some((f) => f.endsWith('.tmp'))) {
    if (Date.now() > deadline) throw new Error('the gateway never started storing the upload');
    await new Promise((r) => setTimeout(r, 20));
  }
}

void test('close(): stops listening at once, lets an in-flight upload finish within the grace, then resolves', async () => {
  const h = await startHarness();
  const wav = await readFile(await makeWav(h.dir));
  const head = Buffer.from('--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n');
  const tail = Buffer.from('\r\n--xyz--\r\n');
  const body = Buffer.concat([head, wav, tail]);
  const upload = rawUpload(h, body.length);
  upload.req.write(body.subarray(0, head.length + 1000));
  await uploadInFlight(h);
  let closed = false;
  // A grace far longer than the test: only the upload finishing can end close() early.
  const closing = h.close(120_000).then(() => (closed = true));
  assert.equal(h.app.listening, false, 'stops listening at once');
  await assert.rejects(fetch(`${h.base}/health`), 'a new connection is refused');
  assert.equal(upload.settled(), false, 'the in-flight upload was not cut when the listener closed');
  assert.equal(closed, false, 'close() waits for it');
  upload.req.end(body.subarray(head.length + 1000));
  assert.equal(await upload.outcome, 'status:201', 'the upload completed during the grace period');
  await closing;
  assert.equal(closed, true);
});

void test('close(): cuts a stalled upload when the grace period ends instead of hanging', async () => {
  const h = await startHarness();
  const stalled = rawUpload(h, 100_000);
  stalled.req.write(Buffer.concat([Buffer.from('--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF'), Buffer.alloc(1000)]));
  await uploadInFlight(h);
  // The upload never finishes: close() must still resolve, having cut it (the suite's timeout catches a hang).
  await h.close(300);
  assert.match(await stalled.outcome, /^error:(ECONNRESET|socket hang up)/);
  assert.equal(h.app.listening, false);
});
