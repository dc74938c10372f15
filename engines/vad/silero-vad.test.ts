import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../core/config.js';
import { synthesize } from '../../harness/speech-fixtures.js';
import { SileroVad, VAD_FRAME_SAMPLES, VAD_FRAME_SECONDS, VAD_SAMPLE_RATE } from './silero-vad.js';
import { Endpointer, type SpeechRegion } from './speech-regions.js';

let vad: SileroVad;
before(async () => {
  vad = await SileroVad.load(loadConfig().homeDir);
});
after(async () => {
  await vad.close();
});

/** First and last sample louder than -40 dBFS: where the synthesised speech really is. */
function loudExtent(audio: Float32Array): SpeechRegion {
  let first = -1;
  let last = -1;
  for (let i = 0; i < audio.length; i++) {
    if (Math.abs(audio[i] ?? 0) > 0.01) {
      if (first < 0) first = i;
      last = i;
    }
  }
  return { start: first / VAD_SAMPLE_RATE, end: last / VAD_SAMPLE_RATE };
}

void test('finds one region where espeak-ng speech sits between 1.5 s and 2 s of silence', async () => {
  const audio = await synthesize('the committee will meet again next week to discuss the budget', { padBefore: 1.5, padAfter: 2 });
  const truth = loudExtent(audio);
  const regions = await vad.detectSpeech(audio);
  assert.equal(regions.length, 1, JSON.stringify(regions));
  const r = regions[0];
  assert.ok(r);
  assert.ok(Math.abs(r.start - truth.start) < 0.25, `start ${r.start} vs speech ${truth.start}`);
  assert.ok(Math.abs(r.end - truth.end) < 0.35, `end ${r.end} vs speech ${truth.end}`);
});

void test('two sentences 2 s apart give two regions with the gap between them', async () => {
  const a = await synthesize('good morning everyone', { padBefore: 0.5 });
  const b = await synthesize('let us begin the meeting', { padBefore: 2, padAfter: 0.5 });
  const audio = new Float32Array(a.length + b.length);
  audio.set(a);
  audio.set(b, a.length);
  const regions = await vad.detectSpeech(audio);
  assert.equal(regions.length, 2, JSON.stringify(regions));
  const gapStart = loudExtent(a).end;
  const gapEnd = a.length / VAD_SAMPLE_RATE + loudExtent(b).start;
  assert.ok((regions[0]?.end ?? 99) < gapStart + 0.4 && (regions[1]?.start ?? 0) > gapEnd - 0.4, JSON.stringify({ regions, gapStart, gapEnd }));
});

void test('silence and low noise give no speech', async () => {
  const audio = new Float32Array(VAD_SAMPLE_RATE * 3);
  let seed = 7;
  for (let i = 0; i < audio.length; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    audio[i] = ((seed / 2 ** 31) - 0.5) * 0.002;
  }
  assert.deepEqual(await vad.detectSpeech(audio), []);
});

void test('the streaming frame API with the end-pointer finds the same speech as the batch API', async () => {
  const audio = await synthesize('streaming end pointing works frame by frame', { padBefore: 1, padAfter: 1.5 });
  const batch = await vad.detectSpeech(audio, { speechPadMs: 0 });
  const stream = vad.createStream();
  const endpointer = new Endpointer(VAD_FRAME_SECONDS);
  const events: string[] = [];
  const frame = new Float32Array(VAD_FRAME_SAMPLES);
  for (let i = 0; i + VAD_FRAME_SAMPLES <= audio.length; i += VAD_FRAME_SAMPLES) {
    frame.set(audio.subarray(i, i + VAD_FRAME_SAMPLES));
    const e = endpointer.push(await stream.process(frame));
    if (e?.type === 'speech-start') events.push(`start ${e.time.toFixed(3)}`);
    if (e?.type === 'speech-end') events.push(`end ${e.region.end.toFixed(3)}`);
  }
  assert.deepEqual(events, [`start ${batch[0]?.start.toFixed(3)}`, `end ${batch[0]?.end.toFixed(3)}`]);
});

void test('cancellation stops detection', async () => {
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(vad.detectSpeech(new Float32Array(VAD_SAMPLE_RATE * 10), {}, ac.signal), { code: 'DALSTON_ERR_CANCELLED' });
});
