/**
 * Kafka ingress on the real stack: a producer that never speaks HTTP submits a signed job.request (JSON, inline
 * audio) on jobs.requests with plain kafkajs; the job completes and its outcome appears on jobs.results with the
 * producer's requestId. Audio named by URL (an allow-listed loopback server) or by the key of an object under
 * `incoming/` in the artifact store works the same way. Unsigned, badly signed, malformed and oversized requests,
 * and ones whose URL or key is refused, land in the dead-letter topic with their reason, and the next good request
 * still goes through.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../../core/config.js';
import { wordErrors } from '../../engines/asr/wer.js';
import { MOONSHINE_TINY, batchEngineId } from '../../engines/models/catalogue.js';
import { keyIdOf } from '../../gateway/index.js';
import { DEAD_LETTER, JOB_REQUESTS, JOB_RESULTS, checkJobResult, decodeMessage, prefixed, requestHeaders } from '../../streams/index.js';
import { ESPEAK_SENTENCES, synthesizeFile } from '../../harness/speech-fixtures.js';
import { startAudioUrlServer } from '../support/audio-url-server.js';
import { TopicRecorder } from '../support/runtime-fixture.js';
import { TERMINAL, startHarness, type Harness } from '../../harness/pipeline-harness.js';

const ENGINE = batchEngineId(MOONSHINE_TINY);
let h: Harness;
let results: TopicRecorder;
let deadLetters: TopicRecorder;

before(async () => {
  h = await startHarness({ name: 'ingress', engines: ['audio-prepare', ENGINE, 'merge'], env: { DALSTON_TRANSCRIBE_ENGINE: ENGINE, DALSTON_KAFKA_INLINE_AUDIO_MAX_BYTES: '500000', DALSTON_URL_ALLOW_HOSTS: '127.0.0.1' } });
  results = new TopicRecorder(h.kafka, prefixed(h.prefix, JOB_RESULTS.name), (v) => ({ ...decodeMessage(checkJobResult, v) }));
  deadLetters = new TopicRecorder(h.kafka, prefixed(h.prefix, DEAD_LETTER.name), (v) => JSON.parse(v.toString('utf8')) as Record<string, unknown>);
  await Promise.all([results.start(), deadLetters.start()]);
});
after(async () => {
  await results?.close();
  await deadLetters?.close();
  await h?.stop();
});

async function produce(value: Buffer, headers: Record<string, string>): Promise<void> {
  const producer = h.kafka.producer();
  await producer.connect();
  try {
    await producer.send({ topic: prefixed(h.prefix, JOB_REQUESTS.name), messages: [{ key: randomUUID(), value, headers }] });
  } finally {
    await producer.disconnect();
  }
}

function request(requestId: string, audio: Buffer | Record<string, string>, params: Record<string, unknown> = { language: 'en' }): Buffer {
  const ref = Buffer.isBuffer(audio) ? { base64: audio.toString('base64'), filename: 'speech.wav' } : audio;
  return Buffer.from(JSON.stringify({ v: 1, type: 'job.request', requestId, audio: ref, params }));
}

const signedBy = (value: Buffer) => requestHeaders(h.apiKey, keyIdOf(h.apiKey), value);

async function eventually<T>(what: string, probe: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    const v = probe();
    if (v !== undefined) return v;
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

test('a signed request becomes a job; its outcome on jobs.results carries the requestId and the transcript has the spoken words', async (t) => {
  const sentence = ESPEAK_SENTENCES[1] ?? '';
  const audio = await readFile(await synthesizeFile(sentence, { voice: 'en-us', padBefore: 0.3, padAfter: 0.3 }));
  const requestId = `pipeline-${randomUUID()}`;
  const value = request(requestId, audio);
  await produce(value, requestHeaders(h.apiKey, keyIdOf(h.apiKey), value));
  const outcome = await eventually('the outcome', () => results.values().find((o) => o['requestId'] === requestId));
  assert.equal(outcome['status'], 'completed', JSON.stringify(outcome));
  const jobId = String(outcome['jobId']);
  // The answer comes from ClickHouse, which the sink fills a moment after the outcome was published.
  const job = await h.waitFor(jobId, (j) => TERMINAL.has(j.status));
  assert.ok(wordErrors(sentence, job.text ?? '').wer <= 0.2, `"${job.text ?? ''}" for "${sentence}"`);
  t.diagnostic(`request ${requestId} → ${jobId}: "${job.text ?? ''}"`);
});

test('audio by URL (an allow-listed server) and by the key of an object under incoming/ become jobs with the spoken words', async () => {
  // The sentence the first test uses: what is checked here is how the audio arrives, not the recogniser.
  const sentence = ESPEAK_SENTENCES[1] ?? '';
  const wav = await synthesizeFile(sentence, { voice: 'en-us', padBefore: 0.3, padAfter: 0.3 });
  const server = await startAudioUrlServer([wav]);
  // The producer's own upload into the store (the fs store under DALSTON_HOME, as the gateway sees it).
  const home = process.env['DALSTON_HOME'] ?? join(REPO_ROOT, '.dalston');
  const key = `incoming/${randomUUID()}.wav`;
  await mkdir(join(home, 'artifacts', 'incoming'), { recursive: true });
  await copyFile(wav, join(home, 'artifacts', key));
  try {
    const byUrl = request(`url-${randomUUID()}`, { url: server.urlOf(wav) });
    const byKey = request(`key-${randomUUID()}`, { key });
    await produce(byUrl, signedBy(byUrl));
    await produce(byKey, signedBy(byKey));
    for (const value of [byUrl, byKey]) {
      const requestId = (JSON.parse(value.toString('utf8')) as { requestId: string }).requestId;
      const outcome = await eventually(`the outcome of ${requestId}`, () => results.values().find((o) => o['requestId'] === requestId));
      assert.equal(outcome['status'], 'completed', JSON.stringify(outcome));
      const job = await h.waitFor(String(outcome['jobId']), (j) => TERMINAL.has(j.status));
      const stored = Buffer.from(await (await h.api(`/v1/audio/transcriptions/${String(outcome['jobId'])}/audio`)).arrayBuffer());
      assert.ok(stored.equals(await readFile(wav)), `${requestId}: the job's audio is the producer's file, byte for byte`);
      assert.ok(wordErrors(sentence, job.text ?? '').wer <= 0.2, `${requestId}: "${job.text ?? ''}" for "${sentence}"`);
    }
    assert.ok(existsSync(join(home, 'artifacts', key)), 'the producer\'s object is left where it was');
  } finally {
    await server.close();
    await rm(join(home, 'artifacts', key), { force: true });
  }
});

test('unsigned, badly signed, stale, malformed and oversized requests, and refused URLs and keys, are dead-lettered with their reason; the next good one still runs', async () => {
  const audio = await readFile(await synthesizeFile(ESPEAK_SENTENCES[0] ?? '', { voice: 'en-us' }));
  const good = request(`ok-${randomUUID()}`, audio);
  const cases: [string, Buffer, Record<string, string>, RegExp][] = [
    ['unsigned', good, {}, /unknown dalston-key-id|unsigned request/],
    ['bad signature', good, { ...requestHeaders(h.apiKey, keyIdOf(h.apiKey), good), 'dalston-signature': 'ab'.repeat(32) }, /signature does not match/],
    ['wrong key', good, requestHeaders('dk_someone_else', keyIdOf('dk_someone_else'), good), /unknown dalston-key-id/],
    ['stale', good, requestHeaders(h.apiKey, keyIdOf(h.apiKey), good, Date.now() - 60 * 60 * 1000), /outside the 15-minute window/],
    ['not JSON', Buffer.from('{nope'), requestHeaders(h.apiKey, keyIdOf(h.apiKey), Buffer.from('{nope')), /not JSON/],
    ['bad model', request('m', audio, { model: 'nope-9' }), requestHeaders(h.apiKey, keyIdOf(h.apiKey), request('m', audio, { model: 'nope-9' })), /model "nope-9"/],
    ['too big', request('big', Buffer.alloc(600_000, 1)), requestHeaders(h.apiKey, keyIdOf(h.apiKey), request('big', Buffer.alloc(600_000, 1))), /at most 500000/],
    ['two sources', request('two', { base64: 'AAAA', url: 'http://127.0.0.1/a.wav' }), signedBy(request('two', { base64: 'AAAA', url: 'http://127.0.0.1/a.wav' })), /exactly one of base64, url, key/],
    ['private URL', request('ssrf', { url: 'http://127.0.0.2:9/a.wav' }), signedBy(request('ssrf', { url: 'http://127.0.0.2:9/a.wav' })), /url_not_allowed/],
    ['key outside incoming/', request('jobkey', { key: 'jobs/job_x/audio/original.wav' }), signedBy(request('jobkey', { key: 'jobs/job_x/audio/original.wav' })), /must be under incoming\//],
    ['missing key', request('nokey', { key: 'incoming/none.wav' }), signedBy(request('nokey', { key: 'incoming/none.wav' })), /not in the artifact store/],
  ];
  const before = deadLetters.values().length;
  for (const [, value, headers] of cases) await produce(value, headers);
  const letters = await eventually('dead letters', () => {
    const mine = deadLetters.values().slice(before).filter((d) => (d['source'] as { topic?: string } | undefined)?.topic === prefixed(h.prefix, JOB_REQUESTS.name));
    return mine.length >= cases.length ? mine : undefined;
  });
  const reasons = letters.map((d) => String((d['error'] as { message?: string } | undefined)?.message ?? ''));
  for (const [name, , , pattern] of cases) assert.ok(reasons.some((r) => pattern.test(r)), `${name}: a dead letter saying ${String(pattern)} among ${JSON.stringify(reasons)}`);
  assert.equal(letters.length, cases.length, 'each refused request dead-lettered once');
  const big = letters.find((d) => /at most 500000/.test(String((d['error'] as { message?: string } | undefined)?.message)));
  assert.equal(big?.['payloadBase64'], null, 'a request too large to copy into its dead letter is left out…');
  assert.ok(Number(big?.['payloadOmittedBytes']) > 800_000, '…and its size noted');

  const signed = request(`after-${randomUUID()}`, audio);
  const requestId = (JSON.parse(signed.toString('utf8')) as { requestId: string }).requestId;
  await produce(signed, requestHeaders(h.apiKey, keyIdOf(h.apiKey), signed));
  const outcome = await eventually('the next good request', () => results.values().find((o) => o['requestId'] === requestId));
  assert.equal(outcome['status'], 'completed');
});
