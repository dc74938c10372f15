/**
 * ElevenLabs' batch speech-to-text API with the unmodified `@elevenlabs/elevenlabs-js` SDK (`xi-api-key` auth,
 * `speechToText.convert`, `speechToText.transcripts.get` / `.delete`) on the real stack and real speech: the words
 * come back with ElevenLabs' word and spacing items, features Dalston lacks are reported as not applied, and a
 * deleted transcript is gone.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ElevenLabsClient, ElevenLabsError } from '@elevenlabs/elevenlabs-js';
import { wordErrors } from '../../engines/asr/wer.js';
import { MOONSHINE_TINY, batchEngineId } from '../../engines/models/catalogue.js';
import { ESPEAK_SENTENCES, TESTDATA, parseSphinxTranscription, synthesizeFile } from '../../harness/speech-fixtures.js';
import { startAudioUrlServer } from '../support/audio-url-server.js';
import { startHarness, type Harness } from '../../harness/pipeline-harness.js';

const ENGINE = batchEngineId(MOONSHINE_TINY);
let h: Harness;
let client: ElevenLabsClient;

before(async () => {
  h = await startHarness({ name: 'elevenlabs', engines: ['audio-prepare', ENGINE, 'merge'], env: { DALSTON_TRANSCRIBE_ENGINE: ENGINE, DALSTON_URL_ALLOW_HOSTS: '127.0.0.1' } });
  client = new ElevenLabsClient({ apiKey: h.apiKey, baseUrl: h.gatewayUrl, maxRetries: 0, timeoutInSeconds: 120 });
});
after(async () => {
  await h?.stop();
});

interface Word { readonly text: string; readonly start?: number; readonly end?: number; readonly type: string }

test('convert: espeak-ng speech and a LibriVox recording come back with words and spacing; unbuilt features are reported as not applied', async (t) => {
  const sentence = ESPEAK_SENTENCES[2] ?? '';
  const wav = await synthesizeFile(sentence, { voice: 'en-us', padBefore: 0.3, padAfter: 0.3 });
  const r = await client.speechToText.convert({ file: createReadStream(wav), modelId: 'scribe_v1', languageCode: 'eng', diarize: true, tagAudioEvents: false });
  const body = r as unknown as { text: string; language_code?: string; languageCode?: string; words: Word[]; transcriptionId?: string; metadata?: { not_applied?: string[] } };
  assert.ok(wordErrors(sentence, body.text).wer <= 0.2, `espeak: "${body.text}" for "${sentence}"`);
  assert.equal(body.languageCode, 'en');
  const words = body.words.filter((w) => w.type === 'word');
  assert.equal(words.length, body.text.trim().split(/\s+/).length, 'one word item per word');
  assert.equal(body.words.filter((w) => w.type === 'spacing').length, words.length - 1, 'spacing between words');
  for (const w of words) assert.ok((w.start ?? -1) >= 0 && (w.start ?? 0) <= (w.end ?? -1), `word ${w.text} timed`);
  assert.deepEqual(body.metadata?.not_applied, ['diarize'], 'diarization was asked for and is reported as not applied; tag_audio_events=false asks for nothing');
  assert.match(body.transcriptionId ?? '', /^job_/);

  const refs = parseSphinxTranscription(await readFile(join(TESTDATA, 'librivox', 'transcription'), 'utf8'));
  const [id, reference] = [...refs.entries()][0] ?? ['', ''];
  const libri = await client.speechToText.convert({ file: createReadStream(join(TESTDATA, 'librivox', `${id}.wav`)), modelId: 'scribe_v2' });
  const text = (libri as unknown as { text: string }).text;
  const wer = wordErrors(reference, text);
  assert.ok(wer.wer <= 0.15, `LibriVox: WER ${(wer.wer * 100).toFixed(1)} % — "${text}"`);
  t.diagnostic(`LibriVox ${id}: WER ${(wer.wer * 100).toFixed(1)} %; espeak: "${body.text}"`);
});

test('transcripts: get returns the finished transcript by id, delete removes it (then 404)', async () => {
  const sentence = ESPEAK_SENTENCES[3] ?? '';
  const wav = await synthesizeFile(sentence, { voice: 'en-us', padBefore: 0.3, padAfter: 0.3 });
  const created = (await client.speechToText.convert({ file: createReadStream(wav), modelId: 'scribe_v1' })) as unknown as { text: string; transcriptionId: string };
  const got = (await client.speechToText.transcripts.get(created.transcriptionId)) as unknown as { text: string; transcriptionId: string; words: Word[] };
  assert.equal(got.transcriptionId, created.transcriptionId);
  assert.equal(got.text, created.text);
  assert.ok(got.words.some((w) => w.type === 'word'));
  await client.speechToText.transcripts.delete(created.transcriptionId);
  await assert.rejects(client.speechToText.transcripts.get(created.transcriptionId), (err: unknown) => err instanceof ElevenLabsError && err.statusCode === 404);
});

test('cloudStorageUrl: the gateway fetches the audio from an allow-listed server; a loopback address not allow-listed is a 400', async () => {
  const sentence = ESPEAK_SENTENCES[5] ?? '';
  const wav = await synthesizeFile(sentence, { voice: 'en-us', padBefore: 0.3, padAfter: 0.3 });
  const server = await startAudioUrlServer([wav]);
  try {
    const r = (await client.speechToText.convert({ cloudStorageUrl: server.urlOf(wav), modelId: 'scribe_v1' })) as unknown as { text: string; words: { type: string }[] };
    assert.ok(wordErrors(sentence, r.text).wer <= 0.2, `from the URL: "${r.text}" for "${sentence}"`);
    assert.ok(r.words.some((w) => w.type === 'word'));
    const refused = client.speechToText.convert({ cloudStorageUrl: `http://127.0.0.2:${new URL(server.base).port}/a.wav`, modelId: 'scribe_v1' });
    await assert.rejects(refused, (err: unknown) => err instanceof ElevenLabsError && err.statusCode === 400 && /url_not_allowed/.test(JSON.stringify(err.body)));
  } finally {
    await server.close();
  }
});

test('refusals: a wrong key is a 401, a page URL (source_url) is not supported yet (501), an unknown model a 400', async () => {
  const wav = await synthesizeFile(ESPEAK_SENTENCES[0] ?? '', { voice: 'en-us' });
  const stranger = new ElevenLabsClient({ apiKey: 'dk_not_the_key', baseUrl: h.gatewayUrl, maxRetries: 0 });
  await assert.rejects(stranger.speechToText.convert({ file: createReadStream(wav), modelId: 'scribe_v1' }), (err: unknown) => err instanceof ElevenLabsError && err.statusCode === 401);
  await assert.rejects(client.speechToText.convert({ sourceUrl: 'https://www.youtube.com/watch?v=x', modelId: 'scribe_v1' }),
    (err: unknown) => err instanceof ElevenLabsError && err.statusCode === 501);
  await assert.rejects(client.speechToText.convert({ file: createReadStream(wav), modelId: 'scribe_v9000' }),
    (err: unknown) => err instanceof ElevenLabsError && err.statusCode === 400);
});
