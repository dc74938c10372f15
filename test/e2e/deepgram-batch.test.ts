/**
 * Deepgram's pre-recorded API with the unmodified `@deepgram/sdk` (`listen.v1.media.transcribeFile`, the audio as the
 * raw body, `Authorization: Token`) on the real stack and real speech: the transcript, Deepgram's words and
 * utterances come back, unbuilt options are reported as not applied; `transcribeUrl` ({"url": …}) has the gateway
 * fetch the audio from an allow-listed loopback server, and a URL to a loopback address not allow-listed, directly
 * or by redirect, is refused (SSRF protection).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeepgramClient } from '@deepgram/sdk';
import { wordErrors } from '../../engines/asr/wer.js';
import { MOONSHINE_TINY, batchEngineId } from '../../engines/models/catalogue.js';
import { ESPEAK_SENTENCES, TESTDATA, parseSphinxTranscription, synthesizeFile } from '../../harness/speech-fixtures.js';
import { startAudioUrlServer } from '../support/audio-url-server.js';
import { startHarness, type Harness } from '../../harness/pipeline-harness.js';

const ENGINE = batchEngineId(MOONSHINE_TINY);
let h: Harness;
let client: DeepgramClient;

before(async () => {
  // 127.0.0.1 only: the audio server below is allowed, other loopback addresses (127.0.0.2) stay refused.
  h = await startHarness({ name: 'deepgram', engines: ['audio-prepare', ENGINE, 'merge'], env: { DALSTON_TRANSCRIBE_ENGINE: ENGINE, DALSTON_URL_ALLOW_HOSTS: '127.0.0.1' } });
  client = new DeepgramClient({ apiKey: h.apiKey, baseUrl: h.gatewayUrl });
});
after(async () => {
  await h?.stop();
});

interface DgWord { readonly word: string; readonly punctuated_word?: string; readonly start: number; readonly end: number }
interface DgResponse {
  readonly metadata: { readonly duration: number; readonly request_id: string; readonly dalston?: { readonly job_id: string; readonly not_applied: string[] } };
  readonly results: {
    readonly channels: { readonly alternatives: { readonly transcript: string; readonly words: DgWord[] }[] }[];
    readonly utterances?: { readonly transcript: string; readonly start: number; readonly end: number; readonly words: DgWord[] }[];
  };
}

test('transcribeFile: espeak-ng speech and a LibriVox recording, with Deepgram\'s words and utterances; diarize is reported as not applied', async (t) => {
  const sentence = ESPEAK_SENTENCES[4] ?? '';
  const wav = await synthesizeFile(sentence, { voice: 'en-us', padBefore: 0.3, padAfter: 0.3 });
  const r = (await client.listen.v1.media.transcribeFile(createReadStream(wav), { model: 'nova-3', language: 'en', smart_format: true, utterances: true, diarize: true })) as unknown as DgResponse;
  const alt = r.results.channels[0]?.alternatives[0];
  assert.ok(alt, JSON.stringify(r).slice(0, 500));
  assert.ok(wordErrors(sentence, alt.transcript).wer <= 0.2, `espeak: "${alt.transcript}" for "${sentence}"`);
  assert.equal(alt.words.length, alt.transcript.trim().split(/\s+/).length, 'one word per word of the transcript');
  for (const w of alt.words) {
    assert.match(w.word, /^[a-z0-9']+$/, `word "${w.word}" lower-case without punctuation`);
    assert.ok(w.start >= 0 && w.start <= w.end && w.end <= r.metadata.duration + 0.05, `word ${w.word} inside the audio`);
  }
  assert.ok((r.results.utterances?.length ?? 0) >= 1, 'utterances when asked for');
  assert.deepEqual(r.metadata.dalston?.not_applied, ['diarize']);
  assert.ok(r.metadata.duration > 1);

  const refs = parseSphinxTranscription(await readFile(join(TESTDATA, 'librivox', 'transcription'), 'utf8'));
  const [id, reference] = [...refs.entries()][0] ?? ['', ''];
  const libri = (await client.listen.v1.media.transcribeFile(createReadStream(join(TESTDATA, 'librivox', `${id}.wav`)), { model: 'nova-3' })) as unknown as DgResponse;
  const text = libri.results.channels[0]?.alternatives[0]?.transcript ?? '';
  const wer = wordErrors(reference, text);
  assert.ok(wer.wer <= 0.15, `LibriVox: WER ${(wer.wer * 100).toFixed(1)} % — "${text}"`);
  assert.equal(libri.results.utterances, undefined, 'no utterances unless asked for');
  t.diagnostic(`LibriVox ${id}: WER ${(wer.wer * 100).toFixed(1)} %; espeak: "${alt.transcript}"`);
});

test('transcribeUrl: the gateway fetches the audio from an allow-listed server; a loopback address not allow-listed is refused, also behind a redirect', async () => {
  const sentence = ESPEAK_SENTENCES[2] ?? '';
  const wav = await synthesizeFile(sentence, { voice: 'en-us', padBefore: 0.3, padAfter: 0.3 });
  const server = await startAudioUrlServer([wav]);
  try {
    const r = (await client.listen.v1.media.transcribeUrl({ url: server.urlOf(wav), model: 'nova-3', language: 'en' })) as unknown as DgResponse;
    const alt = r.results.channels[0]?.alternatives[0];
    assert.ok(alt && wordErrors(sentence, alt.transcript).wer <= 0.2, `from the URL: "${alt?.transcript ?? ''}" for "${sentence}"`);
    assert.ok(r.metadata.duration > 1, 'the fetched audio\'s duration');
    const port = new URL(server.base).port;
    for (const url of [`http://127.0.0.2:${port}/x.wav`, `${server.base}/to?u=${encodeURIComponent(`http://127.0.0.2:${port}/x.wav`)}`]) {
      const res = await fetch(`${h.gatewayUrl}/v1/listen?model=nova-3`, {
        method: 'POST', headers: { authorization: `Token ${h.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ url }),
      });
      assert.equal(res.status, 400, url);
      const err = ((await res.json()) as { error: { code: string; message: string } }).error;
      assert.equal(err.code, 'url_not_allowed', url);
      assert.match(err.message, /127\.0\.0\.2/);
    }
  } finally {
    await server.close();
  }
});

test('refusals: a wrong key is a 401, a JSON body without a url a 400, an unknown model a 400, an empty body a 400', async () => {
  const url = `${h.gatewayUrl}/v1/listen`;
  const wav = await readFile(await synthesizeFile(ESPEAK_SENTENCES[0] ?? '', { voice: 'en-us' }));
  const post = (headers: Record<string, string>, body: string | Uint8Array, query = '?model=nova-3') => fetch(`${url}${query}`, { method: 'POST', headers, body });
  assert.equal((await post({ authorization: 'Token dk_wrong', 'content-type': 'audio/wav' }, wav)).status, 401);
  const noUrl = await post({ authorization: `Token ${h.apiKey}`, 'content-type': 'application/json' }, JSON.stringify({ link: 'x' }));
  assert.equal(noUrl.status, 400);
  assert.match(((await noUrl.json()) as { error: { message: string } }).error.message, /\{"url": "<audio URL>"\}/);
  const badModel = await post({ authorization: `Token ${h.apiKey}`, 'content-type': 'audio/wav' }, wav, '?model=flux-9000');
  assert.equal(badModel.status, 400);
  const empty = await post({ authorization: `Token ${h.apiKey}`, 'content-type': 'audio/wav' }, new Uint8Array(0));
  assert.equal(empty.status, 400);
});
