/**
 * The batch pipeline end to end on real Kafka, ClickHouse and ffmpeg: speech synthesised with espeak-ng (WAV
 * and MP3) and a real LibriVox recording are uploaded over HTTP; each job completes with the spoken words, a
 * stages array naming prepare/transcribe/merge with engine ids, durations and zero retries, fetchable task
 * artifacts and SRT/VTT exports.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { wordErrors } from '../../engines/asr/wer.js';
import { run } from '../../infra/exec.js';
import { ESPEAK_SENTENCES, TESTDATA, parseSphinxTranscription, synthesizeFile } from '../../harness/speech-fixtures.js';
import { readFile } from 'node:fs/promises';
import { decodeMessage, checkJobResult, prefixed, JOB_RESULTS } from '../../streams/index.js';
import { artifactKeys } from '../../storage/index.js';
import { TopicRecorder } from '../support/runtime-fixture.js';
import { POCKETSPHINX_ENGINE, TERMINAL, startHarness, words, type Harness, type JobBody } from '../../harness/pipeline-harness.js';

let h: Harness;
let dir: string;
/** Every job these tests completed, as the HTTP API reported it. */
const completed: JobBody[] = [];
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dalston-e2e-audio-'));
  h = await startHarness({ name: 'batch' });
});
after(async () => {
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** `00:01:02,500` → 62.5 */
function srtSeconds(t: string): number {
  const [hh, mm, rest] = t.split(':');
  return Number(hh) * 3600 + Number(mm) * 60 + Number((rest ?? '').replace(',', '.'));
}

function assertStages(job: JobBody): void {
  assert.deepEqual(job.stages.map((s) => s.stage), ['prepare', 'transcribe', 'merge']);
  assert.deepEqual(job.stages.map((s) => s.engine_id), ['audio-prepare', POCKETSPHINX_ENGINE, 'merge']);
  for (const s of job.stages) {
    assert.equal(s.status, 'completed', `${s.stage} completed`);
    assert.equal(s.retries, 0, `${s.stage} ran once`);
    assert.ok(s.duration_ms !== null && s.duration_ms >= 0, `${s.stage} has a duration`);
    assert.ok(s.queue_wait_ms !== null && s.queue_wait_ms >= 0, `${s.stage} has a queue wait`);
    assert.ok(s.started_at && s.completed_at, `${s.stage} has timestamps`);
    assert.equal(s.error, null);
  }
}

async function transcribe(file: string, reference: string, t: { diagnostic(msg: string): void }): Promise<JobBody> {
  const submitted = await h.submit(file, { language: 'en' });
  assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
  assert.match(submitted.body.id, /^job_/);
  assert.ok(submitted.headers.get('x-request-id'), 'X-Request-ID on the response');
  const job = await h.waitFor(submitted.body.id, (j) => TERMINAL.has(j.status));
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  completed.push(job);
  assertStages(job);
  assert.ok(job.audio_duration_seconds && job.audio_duration_seconds > 0.5, 'audio duration measured');
  const wer = wordErrors(reference, job.text ?? '');
  t.diagnostic(`${file.split('/').pop()}: WER ${(wer.wer * 100).toFixed(1)} % (${wer.errors}/${wer.refWords}) — "${job.text}"`);
  // Word timestamps are the default granularity: every recognised word comes back, in time order, inside the audio.
  const timed = job.words ?? [];
  assert.ok(timed.length >= 3, `word timestamps came back: ${JSON.stringify(job.words)}`);
  const spoken = words(job.text ?? '');
  for (const [i, w] of timed.entries()) {
    assert.ok(w.start >= 0 && w.end <= (job.audio_duration_seconds ?? 0) + 0.05 && w.start <= w.end, `word ${w.text} inside the audio`);
    assert.ok(i === 0 || w.start >= (timed[i - 1]?.end ?? 0) - 0.05, `word ${i} "${w.text}" starts after word ${i - 1} ends: ${JSON.stringify(timed.slice(Math.max(0, i - 1), i + 1))}`);
    assert.ok(words(w.text).every((x) => spoken.includes(x)), `word "${w.text}" is in the text`);
  }
  return job;
}

test('espeak-ng speech as WAV and MP3 is transcribed through Kafka with the stages array', async (t) => {
  const sentence = ESPEAK_SENTENCES[0] ?? '';
  const wav = await synthesizeFile(sentence, { voice: 'en-us+klatt', padBefore: 0.3, padAfter: 0.3 });
  const mp3 = join(dir, 'speech.mp3');
  const enc = await run('ffmpeg', ['-y', '-loglevel', 'error', '-i', wav, '-codec:a', 'libmp3lame', '-b:a', '64k', mp3]);
  assert.equal(enc.code, 0, enc.stderr);
  for (const file of [wav, mp3]) {
    const job = await transcribe(file, sentence, t);
    // pocketsphinx is the plumbing baseline (about 30-50 % WER on synthetic speech); the words must still be there.
    assert.ok(wordErrors(sentence, job.text ?? '').wer <= 0.65, `most words recognised: ${job.text}`);
    const heard = ['weather', 'today', 'chance', 'rain'].filter((w) => words(job.text ?? '').includes(w));
    assert.ok(heard.length >= 3, `transcript contains the spoken words (heard ${heard.join(', ')}): ${job.text}`);
  }
});

test('a real LibriVox recording is transcribed; task artifacts and exports are served', async (t) => {
  const refs = parseSphinxTranscription(await readFile(join(TESTDATA, 'librivox', 'transcription'), 'utf8'));
  const [id, reference] = [...refs.entries()][0] ?? ['', ''];
  const job = await transcribe(join(TESTDATA, 'librivox', `${id}.wav`), reference, t);
  assert.ok(wordErrors(reference, job.text ?? '').wer <= 0.6, 'a plumbing-grade recogniser still gets most words');

  const transcribeStage = job.stages.find((s) => s.stage === 'transcribe');
  assert.ok(transcribeStage);
  const res = await h.api(`/v1/audio/transcriptions/${job.id}/tasks/${transcribeStage.task_id}/artifacts`);
  assert.equal(res.status, 200);
  const artifacts = (await res.json()) as { input: { task?: { stage: string } }; output: { data: { text: string; segments: unknown[] } } };
  assert.equal(artifacts.input.task?.stage, 'transcribe');
  assert.equal(typeof artifacts.output.data.text, 'string');
  assert.ok(artifacts.output.data.segments.length > 0);

  for (const format of ['srt', 'vtt', 'txt']) {
    const exp = await h.api(`/v1/audio/transcriptions/${job.id}/export/${format}`);
    assert.equal(exp.status, 200, `${format} export`);
    const body = await exp.text();
    if (format === 'srt') assert.match(body, /^1\r?\n\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d/);
    if (format === 'vtt') assert.match(body, /^WEBVTT/);
  }
  // The transcript document: without vad=true it names no vad stage and carries no speech regions.
  const doc = (await (await h.api(`/v1/audio/transcriptions/${job.id}/export/json`)).json()) as { metadata: Record<string, unknown> };
  assert.deepEqual(doc.metadata['pipeline_stages'], ['prepare', 'transcribe', 'merge']);
  assert.equal(doc.metadata['speech_regions'], undefined);
  // Subtitle options: one line of at most 20 characters per cue, cues of at most 3 s.
  const short = await h.api(`/v1/audio/transcriptions/${job.id}/export/srt?max_chars_per_line=20&max_lines_per_cue=1&max_cue_seconds=3`);
  assert.equal(short.status, 200);
  const cues = (await short.text()).trim().split(/\r?\n\r?\n/).map((c) => c.split(/\r?\n/));
  assert.ok(cues.length > 3, `the recording is cut into short cues (${cues.length})`);
  for (const [, times, ...lines] of cues) {
    assert.equal(lines.length, 1, `one line per cue: ${JSON.stringify(lines)}`);
    assert.ok((lines[0] ?? '').length <= 20 || !(lines[0] ?? '').includes(' '), `at most 20 characters unless one word is longer: "${lines[0] ?? ''}"`);
    const [a, b] = (times ?? '').split(' --> ').map(srtSeconds);
    assert.ok((b ?? 0) - (a ?? 0) <= 3.001, `cue ${times ?? ''} lasts at most 3 s`);
  }
  const bad = await h.api(`/v1/audio/transcriptions/${job.id}/export/txt?max_lines_per_cue=1`);
  assert.equal(bad.status, 400);

  // Deleting the finished job removes its data and is audited; afterwards the job is gone.
  const artifactsDir = join(process.env['DALSTON_HOME'] ?? join(process.cwd(), '.dalston'), 'artifacts', 'jobs', job.id);
  assert.equal(existsSync(artifactsDir), true, 'the job has artifacts before deletion');
  const del = await h.api(`/v1/audio/transcriptions/${job.id}`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  assert.equal((await h.api(`/v1/audio/transcriptions/${job.id}`)).status, 404, 'a deleted job is not found');
  assert.equal(existsSync(artifactsDir), false, 'its artifacts are gone');
  assert.equal((await h.api(`/v1/audio/transcriptions/${job.id}`, { method: 'DELETE' })).status, 404);
  const deadline = Date.now() + 20_000;
  let events: string[] = [];
  while (Date.now() < deadline) {
    const rows = await h.clickhouse.client.query<{ event_type: string }>(
      `SELECT toString(event_type) AS event_type FROM ${h.database}.audit_events WHERE job_id = '${job.id}' ORDER BY time_ms`,
    );
    events = rows.map((r) => r.event_type);
    if (events.includes('data.deleted')) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const e of ['job.created', 'job.completed', 'artifact.read', 'transcript.exported', 'job.deleted', 'data.deleted']) {
    assert.ok(events.includes(e), `audit trail has ${e}: ${events.join(', ')}`);
  }
});

test('unknown jobs are 404 with the error envelope; requests without the key are 401', async () => {
  const missing = await h.api('/v1/audio/transcriptions/job_does_not_exist');
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'not_found');
  const anon = await fetch(`${h.gatewayUrl}/v1/audio/transcriptions/job_x`);
  assert.equal(anon.status, 401);
});

test('every job\'s outcome is published on jobs.results, keyed by job id, with where its transcript is', async () => {
  assert.ok(completed.length >= 3, `jobs completed by the tests above: ${completed.length}`);
  const results = new TopicRecorder(h.kafka, prefixed(h.prefix, JOB_RESULTS.name), (v) => ({ ...decodeMessage(checkJobResult, v) }));
  await results.start();
  try {
    const deadline = Date.now() + 30_000;
    const outcomeOf = (id: string) => results.records.find((r) => r.value?.['jobId'] === id);
    while (completed.some((j) => !outcomeOf(j.id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    for (const job of completed) {
      const record = outcomeOf(job.id);
      assert.ok(record?.value, `an outcome for ${job.id}`);
      assert.equal(record.key, job.id, 'keyed by job id');
      const o = record.value;
      assert.equal(o['type'], 'job.outcome');
      assert.equal(o['status'], 'completed');
      assert.equal(o['transcriptKey'], artifactKeys.transcript(job.id));
      // The API's figure went through a ClickHouse Float32 column: equal to the millisecond.
      assert.ok(Math.abs(Number(o['audioDurationSeconds']) - (job.audio_duration_seconds ?? NaN)) < 1e-3, `duration ${String(o['audioDurationSeconds'])} vs ${job.audio_duration_seconds}`);
      assert.equal(o['error'], undefined);
    }
  } finally {
    await results.close();
  }
});
