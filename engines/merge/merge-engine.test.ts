import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IllegalStateError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import type { PrepareOutput } from '../audio-prepare/index.js';
import type { EngineTaskContext } from '../sdk/engine.js';
import type { TranscribeOutput } from '../transcribe/index.js';
import { MergeEngine, mergeTranscript, type TranscriptDocument } from './merge-engine.js';

const PREPARE: PrepareOutput = {
  duration_seconds: 4, sample_rate: 16000, channels: 1,
  original: { codec: 'mp3', container: 'mp3', sample_rate: 44100, channels: 2, bytes: 1000 },
  files: [{ name: 'audio.wav', duration_seconds: 4, bytes: 128044 }],
};

function transcribed(segments: Array<[number, number, string]>, extra: Partial<TranscribeOutput> = {}): TranscribeOutput {
  return {
    language: 'en', model: 'pocketsphinx-en-us', audio_duration_seconds: 4,
    text: segments.map((s) => s[2]).join(' '),
    segments: segments.map(([start, end, text]) => {
      const parts = text.split(' ');
      const step = (end - start) / parts.length;
      return { start, end, text, words: parts.map((p, i) => ({ text: p, start: start + i * step, end: start + (i + 1) * step, confidence: 0.9 })) };
    }),
    ...extra,
  };
}

const CREATED = new Date('2026-11-28T10:00:00.000Z');

void test('single channel: text, ids, words in order with segment ids, metadata', () => {
  const doc = mergeTranscript({ jobId: 'job-1', prepare: PREPARE, transcripts: { transcribe: transcribed([[0.5, 1.5, 'hello world'], [2, 3, 'good bye']]) }, createdAt: CREATED });
  assert.equal(doc.job_id, 'job-1');
  assert.equal(doc.text, 'hello world good bye');
  assert.equal(doc.language, 'en');
  assert.equal(doc.audio_duration_seconds, 4);
  assert.deepEqual(doc.segments.map((s) => [s.id, s.start, s.end, s.text, s.channel]), [[0, 0.5, 1.5, 'hello world', undefined], [1, 2, 3, 'good bye', undefined]]);
  assert.deepEqual(doc.words.map((w) => [w.text, w.segment_id]), [['hello', 0], ['world', 0], ['good', 1], ['bye', 1]]);
  assert.equal(doc.words[0]?.confidence, 0.9);
  assert.deepEqual(doc.metadata, {
    pipeline_stages: ['prepare', 'transcribe', 'merge'], channels: 2, sample_rate: 44100, created_at: '2026-11-28T10:00:00.000Z',
    models: { transcribe: 'pocketsphinx-en-us' }, timestamps_granularity: 'word',
  });
});

void test('per channel: segments of both channels interleaved by time and labelled', () => {
  const doc = mergeTranscript({
    jobId: 'job-2', prepare: PREPARE, createdAt: CREATED,
    transcripts: {
      transcribe_ch1: transcribed([[1, 2, 'fine thanks']], { channel: 1 }),
      transcribe_ch0: transcribed([[0, 0.8, 'how are you'], [2.5, 3, 'great']], { channel: 0 }),
    },
  });
  assert.deepEqual(doc.segments.map((s) => [s.channel, s.text]), [[0, 'how are you'], [1, 'fine thanks'], [0, 'great']]);
  assert.equal(doc.text, 'how are you fine thanks great');
  assert.deepEqual(doc.metadata.pipeline_stages, ['prepare', 'transcribe_ch0', 'transcribe_ch1', 'merge']);
  assert.ok(doc.words.every((w, i, all) => i === 0 || (all[i - 1]?.start ?? 0) <= w.start));
  assert.deepEqual([...new Set(doc.words.map((w) => w.channel))].sort(), [0, 1]);
});

