/**
 * Regression tests of issue 11 (the defects a hostile probe of the running stack found), one or more per defect,
 * each naming the defect it pins. They run the real uWebSockets.js server with in-memory job ports; the
 * lifecycle races and abuse on the full stack are in test/e2e/abuse.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { REPO_ROOT } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { CATALOGUE } from '../engines/models/catalogue.js';
import { clientReason } from '../engines/audio/probe.js';
import { artifactKeys } from '../storage/index.js';
import { MAX_ERROR_MESSAGE } from './errors.js';
import { ModelInventory, unservableReason } from './models.js';
import type { JobView } from './ports.js';
import { floodUpload, rawExchange } from '../test/support/raw-http.js';
import { TEST_API_KEY, eventually, makeWav, startHarness, type Harness, type HarnessOptions } from './test-harness.js';

async function withGateway(fn: (h: Harness) => Promise<void>, options: HarnessOptions = {}): Promise<void> {
  const h = await startHarness(options);
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

const AUTH = `Bearer ${TEST_API_KEY}`;

/** A completed job with its transcript stored, as the actor and merge engine would leave it. */
async function completedJob(h: Harness, jobId: string): Promise<JobView> {
  const view: JobView = {
    jobId, tenantId: 'default', status: 'completed', createdAt: h.clock.now() - 5000, startedAt: h.clock.now() - 4000,
    completedAt: h.clock.now() - 1000, requestId: 'req_origin', traceId: undefined, language: 'en', audioDurationSeconds: 1,
    stages: [
      { stage: 'prepare', taskId: `${jobId}_prepare`, engineId: 'audio-prepare', status: 'completed', retries: 0 },
      { stage: 'transcribe', taskId: `${jobId}_transcribe`, engineId: 'stt-batch-transcribe-onnx-moonshine-tiny', status: 'failed', retries: 2 },
    ],
  };
  h.reader.put(view);
  await h.store.put(artifactKeys.transcript(jobId), Buffer.from(JSON.stringify({ text: 'hello world', segments: [], words: [] })));
  await h.store.put(`${artifactKeys.jobPrefix(jobId)}audio/original.wav`, Buffer.from('RIFF....WAVE'));
  await h.store.put(artifactKeys.taskOutput(jobId, `${jobId}_prepare`), Buffer.from(JSON.stringify({ data: { ok: true }, blobs: {} })));
  return view;
}

/** Makes the reader answer one stale read (the job as it was before a deletion), as a read racing the delete sees it. */
function staleOnce(h: Harness): (view: JobView) => void {
  const real = h.reader.getJob.bind(h.reader);
  let stale: JobView | undefined;
  h.reader.getJob = async (id, tenant) => {
    const v = stale;
    stale = undefined;
    return v ?? real(id, tenant);
  };
  return (view) => (stale = view);
}

// ---- defect 2: a read racing a delete ----------------------------------------------------------------------

void test('issue 11 defect 2: a status, export, artifact or audio read that loaded the job just before a DELETE answers 404, never 500', async () => {
  await withGateway(async (h) => {
    const jobId = 'job_01RACEDELETE000000000000A';
    const view = await completedJob(h, jobId);
    const stale = staleOnce(h);
    assert.equal((await h.request(`/v1/audio/transcriptions/${jobId}`, { method: 'DELETE' })).status, 204);
    for (const path of ['', '/export/json', `/tasks/${jobId}_prepare/artifacts`, '/audio']) {
      stale(view); // the read saw the job before the deletion hid it; its files are gone now
      const res = await h.request(`/v1/audio/transcriptions/${jobId}${path}`);
      const body = (await res.json()) as { error?: { code: string; message: string } };
      assert.equal(res.status, 404, `GET …${path}: ${JSON.stringify(body)}`);
      assert.equal(body.error?.code, 'not_found');
    }
    assert.equal(h.logs.filter((l) => l.level === 'error').length, 0, 'no error-level log line');
  });
});

