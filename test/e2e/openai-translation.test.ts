/**
 * OpenAI's `audio.translations.create` with the unmodified `openai` SDK on the real stack: German, Spanish and French
 * speech (espeak-ng) comes back as English text from the multilingual Whisper model (whisper-base, which
 * `./dalston test` installs), in json and verbose_json (`task: translate`, `language: english`); an English-only
 * model is refused with a 400 naming the ones that can translate. The same audio transcribed stays in its language.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import OpenAI from 'openai';
import { MOONSHINE_TINY, WHISPER_BASE, batchEngineId } from '../../engines/models/catalogue.js';
import { synthesizeFile } from '../../harness/speech-fixtures.js';
import { startHarness, type Harness } from '../../harness/pipeline-harness.js';

let h: Harness;
let client: OpenAI;

before(async () => {
  h = await startHarness({
    name: 'translate', engines: ['audio-prepare', batchEngineId(WHISPER_BASE), batchEngineId(MOONSHINE_TINY), 'merge'],
    // The production heartbeat (5 s, lost after 15 s) rather than the harness's 1 s: onnxruntime-node runs a session
    // synchronously on the engine's event loop, and one whisper-base window on a loaded 2-core machine can outlast 3 s.
    env: { DALSTON_TRANSCRIBE_ENGINE: batchEngineId(MOONSHINE_TINY), DALSTON_ENGINE_HEARTBEAT_SECONDS: '5' },
  });
  client = new OpenAI({ apiKey: h.apiKey, baseURL: `${h.gatewayUrl}/v1`, maxRetries: 0, timeout: 300_000 });
});
after(async () => {
  await h?.stop();
});

/** Speech in another language, and English words its translation must contain. */
const CASES: readonly { voice: string; text: string; english: RegExp[] }[] = [
  { voice: 'de', text: 'Guten Morgen. Das Wetter ist heute sehr schön, und wir gehen in den Park.', english: [/\bmorning\b/i, /\bpark\b/i] },
  { voice: 'es', text: 'Buenos días. Me gustaría reservar una mesa para dos personas esta noche.', english: [/\btable\b/i, /\btonight\b|\bthis (evening|night)\b/i] },
  { voice: 'fr', text: 'Bonjour. Je voudrais acheter un billet de train pour Paris demain matin.', english: [/\bParis\b/, /\btomorrow\b/i] },
];

test('German, Spanish and French speech translated to English (json and verbose_json); transcribed, the same audio stays in its language', async (t) => {
  for (const c of CASES) {
    const wav = await synthesizeFile(c.text, { voice: c.voice });
    const r = (await client.audio.translations.create({ file: createReadStream(wav), model: 'whisper-1', response_format: 'verbose_json' })) as unknown as {
      task: string; language: string; text: string; segments?: unknown[];
    };
    t.diagnostic(`${c.voice}: "${r.text}"`);
    assert.equal(r.task, 'translate');
    assert.equal(r.language, 'english');
    for (const word of c.english) assert.match(r.text, word, `${c.voice}: "${r.text}" is English and says ${String(word)}`);
    assert.ok((r.segments?.length ?? 0) >= 1, 'segments with times');
    const plain = await client.audio.translations.create({ file: createReadStream(wav), model: 'whisper-1' });
    assert.match(plain.text, c.english[0] ?? /./, `${c.voice} (json): "${plain.text}"`);
  }
  // Transcribing the German audio with the same model gives German, not English.
  const de = CASES[0];
  assert.ok(de);
  const job = await h.submit(await synthesizeFile(de.text, { voice: de.voice }), { model: WHISPER_BASE.id });
  const done = await h.waitFor(job.body.id, (j) => j.status === 'completed' || j.status === 'failed');
  t.diagnostic(`de transcribed: "${done.text ?? ''}"`);
  assert.match(done.text ?? '', /\bMorgen\b/i, 'the transcription is German');
});

test('an English-only model cannot translate: 400 naming the multilingual ones; a language field is refused', async () => {
  const wav = await synthesizeFile(CASES[0]?.text ?? '', { voice: 'de' });
  await assert.rejects(client.audio.translations.create({ file: createReadStream(wav), model: MOONSHINE_TINY.id }),
    (err: unknown) => err instanceof OpenAI.APIError && err.status === 400 && /English-only and cannot translate; multilingual: .*whisper-base/.test(err.message));
  const form = new FormData();
  form.append('file', new Blob([Buffer.from('x')]), 'a.wav');
  form.append('model', 'whisper-1');
  form.append('language', 'de');
  const res = await h.api('/v1/audio/translations', { method: 'POST', body: form });
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { error: { message: string } }).error.message, /unknown field "language"/);
});
