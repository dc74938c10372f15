import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidInputError } from '../../core/errors.js';
import { StreamingEndpointer, type EndpointerEvent } from './endpointer.js';
import { compileEndpointerOptions, type EndpointerOptions } from './endpointer-options.js';

/** 10 ms frames at 16 kHz keep the arithmetic readable: frame f starts at f·160 samples. */
const FRAME = 160;
const ms = (v: number): number => v * 16;

function endpointer(options: EndpointerOptions = {}, origin = 0): StreamingEndpointer {
  return new StreamingEndpointer(compileEndpointerOptions(options), FRAME, origin);
}

/** Probabilities from a script of [probability, milliseconds] runs. */
function script(...runs: [number, number][]): number[] {
  return runs.flatMap(([p, duration]) => Array.from({ length: duration / 10 }, () => p));
}

function feed(e: StreamingEndpointer, probs: readonly number[]): EndpointerEvent[] {
  return probs.flatMap((p) => e.push(p));
}

void test('speech between pauses: one start padded back, one end after minSilence at the pause plus padding', () => {
  const e = endpointer();
  const events = feed(e, script([0.05, 1000], [0.9, 1200], [0.05, 1000]));
  assert.deepEqual(events, [
    { type: 'start', at: ms(1000 - 200) },
    { type: 'end', start: ms(800), at: ms(2200 + 200), reason: 'silence' },
  ]);
});

void test('the start is reported only once speech has lasted minSpeech; the end exactly when the pause reaches minSilence', () => {
  const e = endpointer();
  const probs = script([0.05, 500], [0.9, 1000], [0.05, 600]);
  const when: [number, string][] = [];
  probs.forEach((p, i) => {
    for (const ev of e.push(p)) when.push([(i + 1) * 10, ev.type]);
  });
  assert.deepEqual(when, [[500 + 250, 'start'], [1500 + 500, 'end']]);
});

void test('a burst shorter than minSpeech opens nothing, even repeated after long pauses', () => {
  const e = endpointer();
  assert.deepEqual(feed(e, script([0.05, 300], [0.95, 200], [0.05, 800], [0.95, 120], [0.05, 800])), []);
  assert.equal(e.isOpen, false);
});

void test('frames between the thresholds neither start nor end speech (hysteresis)', () => {
  const e = endpointer({ threshold: 0.5, negThreshold: 0.3 });
  assert.deepEqual(feed(e, script([0.4, 1000])), [], 'between thresholds does not start');
  const events = feed(e, script([0.9, 500], [0.4, 2000], [0.1, 600]));
  assert.deepEqual(events.map((x) => x.type), ['start', 'end']);
  const end = events[1];
  assert.ok(end?.type === 'end');
  assert.equal(end.at, ms(1000 + 500 + 2000 + 200), 'the pause starts at the first frame below negThreshold');
});

void test('padding never reaches back into the previous utterance', () => {
  const e = endpointer({ speechPadMs: 400, minSilenceMs: 500 });
  const events = feed(e, script([0.05, 1000], [0.9, 500], [0.05, 550], [0.9, 500], [0.05, 1000]));
  assert.equal(events.length, 4, JSON.stringify(events));
  const firstEnd = events[1];
  const secondStart = events[2];
  assert.ok(firstEnd?.type === 'end' && secondStart?.type === 'start');
  assert.equal(firstEnd.at, ms(1500 + 400));
  assert.equal(secondStart.at, firstEnd.at, 'clamped to the end of the previous utterance');
});

void test('maxUtterance cuts at the quietest frame of the second half and the speech goes on as the next utterance', () => {
  const e = endpointer({ maxUtteranceMs: 2000 });
  // Onset at 1000 ms, so the utterance starts at 800 ms; a dip (0.2) at 2300-2310 ms, inside the second half.
  const events = feed(e, script([0.05, 1000], [0.9, 1300], [0.2, 10], [0.9, 1500], [0.05, 700]));
  assert.deepEqual(events, [
    { type: 'start', at: ms(800) },
    { type: 'end', start: ms(800), at: ms(2305), reason: 'max_duration' },
    { type: 'start', at: ms(2305) },
    { type: 'end', start: ms(2305), at: ms(3810 + 200), reason: 'silence' },
  ]);
});

void test('commit ends the utterance at once; continuing speech opens the next one from the commit point', () => {
  const e = endpointer();
  feed(e, script([0.05, 500], [0.9, 700]));
  assert.equal(e.isOpen, true);
  assert.deepEqual(e.commit(ms(1205)), { type: 'end', start: ms(300), at: ms(1205), reason: 'flush' });
  assert.equal(e.commit(), undefined, 'nothing left to commit');
  const events = feed(e, script([0.9, 600], [0.05, 600]));
  assert.deepEqual(events[0], { type: 'start', at: ms(1205) });
  assert.equal(events[1]?.type, 'end');
});

