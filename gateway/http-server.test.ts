import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCOPES } from '../streams/index.js';
import { createApiKeyAuthenticator, keyIdOf } from './auth.js';
import { HttpError } from './errors.js';
import { Router, type RouteSpec } from './http-server.js';
import { newJobId, newRequestId, sanitizeRequestId, ulid } from './ids.js';
import { parseSubmitFields, parseSubtitleOptions } from './transcriptions.js';

const noop = async () => undefined;
const route = (method: RouteSpec['method'], path: string): RouteSpec => ({ method, path, auth: 'none', handler: noop });

void test('router: templates match with decoded params, literals beat parameters, 405 lists allowed methods, 404 otherwise', () => {
  const r = new Router()
    .add(route('POST', '/v1/audio/transcriptions'))
    .add(route('GET', '/v1/audio/transcriptions/:id'))
    .add(route('GET', '/v1/audio/transcriptions/stats'))
    .add(route('GET', '/v1/audio/transcriptions/:id/tasks/:task_id/artifacts'))
    .add(route('POST', '/v1/audio/transcriptions/:id/cancel'));

  const hit = r.match('GET', '/v1/audio/transcriptions/job%20a/tasks/t%2F1/artifacts');
  assert.equal(hit.kind, 'found');
  if (hit.kind === 'found') {
    assert.equal(hit.route.path, '/v1/audio/transcriptions/:id/tasks/:task_id/artifacts');
    assert.deepEqual(hit.params, { id: 'job a', task_id: 't/1' });
  }
  const stats = r.match('GET', '/v1/audio/transcriptions/stats');
  assert.equal(stats.kind === 'found' && stats.route.path, '/v1/audio/transcriptions/stats');
  const trailing = r.match('GET', '/v1/audio/transcriptions/job_1/');
  assert.equal(trailing.kind === 'found' && trailing.params['id'], 'job_1');

  assert.deepEqual(r.match('GET', '/v1/audio/transcriptions'), { kind: 'method_not_allowed', template: '/v1/audio/transcriptions', allow: ['POST'] });
  assert.deepEqual(r.match('DELETE', '/v1/audio/transcriptions/job_1/cancel'), { kind: 'method_not_allowed', template: '/v1/audio/transcriptions/:id/cancel', allow: ['POST'] });
  assert.deepEqual(r.match('GET', '/v1/audio'), { kind: 'not_found' });
  assert.deepEqual(r.match('GET', '/v1/audio/transcriptions/a/b'), { kind: 'not_found' });
  assert.throws(() => r.match('GET', '/v1/audio/transcriptions/%E0%A4%A'), (e: unknown) => e instanceof HttpError && e.status === 400);
  assert.throws(() => r.add(route('GET', '/v1/audio/transcriptions/:id')), /registered twice/);
});

