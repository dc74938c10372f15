import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCHEMA_VERSION, type JobOutcome } from '../streams/index.js';
import { languageName, verboseJson } from './openai-transcription.js';

const outcome: JobOutcome = {
  v: SCHEMA_VERSION, type: 'job.outcome', jobId: 'job_1', tenantId: 't', requestId: 'r', status: 'completed', createdAt: 1, completedAt: 2,
  audioDurationSeconds: 3.2, language: 'en', transcriptKey: 'jobs/job_1/transcript.json',
};
const doc = {
  text: 'Hello there. Good day.',
  segments: [
    { start: 0.1, end: 1.0, text: 'Hello there.', words: [{ text: 'Hello', start: 0.1, end: 0.5 }, { text: 'there.', start: 0.55, end: 1.0 }] },
    { start: 1.5, end: 2.4, text: 'Good day.', words: [{ text: 'Good', start: 1.5, end: 1.8 }, { text: 'day.', start: 1.85, end: 2.4 }] },
  ],
};

test('verbose_json: OpenAI\'s fields from a Dalston transcript; words only when asked for', () => {
  const v = verboseJson(doc, outcome, true);
  assert.equal(v['task'], 'transcribe');
  assert.equal(v['language'], 'english');
  assert.equal(v['duration'], 3.2);
  assert.equal(v['text'], 'Hello there. Good day.');
  assert.deepEqual((v['segments'] as { id: number; start: number; end: number; text: string }[]).map((s) => [s.id, s.start, s.end, s.text]), [
    [0, 0.1, 1.0, 'Hello there.'], [1, 1.5, 2.4, 'Good day.'],
  ]);
  assert.deepEqual(v['words'], [
    { word: 'Hello', start: 0.1, end: 0.5 }, { word: 'there.', start: 0.55, end: 1.0 }, { word: 'Good', start: 1.5, end: 1.8 }, { word: 'day.', start: 1.85, end: 2.4 },
  ]);
  assert.equal('words' in verboseJson(doc, outcome, false), false);
});

test('language names as OpenAI writes them; an unknown or automatic language says so', () => {
  assert.equal(languageName('en'), 'english');
  assert.equal(languageName('de'), 'german');
  assert.equal(languageName('auto'), 'unknown');
  assert.equal(languageName(undefined), 'unknown');
});