void test('discard forgets the open utterance; finish closes one in a pause at the pause plus padding', () => {
  const e = endpointer();
  feed(e, script([0.05, 500], [0.9, 700]));
  e.discard();
  assert.equal(e.isOpen, false);
  assert.equal(e.finish(), undefined);
  const f = endpointer({}, ms(10000));
  feed(f, script([0.9, 700], [0.05, 300]));
  assert.deepEqual(f.finish(ms(11000) + 77), { type: 'end', start: ms(10000), at: ms(10700 + 200), reason: 'end' });
});

void test('positions are absolute from the origin given when resuming', () => {
  const e = endpointer({}, 123_456);
  const events = feed(e, script([0.05, 500], [0.9, 500], [0.05, 600]));
  assert.equal(events[0]?.type === 'start' ? events[0].at : -1, 123_456 + ms(300));
  assert.equal(e.position, 123_456 + ms(1600));
});

void test('keepFrom bounds the audio the caller must hold: the padding while idle, the utterance while open', () => {
  const e = endpointer();
  feed(e, script([0.05, 3000]));
  assert.equal(e.keepFrom, ms(3000 - 200));
  feed(e, script([0.9, 400]));
  assert.equal(e.keepFrom, ms(2800));
  assert.equal(e.openStart, ms(2800));
});

void test('options are validated and a bad value names its option', () => {
  const cases: [EndpointerOptions, RegExp][] = [
    [{ threshold: 1 }, /threshold must be a probability/],
    [{ threshold: 0.5, negThreshold: 0.6 }, /negThreshold .*at most threshold/],
    [{ minSpeechMs: -1 }, /minSpeechMs/],
    [{ minSilenceMs: Number.NaN }, /minSilenceMs/],
    [{ speechPadMs: 5000 }, /speechPadMs/],
    [{ maxUtteranceMs: 60000 }, /maxUtteranceMs .*1000 to 30000/],
    [{ maxUtteranceMs: 1000, minSpeechMs: 900, speechPadMs: 200 }, /maxUtteranceMs must be at least minSpeechMs/],
  ];
  for (const [options, message] of cases) {
    assert.throws(() => compileEndpointerOptions(options), (err: unknown) => err instanceof InvalidInputError && message.test(err.message) && !err.retryable);
  }
  assert.deepEqual(compileEndpointerOptions(), {
    sampleRate: 16000, threshold: 0.5, negThreshold: 0.35, minSpeechSamples: 4000, minSilenceSamples: 8000, speechPadSamples: 3200, maxUtteranceSamples: 240000, manualCommit: false,
  });
});

void test('manual commit: a pause reports voice_end and speech after it voice_start; only commit() closes the utterance', () => {
  const e = endpointer({ manualCommit: true });
  const events = feed(e, script([0.05, 1000], [0.9, 1200], [0.05, 3000], [0.9, 800], [0.05, 9000]));
  assert.deepEqual(events, [
    { type: 'start', at: ms(800) },
    { type: 'voice_end', start: ms(800), at: ms(2200 + 200) },
    // The resumed speech is padded back like an onset, never before the end of the reported pause.
    { type: 'voice_start', at: ms(5200 - 200) },
    { type: 'voice_end', start: ms(5000), at: ms(6000 + 200) },
  ]);
  assert.equal(e.isOpen, true, 'a 9 s pause closes nothing');
  assert.deepEqual(e.commit(), { type: 'end', start: ms(800), at: ms(15_000), reason: 'flush' });
  assert.equal(e.isOpen, false);
});

void test('manual commit: a click in a pause does not resume the voice; the end of the stream closes the utterance at its last speech', () => {
  const e = endpointer({ manualCommit: true });
  const events = feed(e, script([0.9, 1000], [0.05, 1000], [0.95, 100], [0.05, 1000]));
  assert.deepEqual(events.map((x) => x.type), ['start', 'voice_end']);
  assert.deepEqual(e.finish(), { type: 'end', start: 0, at: ms(2100 + 200), reason: 'end' });
});

void test('manual commit: the length cap still forces a final while the utterance is open', () => {
  const e = endpointer({ manualCommit: true, maxUtteranceMs: 5000 });
  const events = feed(e, script([0.9, 1000], [0.05, 6000]));
  assert.deepEqual(events.map((x) => x.type), ['start', 'voice_end', 'end']);
  const end = events[2];
  assert.ok(end?.type === 'end');
  assert.equal(end.reason, 'max_duration');
  assert.equal(e.isOpen, false, 'the silence after the cut opens nothing');
});

void test('manual commit off (the default): the same pause closes the utterance', () => {
  const e = endpointer();
  assert.deepEqual(feed(e, script([0.9, 1000], [0.05, 3000])).map((x) => x.type), ['start', 'end']);
});
