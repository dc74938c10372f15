/**
 * OpenAI's batch transcription API with the unmodified `openai` SDK, pointed at Dalston by its base URL, on the real
 * stack: espeak-ng speech and a LibriVox recording in every response_format, word timestamps, `stream: true`
 * (server-sent deltas as the transcribe engine finishes each window, then the whole text), and the errors the SDK
 * raises for a bad model and for a file that is not audio. The answers wait for the job's outcome on jobs.results.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { wordErrors } from '../../engines/asr/wer.js';
import { MOONSHINE_TINY, batchEngineId } from '../../engines/models/catalogue.js';
import { writeWav } from '../../engines/audio/wav.js';
import { ESPEAK_SENTENCES, TESTDATA, parseSphinxTranscription, synthesize, synthesizeFile, withPauses } from '../../harness/speech-fixtures.js';
import { startHarness, type Harness } from '../../harness/pipeline-harness.js';

const ENGINE = batchEngineId(MOONSHINE_TINY);
let h: Harness;
let dir: string;
let client: OpenAI;
let sentence = '';
let wav = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dalston-openai-batch-'));
  h = await startHarness({ name: 'openai', engines: ['audio-prepare', ENGINE, 'merge'], env: { DALSTON_TRANSCRIBE_ENGINE: ENGINE } });
  client = new OpenAI({ apiKey: h.apiKey, baseURL: `${h.gatewayUrl}/v1`, maxRetries: 0, timeout: 120_000 });
  sentence = ESPEAK_SENTENCES[1] ?? '';
  wav = await synthesizeFile(sentence, { voice: 'en-us', padBefore: 0.3, padAfter: 0.3 });
});
after(async () => {
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

function assertHeard(what: string, reference: string, text: string, bound: number): void {
  const wer = wordErrors(reference, text);
  assert.ok(wer.wer <= bound, `${what}: WER ${(wer.wer * 100).toFixed(1)} % — "${text}" for "${reference}"`);
}

test('json, text, srt and vtt answers carry the spoken words (whisper-1 and gpt-4o-mini-transcribe map to the installed model)', async (t) => {
  const json = await client.audio.transcriptions.create({ file: createReadStream(wav), model: 'whisper-1' });
  assertHeard('json', sentence, json.text, 0.2);
  const mini = await client.audio.transcriptions.create({ file: createReadStream(wav), model: 'gpt-4o-mini-transcribe', response_format: 'json' });
  assertHeard('gpt-4o-mini-transcribe', sentence, mini.text, 0.2);
  const text = await client.audio.transcriptions.create({ file: createReadStream(wav), model: 'whisper-1', response_format: 'text' });
  assert.equal(typeof text, 'string');
  assertHeard('text', sentence, text, 0.2);
  const srt = await client.audio.transcriptions.create({ file: createReadStream(wav), model: 'whisper-1', response_format: 'srt' });
  assert.match(srt, /^1\r?\n\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d\r?\n/);
  assertHeard('srt', sentence, srt.replace(/^\d+$|^.*-->.*$/gm, ' '), 0.2);
  const vtt = await client.audio.transcriptions.create({ file: createReadStream(wav), model: 'whisper-1', response_format: 'vtt' });
  assert.match(vtt, /^WEBVTT/);
  assertHeard('vtt', sentence, vtt.replace(/^WEBVTT.*$|^.*-->.*$/gm, ' '), 0.2);
  t.diagnostic(`json: "${json.text}"`);
});

test('verbose_json with word timestamps: segments, words inside the audio, duration and language', async (t) => {
  const refs = parseSphinxTranscription(await readFile(join(TESTDATA, 'librivox', 'transcription'), 'utf8'));
  const [id, reference] = [...refs.entries()][0] ?? ['', ''];
  const file = join(TESTDATA, 'librivox', `${id}.wav`);
  const r = await client.audio.transcriptions.create({
    file: createReadStream(file), model: 'whisper-1', response_format: 'verbose_json', timestamp_granularities: ['word'], language: 'en',
  });
  assertHeard('LibriVox verbose_json', reference, r.text, 0.15);
  assert.equal(r.language, 'english');
  assert.ok(r.duration > 1, `duration ${r.duration}`);
  assert.ok((r.segments?.length ?? 0) >= 1, 'segments');
  const words = r.words ?? [];
  assert.equal(words.map((w) => w.word).join(' ').split(/\s+/).length, r.text.trim().split(/\s+/).length, 'one timed word per word of the text');
  for (const w of words) assert.ok(w.start >= 0 && w.start <= w.end && w.end <= r.duration + 0.05, `word ${w.word} ${w.start}–${w.end} inside the audio`);
  const plain = await client.audio.transcriptions.create({ file: createReadStream(wav), model: 'whisper-1', response_format: 'verbose_json' });
  assert.equal(plain.words, undefined, 'words only when asked for');
  t.diagnostic(`LibriVox ${id}: WER ${(wordErrors(reference, r.text).wer * 100).toFixed(1)} %, ${words.length} words`);
});

test('stream: true: a delta per window as the engine finishes it, before the job ends; the done event has the whole text', async (t) => {
  // Three sentences 2 s apart: separate windows (regions further apart than 1 s are never merged).
  const sentences = ESPEAK_SENTENCES.slice(2, 5);
  const audio = withPauses(await Promise.all(sentences.map((x) => synthesize(x, { voice: 'en-us' }))), 2);
  const path = join(dir, 'three.wav');
  await writeWav(path, audio, 16000);
  const started = Date.now();
  const stream = await client.audio.transcriptions.create({ file: createReadStream(path), model: 'gpt-4o-transcribe', stream: true });
  const events: { type: string; at: number; delta?: string; text?: string }[] = [];
  for await (const e of stream) events.push({ type: e.type, at: Date.now() - started, ...('delta' in e ? { delta: e.delta } : {}), ...('text' in e ? { text: e.text } : {}) });
  const deltas = events.filter((e) => e.type === 'transcript.text.delta');
  const done = events.filter((e) => e.type === 'transcript.text.done');
  t.diagnostic(`events: ${events.map((e) => `${e.type.replace('transcript.text.', '')}@${e.at}ms`).join(', ')}`);
  assert.equal(done.length, 1, 'one done event, last');
  assert.equal(events.at(-1)?.type, 'transcript.text.done');
  assert.ok(deltas.length >= 3, `a delta per window (${deltas.length})`);
  const text = done[0]?.text ?? '';
  assertHeard('stream done', sentences.join(' '), text, 0.2);
  assert.equal(deltas.map((d) => d.delta ?? '').join(''), text, 'the deltas add up to the whole text');
  // Deltas came as windows finished, not all at the end: the first arrived well before the done event.
  const first = deltas[0]?.at ?? 0;
  const end = done[0]?.at ?? 0;
  assert.ok(end - first >= 100, `the first delta (${first} ms) came before the job ended (${end} ms)`);
});

test('the SDK raises the API\'s errors: an unknown model is a 400 naming the installed models, a file that is not audio a 400 from the job', async () => {
  await assert.rejects(
    client.audio.transcriptions.create({ file: createReadStream(wav), model: 'whisper-9' }),
    (err: unknown) => err instanceof OpenAI.APIError && err.status === 400 && /model "whisper-9".*installed: [^;]*moonshine-tiny/.test(err.message),
  );
  const notAudio = join(dir, 'notes.mp3');
  await writeFile(notAudio, 'this is not audio at all\n'.repeat(200));
  await assert.rejects(
    client.audio.transcriptions.create({ file: createReadStream(notAudio), model: 'whisper-1' }),
    (err: unknown) => err instanceof OpenAI.APIError && err.status === 400 && err.type === 'invalid_request_error' && err.code === 'DALSTON_ERR_INVALID_INPUT',
  );
});
