/**
 * The transcriber's rules with a scripted VAD and recogniser (pure: no model), so cadence under load, lifecycle,
 * clear, empty utterances and failover are checked exactly. Decode cost is simulated on a ManualClock: the fake
 * recogniser advances it, as a slow model would advance the wall clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../core/clock.js';
import { CancelledError, IllegalStateError, InvalidInputError } from '../../core/errors.js';
import type { RecognitionRequest, RecognitionResult, Recognizer } from '../asr/index.js';
import { createStreamingTranscriber, parseCheckpoint, type StreamingTranscriberOptions, type TranscriptEvent, type VadFrameModel } from './index.js';

const RATE = 16000;

/** Speech probability from frame loudness: enough to drive the end-pointer on synthetic audio. */
const energyVad: VadFrameModel = {
  createStream: () => ({
    process: async (frame: Float32Array) => {
      let sum = 0;
      for (const s of frame) sum += s * s;
      return Math.sqrt(sum / frame.length) > 0.05 ? 0.95 : 0.02;
    },
  }),
};

/** One word per 250 ms of loud audio ("w0 w1 …"); each call costs `costMs` on the clock. */
class ScriptedRecognizer implements Recognizer {
  readonly modelId = 'scripted';
  readonly loaded = true;
  calls = 0;
  failNext = false;
  silent = false;
  constructor(private readonly clock: ManualClock, private readonly costMs: (audioSamples: number) => number = () => 0) {}
  async load(): Promise<void> {}
  async close(): Promise<void> {}
  async recognize(request: RecognitionRequest): Promise<RecognitionResult> {
    this.calls += 1;
    this.clock.advance(this.costMs(request.audio.length));
    if (request.signal?.aborted === true) throw new CancelledError('recognition cancelled');
    if (this.failNext) {
      this.failNext = false;
      throw new Error('decoder crashed');
    }
    let loud = 0;
    for (const s of request.audio) if (Math.abs(s) > 0.05) loud++;
    const n = this.silent ? 0 : Math.floor(loud / (RATE / 4));
    const words = Array.from({ length: n }, (_, i) => ({ text: `w${i}`, start: i * 0.25, end: i * 0.25 + 0.2 }));
    const text = words.map((w) => w.text).join(' ');
    return { language: 'en', text, segments: n === 0 ? [] : [{ start: 0, end: n * 0.25, text, words }] };
  }
}

/** [seconds, loud?] runs; loud is a 0.3-amplitude square wave at 200 Hz. */
function audio(...runs: [number, boolean][]): Float32Array {
  const out = new Float32Array(Math.round(runs.reduce((s, [d]) => s + d, 0) * RATE));
  let at = 0;
  for (const [d, loud] of runs) {
    const n = Math.round(d * RATE);
    if (loud) for (let i = 0; i < n; i++) out[at + i] = Math.floor((i / RATE) * 400) % 2 === 0 ? 0.3 : -0.3;
    at += n;
  }
  return out;
}

async function feed(t: ReturnType<typeof createStreamingTranscriber>, samples: Float32Array, chunk = RATE / 10): Promise<TranscriptEvent[]> {
  const events: TranscriptEvent[] = [];
  for (let i = 0; i < samples.length; i += chunk) events.push(...(await t.push(samples.subarray(i, i + chunk))));
  return events;
}

function make(extra: Partial<StreamingTranscriberOptions> & { costMs?: (n: number) => number } = {}): { t: ReturnType<typeof createStreamingTranscriber>; rec: ScriptedRecognizer; clock: ManualClock } {
  const clock = new ManualClock();
  const rec = new ScriptedRecognizer(clock, extra.costMs);
  const { costMs: _c, ...options } = extra;
  return { t: createStreamingTranscriber({ recognizer: rec, vad: energyVad, clock, ...options }), rec, clock };
}

const SPEECH = audio([0.5, false], [6, true], [1, false]);
const count = (events: readonly TranscriptEvent[], type: TranscriptEvent['type']): number => events.filter((e) => e.type === type).length;

