import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyTimestampRules, splitByTimestamps } from './timestamp-rules.js';
import type { WhisperSpecialTokens } from './whisper-tokenizer.js';

/** The English-only layout (tiny.en). */
const T: WhisperSpecialTokens = { eot: 50256, sot: 50257, translate: 50357, transcribe: 50358, noSpeech: 50361, noTimestamps: 50362, timestampBegin: 50363, languages: new Map() };
const VOCAB = 51864;
const ts = (seconds: number): number => T.timestampBegin + Math.round(seconds / 0.02);
const rules = { tokens: T, suppress: [7, 8], suppressAtBegin: [220, T.eot] };

function argmax(x: Float32Array): number {
  let b = 0;
  for (let i = 1; i < x.length; i++) if ((x[i] ?? -Infinity) > (x[b] ?? -Infinity)) b = i;
  return b;
}

void test('the first token is a timestamp no later than 1 s, never a suppressed or text token', () => {
  const logits = new Float32Array(VOCAB).fill(0);
  logits[100] = 50; // a text token the model likes
  logits[ts(3)] = 40; // a late timestamp
  logits[ts(0.4)] = 10;
  applyTimestampRules(logits, [], rules);
  assert.equal(argmax(logits), ts(0.4));
  assert.equal(logits[7], -Infinity);
  assert.equal(logits[T.noTimestamps], -Infinity);
});

void test('after text then a timestamp, only a timestamp (not earlier) or eot may follow; after a pair, text', () => {
  const a = new Float32Array(VOCAB).fill(0);
  a[100] = 50;
  applyTimestampRules(a, [ts(0), 100, 101, ts(1.5)], rules);
  assert.equal(a[100], -Infinity);
  assert.equal(a[ts(1.0)], -Infinity, 'no going back');
  assert.notEqual(a[ts(1.5)], -Infinity, 'the pair partner may repeat the time');
  const b = new Float32Array(VOCAB).fill(0);
  applyTimestampRules(b, [ts(0), 100, ts(1.5), ts(1.5)], rules);
  assert.equal(b[ts(2)], -Infinity, 'no timestamp right after a pair');
  assert.notEqual(b[100], -Infinity);
});

void test('when timestamps together outweigh the best text token, a timestamp is forced', () => {
  const logits = new Float32Array(VOCAB).fill(-30);
  logits[100] = 2;
  for (let i = 0; i < 40; i++) logits[ts(1 + i * 0.02)] = 1; // 40 x e^1 > e^2
  applyTimestampRules(logits, [ts(0), 100], rules);
  assert.equal(logits[100], -Infinity);
});

void test('timestamped tokens split into timed pieces; an unclosed piece ends at the window end', () => {
  const pieces = splitByTimestamps([ts(0), 10, 11, ts(2.5), ts(2.5), 12, ts(4), ts(4.2), 13], 6, T);
  assert.deepEqual(pieces, [
    { start: 0, end: 2.5, tokens: [10, 11] },
    { start: 2.5, end: 4, tokens: [12] },
    { start: 4.2, end: 6, tokens: [13] },
  ]);
});
