/**
 * The helpers the vendor dialects share: strict query parsing, strict base64, credential classification, and the
 * model and language choices vendors' names map to.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpError } from '../../errors.js';
import { decodeBase64, parseJsonObject } from './client-json.js';
import { authorizationValue, credentialOf } from './credentials.js';
import { QueryOptions, readResume } from './query-options.js';
import { chooseLanguage, chooseModel } from './session-choices.js';

const q = (s: string) => new QueryOptions(new URLSearchParams(s), 'Test');
const is400 = (re: RegExp) => (e: unknown) => e instanceof HttpError && e.status === 400 && re.test(e.message);

test('QueryOptions refuses unknown names together and parses values strictly', () => {
  assert.throws(() => q('a=1&b=2&c=3').onlyKnown(new Set(['a'])), is400(/parameters: b, c/));
  assert.equal(q('n=0.5').num('n', 0, 1), 0.5);
  assert.equal(q('n=').num('n', 0, 1), undefined);
  for (const v of ['1e3', '0x10', 'abc', '2', ' ']) assert.throws(() => q(`n=${v}`).num('n', 0, 1), is400(/^n must be/), v);
  assert.throws(() => q('i=1.5').int('i', 0, 9), is400(/whole number/));
  assert.equal(q('b=TRUE').bool('b'), true);
  assert.throws(() => q('b=1').bool('b'), is400(/true or false/));
  assert.equal(q('e=x').oneOf('e', ['x', 'y'] as const), 'x');
  assert.throws(() => q('e=z').oneOf('e', ['x', 'y'] as const), is400(/one of x, y/));
  assert.deepEqual(readResume(q('resume=rt_1&resume_offset=32000')), { resumeSessionId: 'rt_1', resumeOffsetSamples: 32000 });
  assert.throws(() => readResume(q('resume_offset=1')), is400(/needs resume/));
});

test('base64 is decoded only when canonical; JSON must be an object', () => {
  assert.deepEqual(decodeBase64('AQID'), Buffer.from([1, 2, 3]));
  assert.deepEqual(decodeBase64(''), Buffer.alloc(0));
  for (const bad of ['AQI', 'AQ!D', 'AQID=', 'A===', ' AQID']) assert.equal(decodeBase64(bad), undefined, bad);
  assert.equal(parseJsonObject(Buffer.from('{"a":1}')).ok, true);
  for (const bad of ['[1]', 'null', '"x"', '{']) assert.equal(parseJsonObject(Buffer.from(bad)).ok, false, bad);
});

test('credentials: rtt_ values are single-use tokens, others API keys; Authorization schemes are matched case-insensitively', () => {
  assert.deepEqual(credentialOf('rtt_abc'), { kind: 'token', token: 'rtt_abc' });
  assert.deepEqual(credentialOf(' dk_1 '), { kind: 'api_key', key: 'dk_1' });
  assert.deepEqual(credentialOf(''), { kind: 'none' });
  assert.equal(authorizationValue('token k', ['token']), 'k');
  assert.equal(authorizationValue('Basic k', ['token', 'bearer']), undefined);
  assert.equal(authorizationValue('Bearer', ['bearer']), undefined);
});

test('models: catalogue ids pass, vendor names run the default, others are refused; languages reduce to ISO 639-1', () => {
  assert.deepEqual(chooseModel('whisper-base', () => false), { ok: true, model: 'whisper-base' });
  assert.deepEqual(chooseModel('nova-3', (m) => m.startsWith('nova')), { ok: true });
  assert.equal(chooseModel('mystery', () => false).ok, false);
  assert.deepEqual(chooseLanguage('eng'), { ok: true, language: 'en' });
  assert.deepEqual(chooseLanguage('pt_BR'), { ok: true, language: 'pt' });
  assert.deepEqual(chooseLanguage('multi'), { ok: true });
  assert.equal(chooseLanguage('qq').ok, false);
});
