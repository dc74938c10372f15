import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AudioFramer, FRAME_SAMPLES } from './audio-framer.js';

void test('samples become 100 ms s16le frames with contiguous offsets; drain sends the rest', () => {
  const f = new AudioFramer(0);
  const a = f.push(new Float32Array(1000).fill(0.5));
  assert.equal(a.length, 0);
  const b = f.push(new Float32Array(2500).fill(-1));
  assert.equal(b.length, 2);
  assert.equal(b[0]?.offset, 0);
  assert.equal(b[0]?.pcm.length, FRAME_SAMPLES * 2);
  assert.equal(b[0]?.pcm.readInt16LE(0), Math.round(0.5 * 32767));
  assert.equal(b[0]?.pcm.readInt16LE(1000 * 2), -32768);
  assert.equal(b[1]?.offset, FRAME_SAMPLES);
  const rest = f.drain();
  assert.equal(rest?.offset, 3200);
  assert.equal(rest?.pcm.length, 300 * 2);
  assert.equal(f.drain(), undefined);
  assert.equal(f.position, 3500);
});

void test('a resumed session frames from its resume offset; frames do not share memory', () => {
  const f = new AudioFramer(40_000);
  const [x] = f.push(new Float32Array(FRAME_SAMPLES).fill(0.25));
  const [y] = f.push(new Float32Array(FRAME_SAMPLES).fill(-0.25));
  assert.equal(x?.offset, 40_000);
  assert.equal(y?.offset, 40_000 + FRAME_SAMPLES);
  assert.ok((x?.pcm.readInt16LE(0) ?? 0) > 0);
});
