import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deepgramResponse, parseDeepgramQuery } from './deepgram-listen.js';

test('Deepgram query: vendor models run the default, BCP-47 languages map to ISO 639-1, unbuilt options are listed as not applied', () => {
  const r = parseDeepgramQuery(new URLSearchParams('model=nova-3&language=en-US&smart_format=true&utterances=true&diarize=true&paragraphs=true&multichannel=false'));
  assert.deepEqual(r.params, { api: 'deepgram', timestampsGranularity: 'word', language: 'en' });
  assert.equal(r.utterances, true);
  assert.deepEqual(r.notApplied, ['diarize', 'paragraphs']);
  assert.deepEqual(parseDeepgramQuery(new URLSearchParams('model=moonshine-tiny')).params, { api: 'deepgram', timestampsGranularity: 'word', model: 'moonshine-tiny' });
  assert.throws(() => parseDeepgramQuery(new URLSearchParams('model=flux-9000')), /model "flux-9000" is not a model of this server/);
  assert.throws(() => parseDeepgramQuery(new URLSearchParams('language=xx-klingon')), /not a supported language code/);
});

test('Deepgram response: channels → alternatives with plain and punctuated words; utterances only when asked for', () => {
  const doc = { text: 'Hello, there.', segments: [{ start: 0.1, end: 0.9, text: ' Hello, there.', words: [{ text: 'Hello,', start: 0.1, end: 0.4 }, { text: 'there.', start: 0.5, end: 0.9 }] }] };
  const meta = { requestId: 'req_1', jobId: 'job_1', createdAt: 0, duration: 1.5, model: 'nova-3' };
  const r = deepgramResponse(doc, meta, { utterances: true, notApplied: [] }) as { results: { channels: { alternatives: { transcript: string; words: unknown[] }[] }[]; utterances: { transcript: string; words: unknown[] }[] }; metadata: { duration: number; request_id: string } };
  assert.equal(r.metadata.duration, 1.5);
  assert.equal(r.metadata.request_id, 'req_1');
  assert.deepEqual(r.results.channels[0]?.alternatives[0], {
    transcript: 'Hello, there.',
    words: [{ word: 'hello', start: 0.1, end: 0.4, punctuated_word: 'Hello,' }, { word: 'there', start: 0.5, end: 0.9, punctuated_word: 'there.' }],
  });
  assert.equal(r.results.utterances[0]?.transcript, 'Hello, there.');
  assert.equal(r.results.utterances[0]?.words.length, 2);
  assert.equal('utterances' in (deepgramResponse(doc, meta, { utterances: false, notApplied: [] })['results'] as object), false);
});
