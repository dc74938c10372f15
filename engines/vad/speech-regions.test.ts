import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Endpointer, speechRegions } from './speech-regions.js';

const F = 0.032;
function probs(pattern: string): number[] {
  // '#' = speech frame (0.9), '.' = quiet (0.05), '~' = in-between (0.42: above neg threshold, below start)
  return [...pattern].map((c) => (c === '#' ? 0.9 : c === '~' ? 0.42 : 0.05));
}

void test('a region needs the start threshold and ends only after min silence', () => {
  const p = probs(`${'.'.repeat(20)}${'#'.repeat(40)}${'.'.repeat(30)}`);
  const r = speechRegions(p, F, p.length * F, { speechPadMs: 0, minSilenceMs: 300 });
  assert.equal(r.length, 1);
  assert.ok(Math.abs((r[0]?.start ?? -1) - 20 * F) < 1e-9);
  assert.ok(Math.abs((r[0]?.end ?? -1) - 60 * F) < 1e-9);
});

void test('hysteresis: in-between probabilities keep speech going but do not start it', () => {
  const p = probs(`${'~'.repeat(30)}${'#'.repeat(10)}${'~'.repeat(30)}${'.'.repeat(20)}`);
  const r = speechRegions(p, F, p.length * F, { speechPadMs: 0 });
  assert.equal(r.length, 1);
  assert.ok(Math.abs((r[0]?.start ?? 0) - 30 * F) < 1e-9, 'does not start on ~');
  assert.ok(Math.abs((r[0]?.end ?? 0) - 70 * F) < 1e-9, 'continues through ~');
});

void test('short pauses do not split, long pauses do; short blips are dropped', () => {
  const p = probs(`${'#'.repeat(30)}${'.'.repeat(5)}${'#'.repeat(30)}${'.'.repeat(40)}${'#'.repeat(3)}${'.'.repeat(40)}${'#'.repeat(20)}`);
  const r = speechRegions(p, F, p.length * F, { speechPadMs: 0, minSilenceMs: 300, minSpeechMs: 250 });
  assert.equal(r.length, 2);
  assert.ok(Math.abs((r[0]?.end ?? 0) - 65 * F) < 1e-9);
});

void test('padding widens regions, splits a narrow gap in the middle and clips to the audio', () => {
  const p = probs(`${'#'.repeat(20)}${'.'.repeat(12)}${'#'.repeat(20)}`);
  const r = speechRegions(p, F, p.length * F, { speechPadMs: 300, minSilenceMs: 300 });
  assert.equal(r.length, 2);
  assert.equal(r[0]?.start, 0);
  assert.ok(Math.abs((r[0]?.end ?? 0) - (r[1]?.start ?? 1)) < 1e-9, 'gap split, no overlap');
  assert.ok(Math.abs((r[1]?.end ?? 0) - p.length * F) < 1e-9, 'clipped to duration');
});

void test('the streaming end-pointer emits start then end events', () => {
  const e = new Endpointer(F, { minSilenceMs: 100 });
  const events = probs(`..###....`).map((x) => e.push(x)).filter((x) => x !== undefined);
  assert.deepEqual(events.map((x) => x.type), ['speech-start', 'speech-end']);
  assert.equal(e.inSpeech, false);
});
