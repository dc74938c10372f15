import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { loadConfig } from '../../../core/config.js';
import { MOONSHINE_TINY } from '../../models/catalogue.js';
import { modelDir } from '../../models/verify.js';
import { MoonshineTokenizer } from './moonshine-tokenizer.js';

function bin(pieces: string[]): Buffer {
  return Buffer.concat(pieces.map((p) => {
    const b = Buffer.from(p, 'utf8');
    return Buffer.concat([Buffer.of(b.length), b]);
  }));
}

void test('synthetic vocabulary: word starts, byte fallback and specials', () => {
  const bytes = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i));
  const tok = MoonshineTokenizer.parse(Buffer.concat([bin(['<unk>', '<s>', '</s>']), Buffer.concat(bytes.map((_, i) => Buffer.of(1, i))), bin(['\u2581hello', '\u2581wor', 'ld', '<<ST_1>>'])]));
  assert.equal(tok.vocabularySize, 263);
  // "é" = C3 A9 via byte fallback (ids 3 + byte).
  assert.equal(tok.decode([259, 260, 261, 3 + 0xc3, 3 + 0xa9, 262, 2]), 'hello world\u00e9');
  assert.equal(tok.startsWord(260), true);
  assert.equal(tok.startsWord(261), false);
  assert.equal(tok.isSpecial(262), true);
});

void test('the shipped tokenizer.bin has 32,768 pieces and decodes known ids', async () => {
  const tok = MoonshineTokenizer.parse(await readFile(`${modelDir(MOONSHINE_TINY, loadConfig().homeDir)}/tokenizer.bin`));
  assert.equal(tok.vocabularySize, 32768);
  // id 278 is the piece "▁the" in the shipped file (inspected with a hex dump).
  assert.equal(tok.decode([278]), 'the');
  assert.equal(tok.isSpecial(32767), true);
});
