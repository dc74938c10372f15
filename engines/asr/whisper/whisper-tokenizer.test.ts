import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WhisperTokenizer } from './whisper-tokenizer.js';

const tok = new WhisperTokenizer();

void test('GPT-2 ranks give the known tiny.en token ids of the JFK sentence', () => {
  const ids = tok.encode(' And so my fellow Americans, ask not what your country can do for you.');
  assert.deepEqual(ids.slice(0, 8), [843, 523, 616, 5891, 3399, 11, 1265, 407]);
  assert.equal(tok.decode(ids), ' And so my fellow Americans, ask not what your country can do for you.');
});

void test('specials and timestamps never reach the text; timestamps are 20 ms steps from 50363', () => {
  assert.equal(tok.decode([50257, 843, 50363, 523, 50256]), ' And so');
  assert.equal(tok.timestampSeconds(50363 + 150), 3);
  assert.equal(tok.isTimestamp(50362), false);
  assert.equal(tok.startsWord(843), true);
  assert.equal(tok.startsWord(11), false); // ","
});
