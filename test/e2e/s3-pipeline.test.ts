/**
 * One batch job end to end with the S3 artifact store (DALSTON_STORAGE_BACKEND=s3) against moto's S3 server: every
 * process (gateway, actor host, engines) reads and writes the bucket, never the local artifacts directory. The upload
 * is transcribed, its artifacts are served (task output, SRT export, the original audio whole and by byte range) and
 * deleting the job empties its prefix in the bucket. One short job, so the suite stays fast.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { artifactKeys } from '../../storage/index.js';
import { ESPEAK_SENTENCES, synthesizeFile } from '../../harness/speech-fixtures.js';
import { MOTO_AWS_ENV, MOTO_REGION, startMotoS3, type MotoS3 } from '../support/moto-server.js';
import { TERMINAL, startHarness, words, type Harness } from '../../harness/pipeline-harness.js';

const BUCKET = `dalston-e2e-${randomBytes(4).toString('hex')}`;
let s3: MotoS3;
let h: Harness;

before(async () => {
  s3 = await startMotoS3();
  await s3.createBucket(BUCKET);
  h = await startHarness({
    name: 's3',
    env: { DALSTON_STORAGE_BACKEND: 's3', DALSTON_S3_BUCKET: BUCKET, DALSTON_S3_ENDPOINT: s3.endpoint, DALSTON_S3_REGION: MOTO_REGION, ...MOTO_AWS_ENV },
  });
});

after(async () => {
  await h?.stop();
  await s3?.stop();
});

async function keysUnder(prefix: string): Promise<string[]> {
  const page = await s3.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (page.Contents ?? []).map((o) => o.Key ?? '').sort();
}

async function object(key: string): Promise<Buffer> {
  const out = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

test('a batch job on the S3 store: upload, transcript, task output, export, audio download (whole and a range), delete', async () => {
  const sentence = ESPEAK_SENTENCES[0] ?? '';
  const wav = await synthesizeFile(sentence, { voice: 'en-us+klatt', padBefore: 0.3, padAfter: 0.3 });
  const uploaded = await readFile(wav);
  const submitted = await h.submit(wav, { language: 'en' });
  assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
  const id = submitted.body.id;
  const job = await h.waitFor(id, (j) => TERMINAL.has(j.status));
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  const heard = ['weather', 'today', 'chance', 'rain'].filter((w) => words(job.text ?? '').includes(w));
  assert.ok(heard.length >= 3, `the transcript has the spoken words (heard ${heard.join(', ')}): ${job.text ?? ''}`);

  // Everything the job produced is in the bucket: the upload byte for byte, each task's output, the transcript.
  const keys = await keysUnder(artifactKeys.jobPrefix(id));
  const original = artifactKeys.originalAudio(id, 'wav');
  assert.ok(keys.includes(original), `the upload is in the bucket: ${keys.join(', ')}`);
  assert.ok((await object(original)).equals(uploaded), 'the stored upload is the uploaded file');
  assert.ok(keys.includes(artifactKeys.transcript(id)), 'the transcript is in the bucket');
  for (const s of job.stages) assert.ok(keys.includes(artifactKeys.taskOutput(id, s.task_id)), `${s.stage}'s output is in the bucket`);
  const transcript = JSON.parse((await object(artifactKeys.transcript(id))).toString('utf8')) as { text?: string };
  assert.equal(transcript.text, job.text, 'the API serves the transcript stored in S3');
  // And nothing went to the local store the fs backend would use.
  const home = process.env['DALSTON_HOME'] ?? join(process.cwd(), '.dalston');
  assert.equal(existsSync(join(home, 'artifacts', 'jobs', id)), false, 'no local artifacts directory for the job');

  const transcribe = job.stages.find((s) => s.stage === 'transcribe');
  assert.ok(transcribe);
  const artifacts = await h.api(`/v1/audio/transcriptions/${id}/tasks/${transcribe.task_id}/artifacts`);
  assert.equal(artifacts.status, 200);
  const output = (await artifacts.json()) as { output: { data: { text: string } } };
  assert.ok(heard.every((w) => words(output.output.data.text).includes(w)), `the task output read from S3 has the words: ${output.output.data.text}`);

  const srt = await h.api(`/v1/audio/transcriptions/${id}/export/srt`);
  assert.equal(srt.status, 200);
  const srtText = await srt.text();
  assert.match(srtText, /^1\r?\n\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d\r?\n/);
  assert.ok(heard.every((w) => words(srtText).includes(w)), `the export has the words: ${srtText}`);

  const audio = await h.api(`/v1/audio/transcriptions/${id}/audio`);
  assert.equal(audio.status, 200);
  assert.equal(audio.headers.get('content-type'), 'audio/wav');
  assert.ok(Buffer.from(await audio.arrayBuffer()).equals(uploaded), 'the download is the upload');
  const range = await h.api(`/v1/audio/transcriptions/${id}/audio`, { headers: { range: 'bytes=100-1099' } });
  assert.equal(range.status, 206);
  assert.equal(range.headers.get('content-range'), `bytes 100-1099/${uploaded.length}`);
  assert.ok(Buffer.from(await range.arrayBuffer()).equals(uploaded.subarray(100, 1100)), 'the range is those bytes of the upload');

  const del = await h.api(`/v1/audio/transcriptions/${id}`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  assert.deepEqual(await keysUnder(artifactKeys.jobPrefix(id)), [], 'the job\'s prefix in the bucket is empty');
  assert.equal((await h.api(`/v1/audio/transcriptions/${id}`)).status, 404);
  assert.equal((await h.api(`/v1/audio/transcriptions/${id}/audio`)).status, 404);
});