void test('with cheap decodes partials come every 300 ms of audio; costly decodes stretch the cadence, the final stays', async () => {
  const cheap = make();
  const cheapEvents = [...(await feed(cheap.t, SPEECH)), ...(await cheap.t.end())];
  // The utterance opens at 0.75 s (onset + minSpeech) and is decoded until its end at about 6.7 s.
  assert.ok(cheap.t.stats.partialDecodes >= 18 && cheap.t.stats.partialDecodes <= 21, `cheap: ${cheap.t.stats.partialDecodes} partial decodes`);
  // Decoding takes 0.25 × the audio decoded; with a 0.5 share of real time a partial then waits for half the
  // utterance's length of new audio: decodes at about 0.5, 1, 2 and 4 s into the utterance.
  const costly = make({ costMs: (n) => (n / RATE) * 250 });
  const costlyEvents = [...(await feed(costly.t, SPEECH)), ...(await costly.t.end())];
  assert.equal(costly.t.stats.decodeCostRatio, 0.25);
  assert.ok(costly.t.stats.partialDecodes >= 3 && costly.t.stats.partialDecodes <= 5, `costly: ${costly.t.stats.partialDecodes} partial decodes`);
  assert.equal(count(cheapEvents, 'final'), 1);
  assert.equal(count(costlyEvents, 'final'), 1);
  assert.equal(cheapEvents.find((e) => e.type === 'final')?.text, costlyEvents.find((e) => e.type === 'final')?.text);
});

void test('when the host is far behind real time partials are skipped, never finals', async () => {
  const { t } = make({ behindMs: () => 5000 });
  const events = [...(await feed(t, SPEECH)), ...(await t.end())];
  assert.equal(count(events, 'partial'), 0);
  assert.equal(t.stats.partialDecodes, 0);
  assert.ok(t.stats.partialsSkipped >= 2, `${t.stats.partialsSkipped} skipped`);
  assert.deepEqual(events.map((e) => e.type), ['speech_start', 'speech_end', 'final']);
});

void test('lag beyond one interval stretches the cadence by the excess; a few ms of lag do not', async () => {
  const moderate = make({ behindMs: () => 700 });
  await feed(moderate.t, SPEECH);
  assert.equal(moderate.t.stats.partialIntervalMs, 700);
  assert.ok(moderate.t.stats.partialDecodes >= 7 && moderate.t.stats.partialDecodes <= 9, `${moderate.t.stats.partialDecodes} partial decodes`);
  const slight = make({ behindMs: () => 20 });
  await feed(slight.t, SPEECH);
  assert.equal(slight.t.stats.partialIntervalMs, 300);
});

void test('partials can be switched off; the final is unchanged', async () => {
  const { t, rec } = make({ partials: { enabled: false } });
  const events = [...(await feed(t, SPEECH)), ...(await t.end())];
  assert.deepEqual(events.map((e) => e.type), ['speech_start', 'speech_end', 'final']);
  assert.equal(rec.calls, 1);
});

void test('finals do not depend on how the audio is chunked', async () => {
  const two = audio([0.3, false], [1.5, true], [0.8, false], [2, true], [1, false]);
  const finalsOf = async (chunk: number): Promise<string> => {
    const { t } = make({ partials: { enabled: false } });
    const events = [...(await feed(t, two, chunk)), ...(await t.end())];
    return JSON.stringify(events.filter((e) => e.type === 'final'));
  };
  const reference = await finalsOf(RATE / 10);
  assert.equal((JSON.parse(reference) as unknown[]).length, 2);
  assert.equal(await finalsOf(37), reference);
  assert.equal(await finalsOf(two.length), reference);
});

void test('an utterance whose audio holds no words ends without a final; its index is not reused', async () => {
  const { t, rec } = make();
  rec.silent = true;
  const events = [...(await feed(t, SPEECH))];
  assert.deepEqual(events.map((e) => e.type), ['speech_start', 'speech_end']);
  assert.deepEqual(t.checkpoint(), { version: 1, audioOffsetSamples: events[1]?.type === 'speech_end' ? events[1].end * RATE : -1, nextUtterance: 1, finalizedCount: 0 });
  rec.silent = false;
  const next = [...(await feed(t, SPEECH)), ...(await t.end())];
  assert.deepEqual(next.filter((e) => e.type === 'final').map((e) => e.utterance), [1]);
});

