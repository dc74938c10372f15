/**
 * Real-time sessions end to end on the real stack (Kafka, ClickHouse, gateway, actor host with session actors,
 * a streaming engine process, and the batch pipeline with the same model): real speech streamed at real-time pace
 * over the native WebSocket protocol. Finals are compared with the batch transcript of the same audio; a manual
 * flush finalises at once; the session's history (row, transcript, recording, delete with audit) and
 * `enhance_on_end` are checked through the API a user would call.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wordErrors } from '../../engines/asr/wer.js';
import { MOONSHINE_TINY, batchEngineId } from '../../engines/models/catalogue.js';
import { ESPEAK_SENTENCES, espeakSet, librivoxSet, withPauses } from '../../harness/speech-fixtures.js';
import { decodeWav } from '../../harness/wav.js';
import { partialsShed } from '../../harness/metrics-scrape.js';
import { ofType, streamNative, toPcm16, type NativeSessionResult } from '../../harness/realtime-client.js';
import { TERMINAL, batchTranscript, startHarness, type Harness } from '../../harness/pipeline-harness.js';

const RATE = 16000;
const BATCH_ENGINE = batchEngineId(MOONSHINE_TINY);
let h: Harness;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dalston-rt-e2e-'));
  h = await startHarness({ name: 'realtime', engines: ['audio-prepare', BATCH_ENGINE, 'merge'], realtimeEngines: 1 });
});
after(async () => {
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});


const ws = () => h.gatewayUrl.replace(/^http/, 'ws');
/** A message field as text ('' when absent or not a string). */
const text = (v: unknown): string => (typeof v === 'string' ? v : '');
const finalsText = (r: NativeSessionResult) => ofType(r, 'transcript.final').map((m) => text(m.message['text'])).join(' ');

const batchText = (name: string, audio: Float32Array): Promise<string> => batchTranscript(h, dir, name, audio, MOONSHINE_TINY.id);
const realtimeEngines = () => h.services.filter((s) => s.spec.kind === 'realtime');

/**
 * Partials of each utterance arrive before its final; every final's utterance index is new and in order; most
 * utterances had partials unless the engine shed some for load (`shed`, its own count).
 */
function assertPartialsThenFinals(r: NativeSessionResult, label: string, shed: number): void {
  const finals = ofType(r, 'transcript.final');
  assert.ok(finals.length > 0, `${label}: finals arrived`);
  const indices = finals.map((f) => Number(f.message['utterance']));
  assert.deepEqual(indices, [...indices].sort((a, b) => a - b), `${label}: finals in utterance order`);
  assert.equal(new Set(indices).size, indices.length, `${label}: no utterance finalised twice`);
  let withPartials = 0;
  for (const f of finals) {
    const u = Number(f.message['utterance']);
    const partials = ofType(r, 'transcript.partial').filter((p) => Number(p.message['utterance']) === u);
    for (const p of partials) assert.ok(p.atMs <= f.atMs, `${label}: utterance ${u}: a partial arrived after its final`);
    if (partials.length > 0) withPartials++;
  }
  if (shed === 0) assert.ok(withPartials >= Math.ceil(finals.length / 2), `${label}: most utterances had partials before their final (${withPartials}/${finals.length})`);
}

let sessionWithEnhance = '';

test('native protocol: espeak-ng sentences and a LibriVox recording at real-time pace; partials before finals; finals match the batch transcript (WER ≤ 10 %); session.end carries the audio seconds', async (t) => {
  const espeak = withPauses((await espeakSet({}, ESPEAK_SENTENCES.slice(0, 3))).map((f) => f.audio), 1.2);
  const libri = withPauses([(await librivoxSet())[1]?.audio ?? new Float32Array(0)], 1.0);
  assert.ok(libri.length > RATE * 3, 'the LibriVox clip is there');
  const [espeakRun, libriRun, espeakBatch, libriBatch] = await Promise.all([
    streamNative(toPcm16(espeak), { baseUrl: ws(), apiKey: h.apiKey, query: { enhance_on_end: 'true', enhance_model: MOONSHINE_TINY.id } }),
    streamNative(toPcm16(libri), { baseUrl: ws(), apiKey: h.apiKey }),
    batchText('espeak', espeak),
    batchText('librivox', libri),
  ]);
  const shed = await partialsShed(realtimeEngines());
  t.diagnostic(`partials the engine shed for load: ${shed}`);
  for (const [label, run, audio, batch] of [['espeak', espeakRun, espeak, espeakBatch], ['librivox', libriRun, libri, libriBatch]] as const) {
    assert.equal(run.refused, false, `${label}: upgrade accepted (${run.httpStatus ?? ''} ${run.httpBody ?? ''})`);
    assert.equal(run.closeCode, 1000, `${label}: closed normally (${run.closeReason})`);
    assert.equal(ofType(run, 'session.begin').length, 1, `${label}: session.begin`);
    assertPartialsThenFinals(run, label, shed);
    const end = ofType(run, 'session.end')[0]?.message;
    assert.ok(end, `${label}: session.end`);
    const seconds = Number(end['total_audio_seconds']);
    assert.ok(Math.abs(seconds - audio.length / RATE) < 0.25, `${label}: session.end total_audio_seconds ${seconds} ≈ ${(audio.length / RATE).toFixed(2)}`);
    const live = finalsText(run);
    const wer = wordErrors(batch, live);
    t.diagnostic(`${label}: real-time vs batch (same model) WER ${(wer.wer * 100).toFixed(1)} % — live "${live}" / batch "${batch}"`);
    assert.ok(wer.wer <= 0.1, `${label}: finals match the batch transcript: ${(wer.wer * 100).toFixed(1)} %`);
    assert.equal(text(end['text']).trim(), live.trim(), `${label}: session.end carries the full finalised text`);
  }
  sessionWithEnhance = text(ofType(espeakRun, 'session.begin')[0]?.message['session_id']);
  // First partial after onset and final after end of speech, for the record (figures belong to the benchmark).
  const onset = ofType(libriRun, 'vad.speech_start')[0];
  const firstPartial = ofType(libriRun, 'transcript.partial')[0];
  if (onset && firstPartial) t.diagnostic(`librivox: first partial ${(firstPartial.atMs - Number(onset.message['start']) * 1000).toFixed(0)} ms after the onset was sent`);
});