void test('issue 11 defect 2: concurrent GETs and exports while the job is deleted get 200 or 404, never 500', async () => {
  await withGateway(async (h) => {
    const jobId = 'job_01RACEDELETE000000000000B';
    await completedJob(h, jobId);
    const reads = Array.from({ length: 12 }, (_, i) => h.request(`/v1/audio/transcriptions/${jobId}${i % 3 === 0 ? '/export/json' : ''}`));
    const del = h.request(`/v1/audio/transcriptions/${jobId}`, { method: 'DELETE' });
    const statuses = await Promise.all([...reads, del].map(async (r) => (await r).status));
    assert.equal(statuses.at(-1), 204);
    for (const s of statuses.slice(0, -1)) assert.ok(s === 200 || s === 404, `read answered ${s}`);
  });
});

// ---- defect 3: concurrent deletes --------------------------------------------------------------------------

void test('issue 11 defect 3: five concurrent DELETEs of one job: one 204, four 404, one job.deleted and one data.deleted audit row', async () => {
  await withGateway(async (h) => {
    const jobId = 'job_01CONCURRENTDELETE00000A';
    await completedJob(h, jobId);
    const statuses = await Promise.all(Array.from({ length: 5 }, async () => (await h.request(`/v1/audio/transcriptions/${jobId}`, { method: 'DELETE' })).status));
    assert.deepEqual(statuses.sort(), [204, 404, 404, 404, 404]);
    assert.equal(h.publisher.audits.filter((a) => a.eventType === 'job.deleted').length, 1);
    assert.equal(h.publisher.audits.filter((a) => a.eventType === 'data.deleted').length, 1);
    assert.equal(h.publisher.deletions.length, 1);
    // And one after the fact is a 404 too.
    assert.equal((await h.request(`/v1/audio/transcriptions/${jobId}`, { method: 'DELETE' })).status, 404);
  });
});

// ---- defects 4 and 13: jobs no engine here can run ---------------------------------------------------------

