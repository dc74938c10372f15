import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { loadConfig } from '../../../core/config.js';
import { WHISPER_TINY_EN } from '../../models/catalogue.js';
import { modelDir } from '../../models/verify.js';
import { WhisperTokenizer } from './whisper-tokenizer.js';

async function tinyEn(): Promise<WhisperTokenizer> {
  return WhisperTokenizer.fromTokenizerJson(await readFile(`${modelDir(WHISPER_TINY_EN, loadConfig().homeDir)}/tokenizer.json`, 'utf8'), false);
}

void test('tiny.en tokenizer.json decodes the known token ids of the JFK sentence', async () => {
  const tok = await tinyEn();
  // Whisper tiny.en's tokens for " And so my fellow Americans, ask not" (openai-whisper, gpt2 ranks).
  assert.equal(tok.decode([843, 523, 616, 5891, 3399, 11, 1265, 407]), ' And so my fellow Americans, ask not');
  assert.equal(tok.startsWord(843), true);
  assert.equal(tok.startsWord(11), false);
});

void test('English-only specials: eot 50256, sot 50257, notimestamps 50362, first timestamp 50363; prompt [sot]', async () => {
  const tok = await tinyEn();
  // tiny.en names 50361 <|nocaptions|> (the older name of <|nospeech|>).
  assert.deepEqual([tok.tokens.eot, tok.tokens.sot, tok.tokens.noTimestamps, tok.tokens.timestampBegin, tok.tokens.noSpeech], [50256, 50257, 50362, 50363, 50361]);
  assert.equal(tok.multilingual, false);
  assert.deepEqual(tok.prompt(undefined), [50257]);
  assert.equal(tok.decode([50257, 843, 50363, 523, 50256]), ' And so');
  assert.equal(tok.timestampSeconds(50363 + 150), 3);
});

void test('multilingual layout from added tokens: ids shift by one, 99 languages, prompt [sot, lang, transcribe]', () => {
  const added = ['<|endoftext|>', '<|startoftranscript|>', '<|en|>', '<|de|>', '<|translate|>', '<|transcribe|>', '<|startoflm|>', '<|startofprev|>', '<|nospeech|>', '<|notimestamps|>'];
  const json = JSON.stringify({ model: { vocab: { '\u0120Hallo': 0, '!': 1 } }, added_tokens: added.map((content, i) => ({ id: 50257 + i, content })) });
  const tok = WhisperTokenizer.fromTokenizerJson(json, true);
  assert.equal(tok.multilingual, true);
  assert.deepEqual(tok.prompt('de'), [50258, 50260, 50262]);
  assert.equal(tok.tokens.timestampBegin, 50267);
  assert.equal(tok.decode([0, 1]), ' Hallo!'); // \u0120 is the byte-level space
});
