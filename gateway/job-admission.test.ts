import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { engineOfQueue } from './adapters/kafka-backlog.js';
import { MAX_RETRY_AFTER_SECONDS, STALLED_RETRY_AFTER_SECONDS, admissionDecision, type AdmissionRefusal, type JobAdmission } from './job-admission.js';
import { makeWav, startHarness } from './test-harness.js';

void test('admission: below the limit a job is queued; at it, a refusal whose Retry-After is the time to drain the excess', () => {
  assert.equal(admissionDecision({ queuedTasks: 99, drainPerSecond: 5 }, 0, 100), undefined);
  assert.deepEqual(admissionDecision({ queuedTasks: 99, drainPerSecond: 5 }, 1, 100), { queuedTasks: 100, limit: 100, retryAfterSeconds: 1 },
    'jobs admitted since the sample count: a burst between samples stops at the limit');
  assert.equal(admissionDecision({ queuedTasks: 150, drainPerSecond: 5 }, 0, 100)?.retryAfterSeconds, 11, '51 excess tasks at 5 per second');
  assert.equal(admissionDecision({ queuedTasks: 100_000, drainPerSecond: 5 }, 0, 100)?.retryAfterSeconds, MAX_RETRY_AFTER_SECONDS);
  assert.equal(admissionDecision({ queuedTasks: 100, drainPerSecond: 0 }, 0, 100)?.retryAfterSeconds, STALLED_RETRY_AFTER_SECONDS, 'not draining');
  assert.equal(admissionDecision({ queuedTasks: 100, drainPerSecond: undefined }, 0, 100)?.retryAfterSeconds, STALLED_RETRY_AFTER_SECONDS, 'one sample only');
  assert.equal(admissionDecision({ queuedTasks: 10 ** 9, drainPerSecond: 1 }, 0, 0), undefined, 'limit 0: never refused');
  assert.equal(admissionDecision(undefined, 10 ** 6, 100), undefined, 'no sample yet: admitted (sampling failing must not stop the service)');
});

void test('the engine of a queue topic: tasks.<stage>.<engine_id>, engine ids with dots included; other topics are not queues', () => {
  assert.equal(engineOfQueue('dalston.tasks.transcribe.stt-batch-transcribe-onnx-whisper-tiny.en', 'dalston.'), 'stt-batch-transcribe-onnx-whisper-tiny.en');
  assert.equal(engineOfQueue('dalston.tasks.prepare.audio-prepare', 'dalston.'), 'audio-prepare');
  for (const topic of ['dalston.tasks.control', 'dalston.jobs.events', 'other.tasks.merge.merge', 'dalston.tasks.merge', 'dalston.tasks.merge.']) {
    assert.equal(engineOfQueue(topic, 'dalston.'), undefined, topic);
  }
});

void test('a refused submission answers 503 with Retry-After and the JSON error, before its upload is stored or a job queued', async () => {
  let refusal: AdmissionRefusal | undefined = { queuedTasks: 12_000, limit: 10_000, retryAfterSeconds: 7 };
  let admitted = 0;
  const admission: JobAdmission = { refusal: () => refusal, admitted: () => void admitted++ };
  const h = await startHarness({ admission });
  try {
    // Six megabytes: still uploading when the refusal is decided, so the answer must wait for the body to be dropped.
    const wav = await makeWav(h.dir, 190);
    const post = async () => {
      const fd = new FormData();
      fd.append('file', new Blob([await readFile(wav)], { type: 'audio/wav' }), 'a.wav');
      return h.request('/v1/audio/transcriptions', { method: 'POST', body: fd });
    };
    const refused = await post();
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '7');
    const body = (await refused.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'service_unavailable');
    assert.match(body.error.message, /12000 tasks are queued \(limit 10000\); retry after 7 s/);
    assert.equal(h.publisher.created.length, 0, 'no job queued');
    assert.deepEqual((await h.storedFiles()).filter((f) => f.startsWith('jobs/')), [], 'nothing stored');
    assert.equal(admitted, 0);
    assert.equal(h.logs.filter((l) => l.fields['status'] === 503).length, 1, 'logged once');

    refusal = undefined;
    const accepted = await post();
    assert.equal(accepted.status, 201);
    assert.equal(admitted, 1, 'an accepted job counts toward the next decision');
  } finally {
    await h.close();
  }
});
