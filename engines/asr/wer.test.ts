import { test } from 'node:test';
import assert from 'node:assert/strict';
import { corpusWer, normalizeTranscript, numberToWords, wordErrors } from './wer.js';
import { scoreWithSclite } from './sclite.js';

void test('normalisation: case, punctuation, hyphens, spoken abbreviations, numbers', () => {
  assert.equal(normalizeTranscript('And Mr. John Dashwood, cold-hearted & ill-disposed!'), 'and mister john dashwood cold hearted and ill disposed');
  assert.equal(normalizeTranscript("Eight of spades; it's 10 o'clock, 1,200 people, 50%."), "eight of spades it's ten o'clock one thousand two hundred people fifty percent");
  assert.equal(normalizeTranscript("  'quoted'  \u201cwords\u201d "), 'quoted words');
  assert.equal(numberToWords(342), 'three hundred forty two');
});

void test('counts substitutions, deletions and insertions', () => {
  const r = wordErrors('he was not an ill disposed young man', 'He was not an ill-sposed young man, sir');
  assert.deepEqual({ s: r.substitutions, d: r.deletions, i: r.insertions, n: r.refWords }, { s: 1, d: 0, i: 1, n: 8 }); // sposed→disposed, +sir
  assert.equal(r.wer, 2 / 8);
  assert.equal(wordErrors('', '').wer, 0);
  assert.equal(wordErrors('a b', '').deletions, 2);
  const c = corpusWer([wordErrors('a b c d', 'a b c d'), wordErrors('a b', 'x b')]);
  assert.equal(c.wer, 1 / 6);
});

void test('agrees with sctk sclite on the same utterances', async () => {
  const utts = [
    { id: 'one', reference: 'had he married a more a amiable woman', hypothesis: 'Had he married a more amiable woman,' },
    { id: 'two', reference: 'eight of spades four of clubs', hypothesis: 'Eight of spades, four of cloves, seven.' },
    { id: 'three', reference: 'go forward ten meters', hypothesis: '' },
  ];
  const ours = corpusWer(utts.map((u) => wordErrors(u.reference, u.hypothesis)));
  const sclite = await scoreWithSclite(utts);
  assert.equal(sclite.words, ours.refWords);
  assert.equal(sclite.wer, Math.round(ours.wer * 1000) / 10);
});