void test('clear() drops the open utterance: no speech_end, no final, and a resumed transcriber would not redo it', async () => {
  const { t } = make();
  const before = await feed(t, audio([0.5, false], [2, true]));
  assert.equal(count(before, 'speech_start'), 1);
  assert.deepEqual(await t.clear(), []);
  assert.deepEqual(t.checkpoint(), { version: 1, audioOffsetSamples: 2.5 * RATE, nextUtterance: 1, finalizedCount: 0 });
  // The speaker goes on: the rest is a new utterance that starts no earlier than the clear.
  const after = [...(await feed(t, audio([1, true], [1, false]))), ...(await t.end())];
  const final = after.find((e) => e.type === 'final');
  assert.ok(final !== undefined);
  assert.equal(final.utterance, 1);
  assert.ok(final.start >= 2.5);
});

void test('lifecycle: overlapping calls and calls after end() are refused; end() finalises what is open', async () => {
  const { t } = make();
  await feed(t, audio([0.5, false], [2, true]));
  const running = t.push(audio([0.2, true]));
  await assert.rejects(t.flush(), IllegalStateError);
  await running;
  const last = await t.end();
  assert.deepEqual(last.map((e) => e.type), ['speech_end', 'final']);
  assert.equal(last[0]?.type === 'speech_end' ? last[0].reason : '', 'end');
  assert.equal(t.state, 'ended');
  await assert.rejects(t.push(new Float32Array(10)), IllegalStateError);
  await assert.rejects(t.end(), IllegalStateError);
});

void test('a failed final decode fails the transcriber; one restored from its checkpoint redoes that utterance under the same index', async () => {
  const { t, rec } = make({ partials: { enabled: false } });
  const first = [...(await feed(t, audio([0.5, false], [1.5, true], [1, false])))];
  assert.equal(count(first, 'final'), 1);
  rec.failNext = true;
  const second = audio([1.5, true], [1, false]);
  await assert.rejects(feed(t, second), /decoder crashed/);
  assert.equal(t.state, 'failed');
  await assert.rejects(t.push(new Float32Array(10)), IllegalStateError);
  const checkpoint = t.checkpoint();
  assert.equal(checkpoint.nextUtterance, 1);
  assert.equal(checkpoint.finalizedCount, 1);
  // Re-feed everything after the offset: the tail of the pause after utterance 0, then the failed utterance.
  const all = audio([0.5, false], [1.5, true], [1, false], [1.5, true], [1, false]);
  const restored = make({ partials: { enabled: false }, checkpoint }).t;
  const redone = [...(await feed(restored, all.subarray(checkpoint.audioOffsetSamples))), ...(await restored.end())];
  assert.deepEqual(redone.filter((e) => e.type === 'final').map((e) => e.utterance), [1]);
  assert.ok((redone.find((e) => e.type === 'final')?.start ?? 0) >= checkpoint.audioOffsetSamples / RATE);
  assert.equal(restored.checkpoint().finalizedCount, 2);
});

void test('one large push keeps the buffer bounded by one utterance plus padding', async () => {
  const { t } = make({ endpointer: { maxUtteranceMs: 5000 }, partials: { enabled: false } });
  const events = await t.push(audio([1, false], [40, true]));
  const finals = count(events, 'final');
  assert.ok(finals >= 7 && finals <= 8, `${finals} finals: one per 5 s or so of monologue`);
  assert.ok(t.stats.bufferedSamples <= 5.2 * RATE + 512, `${t.stats.bufferedSamples} samples held`);
});