test('native protocol: with commit_strategy=manual only the flush finalises: one final, answering it, none at the pauses', async (t) => {
  const sentence = (await espeakSet({}, ESPEAK_SENTENCES.slice(3, 4)))[0]?.audio ?? new Float32Array(0);
  // Speech, then 4 s of silence: the flush goes right after the speech. Under VAD commits the silence would close the
  // utterance with reason 'pause'; under manual commits only the flush may, and `end` finds nothing left to finalise.
  const audio = withPauses([sentence], 0.5);
  const withTail = new Float32Array(audio.length + RATE * 4);
  withTail.set(audio);
  const flushAt = audio.length / RATE;
  const run = await streamNative(toPcm16(withTail), {
    baseUrl: ws(), apiKey: h.apiKey, query: { commit_strategy: 'manual' }, controls: [{ atSeconds: flushAt, message: { type: 'flush' } }],
  });
  assert.equal(run.closeCode, 1000, run.closeReason);
  const finals = ofType(run, 'transcript.final');
  assert.deepEqual(
    finals.map((f) => [f.message['reason'], f.message['flushed']]),
    [['flush', true]],
    'exactly one final, and it answers the flush (not a pause, not the end)',
  );
  const first = finals[0]!;
  // How soon it came is a latency figure (load-tests/ measure it), printed here for the record.
  t.diagnostic(`flush → final: ${(first.atMs - flushAt * 1000).toFixed(0)} ms (audio sent by then: ${(first.sentSeconds - flushAt).toFixed(2)} s past the flush)`);
  const wer = wordErrors(ESPEAK_SENTENCES[3] ?? '', text(first.message['text']));
  assert.ok(wer.wer <= 0.35, `the flushed final holds the sentence: "${text(first.message['text'])}"`);
});

test('session history: the row, transcript and recording are served; enhance_on_end made a completed batch job linked both ways; delete removes them and is audited', async () => {
  assert.notEqual(sessionWithEnhance, '', 'the enhance session id is known');
  const id = sessionWithEnhance;
  let body: Record<string, unknown> = {};
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const res = await h.api(`/v1/realtime/sessions/${id}`);
    if (res.status === 200) {
      body = (await res.json()) as Record<string, unknown>;
      if (body['status'] === 'completed' && body['transcript_available'] === true && body['enhance_job_id']) break;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  assert.equal(body['status'], 'completed', JSON.stringify(body));
  assert.equal(body['dialect'], 'native');
  assert.ok(Number(body['utterances']) >= 3, `utterances recorded: ${JSON.stringify(body)}`);

  const list = (await (await h.api('/v1/realtime/sessions?status=completed&limit=50')).json()) as { sessions: { id: string }[] };
  const listed = list.sessions;
  assert.ok(listed.some((s) => s.id === id), `the session is listed: ${JSON.stringify(list)}`);

  const transcript = await h.api(`/v1/realtime/sessions/${id}/transcript`);
  assert.equal(transcript.status, 200);
  const tj = (await transcript.json()) as { text?: string };
  assert.ok(wordErrors(ESPEAK_SENTENCES.slice(0, 3).join(' '), tj.text ?? '').wer <= 0.35, `transcript text: ${tj.text ?? ''}`);
  const audio = await h.api(`/v1/realtime/sessions/${id}/audio`);
  assert.equal(audio.status, 200);
  const wav = decodeWav(Buffer.from(await audio.arrayBuffer()));
  assert.equal(wav.sampleRate, RATE);
  assert.ok(Math.abs(wav.samples.length / RATE - Number(body['audio_seconds'])) < 0.25, 'the recording holds the session audio');

  const jobId = String(body['enhance_job_id']);
  const job = await h.waitFor(jobId, (j) => TERMINAL.has(j.status), 180_000);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  const jobBody = (await (await h.api(`/v1/audio/transcriptions/${jobId}`)).json()) as Record<string, unknown>;
  assert.equal(jobBody['realtime_session_id'], id, 'the job links back to the session');
  assert.ok(wordErrors(ESPEAK_SENTENCES.slice(0, 3).join(' '), job.text ?? '').wer <= 0.35, `enhanced transcript: ${job.text ?? ''}`);

  const del = await h.api(`/v1/realtime/sessions/${id}`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  assert.equal((await h.api(`/v1/realtime/sessions/${id}`)).status, 404);
  assert.equal((await h.api(`/v1/realtime/sessions/${id}/audio`)).status, 404);
  // The audit row travels through the analytics topic to ClickHouse: wait for it.
  assert.match(id, /^[A-Za-z0-9_-]+$/);
  let rows: { n: string | number }[] = [];
  for (let i = 0; i < 100 && Number(rows[0]?.n ?? 0) === 0; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 300));
    rows = await h.clickhouse.client.query<{ n: string | number }>(
      `SELECT count() AS n FROM ${h.database}.audit_events WHERE event_type = 'realtime.session.deleted' AND session_id = '${id}'`,
    );
  }
  assert.equal(Number(rows[0]?.n ?? 0), 1, 'one audit row for the deletion');
});
