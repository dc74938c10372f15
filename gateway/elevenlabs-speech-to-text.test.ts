import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpError } from './errors.js';
import { elevenLabsTranscript, parseElevenLabsFields } from './elevenlabs-speech-to-text.js';

test('ElevenLabs fields: vendor models run the default, ISO 639-3 languages map to 639-1, unbuilt features are listed as not applied', () => {
  const r = parseElevenLabsFields([
    ['model_id', 'scribe_v2'], ['language_code', 'eng'], ['diarize', 'true'], ['num_speakers', '2'], ['tag_audio_events', 'false'],
    ['keyterms', 'Dalston'], ['keyterms', 'Kafka'], ['use_multi_channel', 'false'], ['timestamps_granularity', 'character'], ['webhook', 'true'],
  ]);
  assert.deepEqual(r.params, { api: 'elevenlabs', webhook: { endpoints: 'all' }, language: 'en', timestampsGranularity: 'word' });
  assert.equal(r.webhook, true);
  assert.deepEqual(r.notApplied, ['diarize', 'keyterms', 'num_speakers', 'timestamps_granularity']);
  // Without webhook=true no endpoint hears of the job (the caller has the answer).
  assert.deepEqual(parseElevenLabsFields([['model_id', 'moonshine-tiny'], ['timestamps_granularity', 'none']]).params,
    { api: 'elevenlabs', webhook: { endpoints: 'none' }, model: 'moonshine-tiny', timestampsGranularity: 'none' });
  const one = parseElevenLabsFields([['model_id', 'scribe_v1'], ['webhook', 'true'], ['webhook_id', 'wh_0123456789abcdef'], ['webhook_metadata', '{"order": 7}']]);
  assert.deepEqual(one.params.webhook, { endpoints: 'one', endpointId: 'wh_0123456789abcdef', metadata: Buffer.from('{"order":7}').toString('base64url') });
  assert.throws(() => parseElevenLabsFields([['model_id', 'scribe_v1'], ['webhook_id', 'wh_1']]), /need webhook=true/);
  assert.throws(() => parseElevenLabsFields([['model_id', 'scribe_v1'], ['webhook', 'true'], ['webhook_metadata', '[1]']]), /must be a JSON object/);
  assert.throws(() => parseElevenLabsFields([['model_id', 'scribe_v1'], ['webhook', 'yes']]), /must be true or false/);
  assert.throws(() => parseElevenLabsFields([]), /model_id is required/);
  assert.throws(() => parseElevenLabsFields([['model_id', 'scribe_v9000']]), /model "scribe_v9000" is not a model of this server/);
  assert.throws(() => parseElevenLabsFields([['model_id', 'scribe_v1'], ['language_code', 'klingon']]), /not a supported language code/);
  assert.throws(() => parseElevenLabsFields([['model_id', 'scribe_v1'], ['colour', 'blue']]), /unknown field "colour"/);
  assert.throws(() => parseElevenLabsFields([['model_id', 'scribe_v1'], ['source_url', 'https://youtu.be/x']]),
    (e: unknown) => e instanceof HttpError && e.status === 501 && /source_url is not supported yet/.test(e.message));
});

test('ElevenLabs answer: words with spacing between them, the job id as transcription_id, what was not applied', () => {
  const doc = { text: 'Hello there.', segments: [{ start: 0, end: 1, text: 'Hello there.', words: [{ text: 'Hello', start: 0.1, end: 0.4 }, { text: 'there.', start: 0.5, end: 0.9 }] }] };
  const a = elevenLabsTranscript(doc, { jobId: 'job_1', language: 'en', audioDurationSeconds: 1.2 }, true, ['diarize']);
  assert.deepEqual(a, {
    language_code: 'en', language_probability: 1, text: 'Hello there.',
    words: [
      { text: 'Hello', start: 0.1, end: 0.4, type: 'word', logprob: 0 }, { text: ' ', start: 0.4, end: 0.5, type: 'spacing', logprob: 0 },
      { text: 'there.', start: 0.5, end: 0.9, type: 'word', logprob: 0 },
    ],
    transcription_id: 'job_1', audio_duration_secs: 1.2, metadata: { not_applied: ['diarize'] },
  });
  assert.deepEqual(elevenLabsTranscript(doc, { jobId: 'job_1' }, false, [])['words'], []);
});