void test('checkpoints are validated when read back', () => {
  assert.deepEqual(parseCheckpoint({ version: 1, audioOffsetSamples: 16000, nextUtterance: 3, finalizedCount: 2 }), { version: 1, audioOffsetSamples: 16000, nextUtterance: 3, finalizedCount: 2 });
  for (const bad of [null, 'x', { version: 2, audioOffsetSamples: 0, nextUtterance: 0, finalizedCount: 0 }, { version: 1, audioOffsetSamples: -1, nextUtterance: 0, finalizedCount: 0 }, { version: 1, audioOffsetSamples: 0.5, nextUtterance: 0, finalizedCount: 0 }, { version: 1, audioOffsetSamples: 0, nextUtterance: 1, finalizedCount: 2 }]) {
    assert.throws(() => parseCheckpoint(bad), InvalidInputError, JSON.stringify(bad));
  }
  assert.throws(() => make({ checkpoint: { version: 1, audioOffsetSamples: 0, nextUtterance: 0, finalizedCount: 5 } }), InvalidInputError);
  assert.throws(() => make({ partials: { intervalMs: 0 } }), /intervalMs/);
  assert.throws(() => make({ endpointer: { minSilenceMs: -5 } }), /minSilenceMs/);
});

void test('an aborted session signal cancels: the call rejects with CancelledError and the transcriber fails over', async () => {
  const ac = new AbortController();
  const { t } = make({ signal: ac.signal, costMs: () => {
    ac.abort(); // the session goes away while the decode runs
    return 10;
  } });
  await assert.rejects(feed(t, SPEECH), CancelledError);
  assert.equal(t.state, 'failed');
  assert.deepEqual(t.checkpoint(), { version: 1, audioOffsetSamples: 0, nextUtterance: 0, finalizedCount: 0 });
  await assert.rejects(t.push(new Float32Array(1)), IllegalStateError);
});

void test('the cost of a long utterance does not delay the first partial of the next one', async () => {
  // Decoding costs 0.25 × the audio: after a 6 s utterance the last decode took 1.5 s, but a new utterance's
  // first decode (about 0.5 s of audio) is predicted at 125 ms, within the base interval.
  const { t } = make({ costMs: (n) => (n / RATE) * 250 });
  await feed(t, SPEECH);
  const next = await feed(t, audio([0.8, true]));
  assert.deepEqual(next.map((e) => e.type), ['speech_start', 'partial']);
});

void test('manual commit: pauses are reported as voice_end/voice_start but finalise nothing; flush makes one final of all the speech', async () => {
  const { t } = make({ endpointer: { manualCommit: true }, partials: { enabled: false } });
  // Two stretches of speech with a 3 s pause (six times minSilence) between them.
  const events = await feed(t, audio([0.5, false], [1, true], [3, false], [1, true], [1, false]));
  assert.deepEqual(events.map((e) => e.type), ['speech_start', 'voice_end', 'voice_start', 'voice_end']);
  assert.ok(events.every((e) => e.type === 'final' || ('utterance' in e && e.utterance === 0)), 'all of them about the one open utterance');
  const flushed = await t.flush();
  assert.deepEqual(flushed.map((e) => e.type), ['speech_end', 'final']);
  const final = flushed[1];
  assert.ok(final?.type === 'final');
  assert.equal(final.reason, 'flush');
  assert.equal(final.text, 'w0 w1 w2 w3 w4 w5 w6 w7', 'both stretches of speech in the one final');
  assert.deepEqual(await t.end(), [], 'nothing left for end');
});

void test('manual commit: without a flush, end() finalises the open utterance; the length cap still forces a final', async () => {
  const ended = make({ endpointer: { manualCommit: true }, partials: { enabled: false } });
  const before = await feed(ended.t, audio([0.5, true], [2, false], [0.5, true], [1, false]));
  assert.equal(before.filter((e) => e.type === 'final').length, 0, 'no final before end()');
  const last = await ended.t.end();
  assert.deepEqual(last.map((e) => e.type), ['speech_end', 'final']);
  assert.equal(last[1]?.type === 'final' && last[1].reason, 'end');

  const capped = make({ endpointer: { manualCommit: true, maxUtteranceMs: 3000 }, partials: { enabled: false } });
  const events = await feed(capped.t, audio([1, true], [4, false]));
  const finals = events.filter((e) => e.type === 'final');
  assert.equal(finals.length, 1);
  assert.equal(finals[0]?.type === 'final' && finals[0].reason, 'max_duration');
});