void test('issue 11 defect 4: a job for a model that is not installed is refused at submission (400 naming the installed ones), nothing stored', async () => {
  const home = await mkdtemp(join(tmpdir(), 'dalston-nomodels-'));
  try {
    await withGateway(async (h) => {
      const wav = await readFile(await makeWav(h.dir));
      for (const [model, named] of [['whisper-base', 'model "whisper-base"'], ['', 'the default model "moonshine-tiny"']] as const) {
        const fd = new FormData();
        fd.append('file', new Blob([wav], { type: 'audio/wav' }), 'a.wav');
        if (model) fd.append('model', model);
        const res = await h.request('/v1/audio/transcriptions', { method: 'POST', body: fd });
        const body = (await res.json()) as { error: { code: string; message: string } };
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(body.error.code, 'invalid_request');
        assert.ok(body.error.message.startsWith(`${named} is not installed on this server`), body.error.message);
        // Only what verifies is listed: pocketsphinx's Debian model at most, on a machine set up by ./dalston.
        assert.doesNotMatch(body.error.message.split('installed: ')[1] ?? '', /whisper-base|moonshine-tiny/);
      }
      assert.equal(h.publisher.created.length, 0, 'no job.created published');
      assert.deepEqual(await eventually(async () => h.storedFiles()).then((p) => p), [], 'no audio kept');
    }, { modelsHomeDir: home, transcribeEngine: 'stt-batch-transcribe-onnx-moonshine-tiny' });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

void test('issue 11 defects 4 and 13: with the models of this machine, a language its model lacks is refused (400), one it has is queued, and the job body names the model', async () => {
  const home = process.env['DALSTON_HOME'] ?? join(REPO_ROOT, '.dalston');
  await withGateway(async (h) => {
    const wav = await readFile(await makeWav(h.dir));
    const submit = async (fields: Record<string, string>) => {
      const fd = new FormData();
      fd.append('file', new Blob([wav], { type: 'audio/wav' }), 'a.wav');
      for (const [k, v] of Object.entries(fields)) fd.append(k, v);
      const res = await h.request('/v1/audio/transcriptions', { method: 'POST', body: fd });
      return { status: res.status, body: (await res.json()) as { id?: string; error?: { message: string } } };
    };
    const fr = await submit({ model: 'moonshine-tiny', language: 'fr' });
    assert.equal(fr.status, 400, JSON.stringify(fr.body));
    assert.match(fr.body.error?.message ?? '', /^model "moonshine-tiny" transcribes en, not "fr"/);
    const en = await submit({ model: 'moonshine-tiny', language: 'en' });
    assert.equal(en.status, 201, JSON.stringify(en.body));
    const status = (await (await h.request(`/v1/audio/transcriptions/${en.body.id ?? ''}`)).json()) as { model: unknown };
    assert.equal(status.model, 'moonshine-tiny', 'the job body names the model it was sent');
  }, { modelsHomeDir: home, transcribeEngine: 'stt-batch-transcribe-onnx-moonshine-tiny' });
});

void test('issue 11 defect 13 (pure): unservableReason names the languages a model has and the installed models that have the one asked for', () => {
  const installed = ['moonshine-tiny', 'whisper-base'];
  assert.equal(unservableReason({ model: 'moonshine-tiny', language: 'en' }, installed, undefined), undefined);
  assert.equal(unservableReason({ model: 'moonshine-tiny', language: 'auto' }, installed, undefined), undefined);
  assert.equal(unservableReason({ model: 'moonshine-tiny', language: 'fr' }, installed, undefined),
    'model "moonshine-tiny" transcribes en, not "fr"; installed models that do: whisper-base');
  assert.equal(unservableReason({ language: 'fr' }, ['moonshine-tiny'], 'moonshine-tiny'),
    'model "moonshine-tiny" transcribes en, not "fr"; no installed model here does');
  assert.equal(unservableReason({ model: 'whisper-base', language: 'fr' }, installed, 'moonshine-tiny'), undefined);
});

// ---- defect 6: stalled uploads ------------------------------------------------------------------------------

void test('issue 11 defect 6: an upload that sends 200 bytes and stalls is abandoned after the body idle timeout: 408 JSON, connection closed, nothing kept', async () => {
  await withGateway(async (h) => {
    const head = [
      'POST /v1/audio/transcriptions HTTP/1.1', 'Host: x', `Authorization: ${AUTH}`, 'Content-Type: multipart/form-data; boundary=b',
      'Content-Length: 100000', 'X-Request-ID: req_stalled_upload', '', '',
    ].join('\r\n');
    const body = `--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n${'R'.repeat(100)}`;
    const r = await rawExchange(h.base, head + body, 10_000);
    assert.ok(r.closed, 'the server closed the connection');
    assert.match(r.text, /^HTTP\/1\.1 408 /);
    assert.match(r.text, /x-request-id: req_stalled_upload/i);
    assert.match(r.text, /"code":"request_timeout"/);
    assert.ok(r.ms >= 900, `not before the timeout (${r.ms} ms)`);
    await eventually(async () => assert.deepEqual(await h.storedFiles(), []), 3000);
  }, { bodyIdleTimeoutSeconds: 1 });
});

// ---- defect 7: unauthenticated bodies ----------------------------------------------------------------------

void test('issue 11 defect 7: an unauthenticated 300 MiB upload gets 401 with Connection: close at once and the socket is closed unread', async () => {
  await withGateway(async (h) => {
    // Sent like curl sends a large upload (Expect: 100-continue, then the body as fast as the socket takes it).
    const r = await floodUpload(h.base, '/v1/audio/transcriptions', 300 * 1024 * 1024, true, 5000);
    const written = r.written;
    // uWebSockets.js v20.30 answers `Expect: 100-continue` itself before the application sees the request; the 401
    // follows at once and the connection is closed, so the body is never read.
    assert.match(r.text, /HTTP\/1\.1 401 Unauthorized\r\n/);
    assert.match(r.text, /\r\nConnection: close\r\n/i);
    assert.ok(r.closed, 'the server closed the connection');
    assert.ok(written < 300 * 1024 * 1024, `the client could not push the whole body (${written} bytes written)`);
  });
});

// ---- defect 10: echoed input -------------------------------------------------------------------------------

void test('issue 11 defect 10: a 60 KB field value is not echoed whole: the answer and the log line stay short', async () => {
  await withGateway(async (h) => {
    const fd = new FormData();
    fd.append('file', new Blob([await readFile(await makeWav(h.dir))], { type: 'audio/wav' }), 'a.wav');
    fd.append('language', 'x'.repeat(60_000));
    const res = await h.request('/v1/audio/transcriptions', { method: 'POST', body: fd, headers: { 'x-request-id': 'req_long_field' } });
    const text = await res.text();
    assert.equal(res.status, 400);
    assert.ok(text.length < 400, `answer of ${text.length} characters`);
    assert.match(text, /field \\"language\\" is 60000 characters long/);
    const line = await eventually(() => {
      const l = h.logs.find((x) => x.fields['request_id'] === 'req_long_field' && x.msg === 'request rejected');
      assert.ok(l);
      return l;
    });
    assert.ok(JSON.stringify(line.fields).length < 2000, 'the log line is short');
  });
});

void test('issue 11 defect 10 (found by the abuse suite): a field over the size limit followed by the file part is answered at once, not left hanging', async () => {
  await withGateway(async (h) => {
    const wav = await readFile(await makeWav(h.dir, 3));
    const body = Buffer.concat([
      Buffer.from(`--b\r\nContent-Disposition: form-data; name="language"\r\n\r\n${'x'.repeat(100_000)}\r\n`),
      Buffer.from('--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'), wav, Buffer.from('\r\n--b--\r\n'),
    ]);
    const res = await h.request('/v1/audio/transcriptions', { method: 'POST', body, headers: { 'content-type': 'multipart/form-data; boundary=b' }, signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /field "language" is longer than 65536 bytes/);
    await eventually(async () => assert.deepEqual(await h.storedFiles(), []), 3000);
  });
});

void test('issue 11 defect 10: no error message is ever longer than MAX_ERROR_MESSAGE, whatever input it quotes', async () => {
  await withGateway(async (h) => {
    const res = await h.request(`/v1/audio/transcriptions/${'j'.repeat(5000)}/export/${'f'.repeat(5000)}`);
    const body = (await res.json()) as { error: { message: string } };
    assert.equal(res.status, 400);
    assert.ok(body.error.message.length <= MAX_ERROR_MESSAGE, `${body.error.message.length} characters`);
  });
});

// ---- defect 11: ffmpeg's raw output ------------------------------------------------------------------------

void test('issue 11 defect 11: a decode failure shown to clients has no heap addresses or server paths; the raw text is kept apart', () => {
  const stderr = '[wav @ 0x55d9c1a2b3c0] Invalid sample rate: 0\n/var/lib/dalston/tmp/job_1/input.wav: Invalid data found when processing input\n';
  const reason = clientReason(stderr, ['/var/lib/dalston/tmp/job_1/input.wav']);
  assert.equal(reason, 'Invalid sample rate: 0; input: Invalid data found when processing input');
  assert.doesNotMatch(reason, /0x[0-9a-f]/);
  assert.ok(clientReason('x'.repeat(5000), []).length <= 200);
});

// ---- defect 12: /v1/models does not re-hash ----------------------------------------------------------------

void test('issue 11 defect 12: the model inventory verifies (hashes) each model once, and again only the one whose files changed', async () => {
  const home = await mkdtemp(join(tmpdir(), 'dalston-inventory-'));
  try {
    const asr = CATALOGUE.filter((m) => m.task === 'asr' && m.systemDir === undefined);
    const target = asr[0];
    assert.ok(target);
    const file = join(home, 'models', target.id, target.files[0]?.name ?? 'x');
    await mkdir(join(home, 'models', target.id), { recursive: true });
    await writeFile(file, 'not the weights');
    const calls: string[] = [];
    const inventory = new ModelInventory(home, async (id) => {
      calls.push(id);
      throw new Error('not installed');
    });
    const first = await inventory.list();
    const perList = calls.length;
    assert.equal(perList, first.length, 'every recogniser verified once');
    await Promise.all([inventory.list(), inventory.list(), inventory.installed()]);
    assert.equal(calls.length, perList, 'no verification when nothing changed');
    await utimes(file, new Date(), new Date(Date.now() + 60_000));
    await inventory.list();
    assert.deepEqual(calls.slice(perList), [target.id], 'only the changed model is verified again');
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

// ---- defect 14: client-caused 5xx --------------------------------------------------------------------------

void test('issue 11 defect 14: a 501 for a mode this server does not offer is logged at warn, not error', async () => {
  await withGateway(async (h) => {
    const fd = new FormData();
    fd.append('file', new Blob([await readFile(await makeWav(h.dir))], { type: 'audio/wav' }), 'a.wav');
    fd.append('model', 'whisper-1');
    const res = await h.request('/v1/audio/transcriptions', { method: 'POST', body: fd, headers: { 'x-request-id': 'req_501' } });
    assert.equal(res.status, 501);
    const line = await eventually(() => {
      const l = h.logs.find((x) => x.fields['request_id'] === 'req_501' && x.fields['status'] === 501);
      assert.ok(l);
      return l;
    });
    assert.equal(line.level, 'warn');
    assert.equal(h.logs.filter((l) => l.level === 'error').length, 0);
  });
});

// ---- defect 16: the small ones ----------------------------------------------------------------------------

void test('issue 11 defect 16: TRACE is named in the 405 message, not "OTHER" (uWS closes a PROPFIND connection before the app sees it)', async () => {
  await withGateway(async (h) => {
    for (const method of ['TRACE']) {
      const r = await rawExchange(h.base, `${method} /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nConnection: close\r\n\r\n`);
      assert.match(r.text, /^HTTP\/1\.1 405 /);
      assert.match(r.text, new RegExp(`"\\\\"${method}\\\\" is not allowed on /v1/audio/transcriptions`));
      assert.doesNotMatch(r.text, /OTHER/);
    }
  });
});

void test('issue 11 defect 16: a second file part named "audio" is named in the answer', async () => {
  await withGateway(async (h) => {
    const wav = new Blob([await readFile(await makeWav(h.dir))], { type: 'audio/wav' });
    const fd = new FormData();
    fd.append('file', wav, 'a.wav');
    fd.append('audio', wav, 'b.wav');
    const res = await h.request('/v1/audio/transcriptions', { method: 'POST', body: fd });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /unexpected file part "audio"/);
  });
});

void test('issue 11 defect 16: a gzip-encoded request body is refused (415), never stored as audio', async () => {
  await withGateway(async (h) => {
    const fd = new FormData();
    fd.append('file', new Blob([await readFile(await makeWav(h.dir))], { type: 'audio/wav' }), 'a.wav');
    const res = await h.request('/v1/audio/transcriptions', { method: 'POST', body: fd, headers: { 'content-encoding': 'gzip' } });
    assert.equal(res.status, 415);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'unsupported_media_type');
    assert.equal(h.publisher.created.length, 0);
  });
});

void test('issue 11 defect 16: two Authorization headers are a 400, not "the first wins"', async () => {
  await withGateway(async (h) => {
    for (const order of [[AUTH, 'Bearer wrong'], ['Bearer wrong', AUTH]]) {
      const r = await rawExchange(h.base, `GET /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: ${order[0]}\r\nAuthorization: ${order[1]}\r\nConnection: close\r\n\r\n`);
      assert.match(r.text, /^HTTP\/1\.1 400 /);
      assert.match(r.text, /the authorization header was sent more than once/);
    }
  });
});

void test('issue 11 defect 16: an artifact of a task that failed is 404 "produced no output", not 409 "not yet"', async () => {
  await withGateway(async (h) => {
    const jobId = 'job_01FAILEDTASKARTIFACT00000';
    await completedJob(h, jobId);
    const res = await h.request(`/v1/audio/transcriptions/${jobId}/tasks/${jobId}_transcribe/artifacts`);
    assert.equal(res.status, 404);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /ended failed and produced no output/);
  });
});

void test('issue 11 defect 16: a gateway request log line carries tenant_id once', async () => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.length > 0));
      done();
    },
  });
  await withGateway(async (h) => {
    assert.equal((await h.request('/v1/audio/transcriptions?limit=1', { headers: { 'x-request-id': 'req_tenant_once' } })).status, 200);
    const line = await eventually(() => {
      const l = lines.find((x) => x.includes('req_tenant_once') && x.includes('"msg":"request"'));
      assert.ok(l);
      return l;
    });
    assert.equal(line.match(/"tenant_id"/g)?.length, 1, line);
  }, { log: createLogger({ service: 'dalston-gateway', destination }) });
});