void test('segment granularity drops words but keeps segment times; empty segments are skipped', () => {
  const doc = mergeTranscript({
    jobId: 'j', prepare: PREPARE, createdAt: CREATED, timestampsGranularity: 'segment',
    transcripts: { transcribe: transcribed([[0, 1, 'hello'], [1, 2, ' ']]) },
  });
  assert.equal(doc.words.length, 0);
  assert.deepEqual(doc.segments.map((s) => [s.start, s.end, s.words.length]), [[0, 1, 0]]);
  assert.equal(doc.metadata.timestamps_granularity, 'segment');
});

void test('the engine reads upstream outputs by stage name, renders txt/srt/vtt, and names malformed fields', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dalston-merge-test-'));
  try {
    await writeFile(join(dir, 'prepare.json'), JSON.stringify(PREPARE));
    await writeFile(join(dir, 'transcribe.json'), JSON.stringify(transcribed([[0.5, 1.5, 'hello world']])));
    const ctx: EngineTaskContext = {
      jobId: 'job-3', taskId: 'merge', stage: 'merge', attempt: 1, config: {}, workDir: dir,
      inputs: { prepare: join(dir, 'prepare.json'), transcribe: join(dir, 'transcribe.json'), 'prepare.audio.wav': join(dir, 'x.wav') },
      signal: new AbortController().signal, log: silentLogger, measureModelLoad: (_m, load) => load(),
    };
    const engine = new MergeEngine({ now: () => CREATED });
    const result = await engine.process(ctx);
    const doc = result.data as TranscriptDocument;
    assert.equal(doc.text, 'hello world');
    assert.equal(result.audioDurationSeconds, 4);
    assert.equal(await readFile(result.blobs?.['transcript.txt'] ?? '', 'utf8'), 'hello world\n');
    assert.equal(await readFile(result.blobs?.['transcript.srt'] ?? '', 'utf8'), '1\n00:00:00,500 --> 00:00:01,500\nhello world\n');
    assert.equal(await readFile(result.blobs?.['transcript.vtt'] ?? '', 'utf8'), 'WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nhello world\n');

    await writeFile(join(dir, 'transcribe.json'), JSON.stringify({ language: 'en', text: 'x', segments: [{ start: 'zero', end: 1, text: 'x' }] }));
    await assert.rejects(engine.process(ctx), (err: unknown) =>
      err instanceof IllegalStateError && !err.retryable && err.message === 'upstream output of transcribe is malformed: segments[0].start should be a number');
    await assert.rejects(engine.process({ ...ctx, inputs: { prepare: join(dir, 'prepare.json') } }), /no transcribe input/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('parts of one long file pool into one transcript in time order, with no channel, whatever order they finished in', () => {
  const doc = mergeTranscript({
    jobId: 'job-long', prepare: { ...PREPARE, duration_seconds: 30 },
    transcripts: {
      transcribe_part2: transcribed([[21, 23, 'third part'], [25, 26, 'end']], { span: { start: 20.4, end: 30 } }),
      transcribe: transcribed([[0.5, 2, 'first part']], { span: { start: 0, end: 9.8 } }),
      transcribe_part1: transcribed([[10, 12, 'second part']], { span: { start: 9.8, end: 20.4 } }),
    },
    createdAt: CREATED,
  });
  assert.equal(doc.text, 'first part second part third part end');
  assert.deepEqual(doc.segments.map((s) => [s.id, s.start, s.channel]), [[0, 0.5, undefined], [1, 10, undefined], [2, 21, undefined], [3, 25, undefined]]);
  const starts = doc.words.map((w) => w.start);
  assert.deepEqual(starts, [...starts].sort((a, b) => a - b), 'word times never go back across a join');
  assert.equal(doc.words.length, 7, 'no word lost or doubled');
  assert.equal(doc.audio_duration_seconds, 30);
  assert.deepEqual(doc.metadata.pipeline_stages, ['prepare', 'transcribe', 'transcribe_part1', 'transcribe_part2', 'merge']);
  assert.equal(doc.metadata.channels, 2, 'the original file\'s channels, not the number of parts');
});
