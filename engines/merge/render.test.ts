import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCues, formatTimestamp, renderSrt, renderTxt, renderVtt, wrapWords, type RenderableTranscript } from './render.js';

const WORDS = (spec: string): { text: string; start: number; end: number }[] =>
  spec.split(' ').map((p) => {
    const [text = '', start = '0', end = '0'] = p.split('@').flatMap((x) => x.split('-'));
    return { text, start: Number(start), end: Number(end) };
  });

const TRANSCRIPT: RenderableTranscript = {
  text: 'hello world. the committee will meet again next week to discuss the budget for the coming year',
  segments: [
    { start: 0.5, end: 2.25, text: 'hello world.', words: WORDS('hello@0.5-1 world.@1.1-2.25') },
    {
      start: 3, end: 9.2, text: 'the committee will meet again next week to discuss the budget for the coming year',
      words: WORDS('the@3-3.1 committee@3.1-3.6 will@3.6-3.8 meet@3.8-4.1 again@4.1-4.5 next@4.5-4.8 week@4.8-5.2 to@5.2-5.3 discuss@5.3-5.9 the@5.9-6 budget@6-6.5 for@6.5-6.7 the@6.7-6.8 coming@6.8-7.2 year@7.2-9.2'),
    },
  ],
};

void test('timestamps: SRT comma, VTT dot, millisecond rounding with carry, long and negative times', () => {
  assert.equal(formatTimestamp(0, ','), '00:00:00,000');
  assert.equal(formatTimestamp(3661.5, ','), '01:01:01,500');
  assert.equal(formatTimestamp(59.9996, '.'), '00:01:00.000');
  assert.equal(formatTimestamp(1.0005, '.'), '00:00:01.001');
  assert.equal(formatTimestamp(-2, ','), '00:00:00,000');
  assert.equal(formatTimestamp(360000.25, '.'), '100:00:00.250');
});

void test('wrapping is greedy, keeps words whole, and reserves room for a label', () => {
  assert.deepEqual(wrapWords(['aaa', 'bbb', 'ccc'], 7), ['aaa bbb', 'ccc']);
  assert.deepEqual(wrapWords(['supercalifragilistic', 'x'], 10), ['supercalifragilistic', 'x']);
  assert.deepEqual(wrapWords(['aaa', 'bbb'], 7, 2), ['aaa', 'bbb']);
});

void test('SRT golden: numbered cues, at most 2 lines of 42 characters, cut at word times', () => {
  const expected = [
    '1',
    '00:00:00,500 --> 00:00:02,250',
    'hello world.',
    '',
    '2',
    '00:00:03,000 --> 00:00:09,200',
    'the committee will meet again next week to',
    'discuss the budget for the coming year',
    '',
  ].join('\n');
  assert.equal(renderSrt(TRANSCRIPT), expected);
  for (const cue of buildCues(TRANSCRIPT)) {
    assert.ok(cue.lines.length <= 2);
    for (const line of cue.lines) assert.ok(line.length <= 42, line);
  }
});

void test('SRT golden with short lines: long segments become several cues timed by their words', () => {
  const expected = [
    '1',
    '00:00:00,500 --> 00:00:02,250',
    'hello world.',
    '',
    '2',
    '00:00:03,000 --> 00:00:04,100',
    'the committee',
    'will meet',
    '',
    '3',
    '00:00:04,100 --> 00:00:05,300',
    'again next',
    'week to',
    '',
    '4',
    '00:00:05,300 --> 00:00:06,700',
    'discuss the',
    'budget for',
    '',
    '5',
    '00:00:06,700 --> 00:00:09,200',
    'the coming',
    'year',
    '',
  ].join('\n');
  assert.equal(renderSrt(TRANSCRIPT, { maxLineLength: 13 }), expected);
});

void test('VTT golden: header, dot timestamps, reserved characters escaped', () => {
  const t: RenderableTranscript = {
    text: 'a <b> & c',
    segments: [{ start: 61.25, end: 62.5, text: 'a <b> & c', words: [] }],
  };
  assert.equal(renderVtt(t), 'WEBVTT\n\n00:01:01.250 --> 00:01:02.500\na &lt;b&gt; &amp; c\n');
  assert.equal(
    renderVtt(TRANSCRIPT),
    'WEBVTT\n\n00:00:00.500 --> 00:00:02.250\nhello world.\n\n00:00:03.000 --> 00:00:09.200\nthe committee will meet again next week to\ndiscuss the budget for the coming year\n',
  );
});

void test('a segment without word times is shared out by characters; cues last at most maxCueSeconds', () => {
  const t: RenderableTranscript = { text: 'aaaa bbbb cccc dddd', segments: [{ start: 10, end: 18, text: 'aaaa bbbb cccc dddd' }] };
  assert.deepEqual(buildCues(t, { maxCueSeconds: 4 }), [
    { start: 10, end: 14, lines: ['aaaa bbbb'] },
    { start: 14, end: 18, lines: ['cccc dddd'] },
  ]);
});

void test('several channels get [ch<N>] labels within the line budget; one channel gets none', () => {
  const t: RenderableTranscript = {
    text: 'hi there how are you',
    segments: [
      { start: 0, end: 1, text: 'hi there', channel: 0 },
      { start: 0.5, end: 2, text: 'how are you', channel: 1 },
    ],
  };
  assert.equal(renderTxt(t), '[ch0] hi there\n[ch1] how are you\n');
  assert.equal(renderSrt(t), '1\n00:00:00,000 --> 00:00:01,000\n[ch0] hi there\n\n2\n00:00:00,500 --> 00:00:02,000\n[ch1] how are you\n');
  const cues = buildCues(t, { maxLineLength: 12 });
  assert.deepEqual(cues[1]?.lines, ['[ch1] how', 'are you']);
  const single: RenderableTranscript = { text: 'hi there', segments: [{ start: 0, end: 1, text: 'hi there', channel: 0 }] };
  assert.equal(renderTxt(single), 'hi there\n');
});

void test('empty transcripts render as empty documents', () => {
  const empty: RenderableTranscript = { text: '', segments: [] };
  assert.equal(renderTxt(empty), '');
  assert.equal(renderSrt(empty), '');
  assert.equal(renderVtt(empty), 'WEBVTT\n');
});