void test('request and job ids: sanitising keeps [A-Za-z0-9._-] up to 128 chars; generated ids have their prefixes', () => {
  assert.equal(sanitizeRequestId('abc-DEF_1.2'), 'abc-DEF_1.2');
  assert.equal(sanitizeRequestId('a b\r\nc'), 'abc');
  assert.equal(sanitizeRequestId('é€'), undefined);
  assert.equal(sanitizeRequestId(undefined), undefined);
  assert.equal(sanitizeRequestId(['first', 'second']), 'first');
  assert.equal(sanitizeRequestId('x'.repeat(500))?.length, 128);
  assert.match(newRequestId(), /^req_[0-9a-z]{16}$/);
  assert.match(newJobId(), /^job_[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.ok(ulid(1000) < ulid(2000), 'ULIDs sort by time');
  assert.equal(ulid(0).slice(0, 10), '0000000000');
});

void test('auth: only the configured key passes; key id is a stable short hash, not the key', () => {
  const auth = createApiKeyAuthenticator('dk_secret');
  assert.deepEqual(auth.authenticate('Bearer dk_secret'), { tenantId: 'default', keyId: keyIdOf('dk_secret'), scopes: [...SCOPES], operator: true });
  assert.match(keyIdOf('dk_secret'), /^key_[0-9a-f]{12}$/);
  assert.equal(keyIdOf('dk_secret').includes('secret'), false);
  for (const h of [undefined, '', 'Bearer', 'Bearer dk_secre', 'Bearer dk_secret2', 'Token dk_secret', 'Bearer dk_secret extra']) {
    assert.throws(() => auth.authenticate(h), (e: unknown) => e instanceof HttpError && e.status === 401 && e.apiCode === 'unauthorized', String(h));
  }
});

void test('submit fields: language normalised, model/granularity/response_format checked, OpenAI names switch mode', () => {
  assert.deepEqual(parseSubmitFields([['language', ' EN ']]), { params: { api: 'native', language: 'en' }, responseFormat: undefined, openAiMode: false });
  assert.deepEqual(parseSubmitFields([['language', 'auto'], ['model', 'pocketsphinx-en-us'], ['timestamps_granularity', 'segment'], ['response_format', 'json']]), {
    params: { api: 'native', language: 'auto', model: 'pocketsphinx-en-us', timestampsGranularity: 'segment' }, responseFormat: 'json', openAiMode: false,
  });
  const openai = parseSubmitFields([['model', 'gpt-4o-mini-transcribe'], ['response_format', 'vtt']]);
  assert.equal(openai.openAiMode, true);
  assert.equal(openai.params.api, 'openai');
  assert.equal(openai.responseFormat, 'vtt');
  assert.deepEqual(parseSubmitFields([['language', '']]).params, { api: 'native' }, 'an empty value means unset');
  assert.throws(() => parseSubmitFields([['language', 'en'], ['language', 'de']]), /more than once/);
});

void test('OpenAI fields: accepted with an OpenAI model only; word timestamps need verbose_json; stream=true with json or text', () => {
  const words = parseSubmitFields([
    ['model', 'whisper-1'], ['response_format', 'verbose_json'], ['timestamp_granularities[]', 'word'], ['timestamp_granularities[]', 'segment'],
    ['prompt', 'Dalston'], ['temperature', '0.2'],
  ]);
  assert.deepEqual(words.openAi, { responseFormat: 'verbose_json', words: true });
  assert.deepEqual(parseSubmitFields([['model', 'whisper-1']]).openAi, { responseFormat: 'json', words: false });
  assert.throws(() => parseSubmitFields([['prompt', 'x']]), /field "prompt" needs an OpenAI model/);
  assert.throws(() => parseSubmitFields([['model', 'whisper-1'], ['timestamp_granularities[]', 'word']]), /needs response_format verbose_json/);
  assert.throws(() => parseSubmitFields([['model', 'whisper-1'], ['response_format', 'verbose_json'], ['timestamp_granularities[]', 'char']]), /must be word or segment/);
  assert.throws(() => parseSubmitFields([['model', 'whisper-1'], ['temperature', '3']]), /temperature "3" must be a number from 0 to 1/);
  assert.deepEqual(parseSubmitFields([['model', 'gpt-4o-transcribe'], ['stream', 'true']]).openAi, { responseFormat: 'json', words: false, stream: true });
  assert.throws(() => parseSubmitFields([['model', 'gpt-4o-transcribe'], ['stream', 'true'], ['response_format', 'srt']]), /response_format must be json or text/);
  assert.throws(() => parseSubmitFields([['model', 'gpt-4o-transcribe'], ['stream', 'yes']]), /must be true or false/);
  assert.equal(parseSubmitFields([['model', 'whisper-1'], ['stream', 'false']]).openAiMode, true);
});

void test('subtitle options: checked ranges, srt and vtt only', () => {
  assert.deepEqual(parseSubtitleOptions(new URLSearchParams('max_chars_per_line=32&max_lines_per_cue=1&max_cue_seconds=2.5'), 'srt'),
    { maxLineLength: 32, maxLines: 1, maxCueSeconds: 2.5 });
  assert.deepEqual(parseSubtitleOptions(new URLSearchParams(''), 'txt'), {});
  assert.throws(() => parseSubtitleOptions(new URLSearchParams('max_lines_per_cue=1'), 'txt'), /applies to srt and vtt exports only/);
  assert.throws(() => parseSubtitleOptions(new URLSearchParams('max_chars_per_line=5'), 'vtt'), /from 10 to 200/);
  assert.throws(() => parseSubtitleOptions(new URLSearchParams('max_lines_per_cue=1.5'), 'vtt'), /an integer/);
});
