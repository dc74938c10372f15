import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpError } from '../../errors.js';
import type { UpgradeRequest } from '../dialect.js';
import { nativeDialect, parseNativeOpen, renderNative } from './native.js';

const req = (query: string, headers: Record<string, string> = {}): UpgradeRequest => ({ query: new URLSearchParams(query), headers, protocols: [] });

void test('defaults: pcm_s16le 16 kHz mono, no options, no credential', () => {
  assert.deepEqual(parseNativeOpen(req('')), { credential: { kind: 'none' }, format: { encoding: 'pcm_s16le', sampleRate: 16000, channels: 1 }, options: {} });
});

void test('every option from the query; the key from Authorization wins over a token', () => {
  const open = parseNativeOpen(req(
    'model=moonshine-tiny&language=de&encoding=pcm_s16le&sample_rate=44100&commit_strategy=manual&partials=false&vad_threshold=0.6&min_speech_ms=200&min_silence_ms=400&speech_pad_ms=50&max_utterance_ms=20000&retention=false&enhance_on_end=true&enhance_model=whisper-base&token=rtt_x',
    { authorization: 'Bearer dk_1' },
  ));
  assert.deepEqual(open.credential, { kind: 'api_key', key: 'dk_1' });
  assert.deepEqual(open.format, { encoding: 'pcm_s16le', sampleRate: 44100, channels: 1 });
  assert.deepEqual(open.options, {
    model: 'moonshine-tiny', language: 'de', commitStrategy: 'manual', partials: false, vadThreshold: 0.6, minSpeechMs: 200, minSilenceMs: 400,
    speechPadMs: 50, maxUtteranceMs: 20000, retention: false, enhanceOnEnd: true, enhanceModel: 'whisper-base',
  });
  assert.deepEqual(parseNativeOpen(req('token=rtt_x')).credential, { kind: 'token', token: 'rtt_x' });
  assert.equal(parseNativeOpen(req('language=auto')).options.language, undefined);
});

void test('G.711 defaults to 8 kHz; resume with its offset', () => {
  assert.deepEqual(parseNativeOpen(req('encoding=mulaw')).format, { encoding: 'mulaw', sampleRate: 8000, channels: 1 });
  const r = parseNativeOpen(req('resume=sess_01ABC&resume_offset=48000'));
  assert.equal(r.resumeSessionId, 'sess_01ABC');
  assert.equal(r.resumeOffsetSamples, 48000);
});

void test('bad options are a 400 naming the parameter', () => {
  for (const [q, what] of [
    ['encoding=flac', /encoding/], ['sample_rate=7999', /sample_rate/], ['sample_rate=abc', /sample_rate/], ['encoding=alaw&sample_rate=16000', /8000/],
    ['commit_strategy=sometimes', /commit_strategy/], ['partials=maybe', /partials/], ['vad_threshold=2', /vad_threshold/], ['model=a%20b', /model/],
    ['resume_offset=5', /resume/], ['min_silence_ms=1.5', /min_silence_ms/],
  ] as const) {
    assert.throws(() => parseNativeOpen(req(q)), (e: unknown) => e instanceof HttpError && e.status === 400 && what.test(e.message), q);
  }
});

void test('client messages: binary is audio, JSON controls, bad JSON and unknown types are fatal', () => {
  const on = (data: string | Buffer, bin = false) => nativeDialect.onClientMessage(null, Buffer.isBuffer(data) ? data : Buffer.from(data), bin);
  assert.deepEqual(on(Buffer.from([1, 2]), true), [{ kind: 'audio', bytes: Buffer.from([1, 2]) }]);
  for (const t of ['flush', 'clear', 'end', 'keepalive'] as const) assert.deepEqual(on(JSON.stringify({ type: t })), [{ kind: t }]);
  assert.deepEqual(on(JSON.stringify({ type: 'config', partials: false, encoding: 'alaw', sample_rate: 8000 })), [
    { kind: 'configure', options: { partials: false }, format: { encoding: 'alaw', sampleRate: 8000, channels: 1 } },
  ]);
  assert.deepEqual(on('{"type":'), [{ kind: 'invalid', code: 'invalid_json', message: 'text messages must be JSON objects like {"type":"flush"}', fatal: true }]);
  const [unknown] = on('{"type":"dance"}');
  assert.equal(unknown?.kind === 'invalid' && unknown.code, 'unknown_message_type');
  const [badConfig] = on('{"type":"config","commit_strategy":"x"}');
  assert.equal(badConfig?.kind === 'invalid' && badConfig.code, 'invalid_config');
  const [arr] = on('[1]');
  assert.equal(arr?.kind === 'invalid' && arr.fatal, true);
});

void test('rendering: finals with words and flushed, errors with their close code, session.end with totals', () => {
  const final = { utterance: 2, text: 'hello world', start: 1, end: 2, reason: 'flush' as const, words: [{ text: 'hello', start: 1, end: 1.5, confidence: 0.9 }, { text: 'world', start: 1.5, end: 2 }] };
  assert.deepEqual(JSON.parse(renderNative({ type: 'transcript.final', final, flushed: true })[0] ?? ''), {
    type: 'transcript.final', utterance: 2, text: 'hello world', start: 1, end: 2, reason: 'flush', flushed: true,
    words: [{ word: 'hello', start: 1, end: 1.5, confidence: 0.9 }, { word: 'world', start: 1.5, end: 2 }],
  });
  assert.deepEqual(JSON.parse(renderNative({ type: 'error', code: 'idle_timeout', message: 'no message for 30 s', closeCode: 4408 })[0] ?? ''), {
    type: 'error', code: 'idle_timeout', message: 'no message for 30 s', close_code: 4408,
  });
  assert.deepEqual(JSON.parse(renderNative({ type: 'session.end', sessionId: 's', audioSeconds: 2, text: 'hello world', finals: [final] })[0] ?? ''), {
    type: 'session.end', session_id: 's', total_audio_seconds: 2, text: 'hello world', utterances: [{ utterance: 2, text: 'hello world', start: 1, end: 2 }],
  });
  const begin = JSON.parse(renderNative({ type: 'session.begin', sessionId: 's', model: 'm', format: { encoding: 'mulaw', sampleRate: 8000 }, options: { commitStrategy: 'vad', partials: true } })[0] ?? '') as Record<string, unknown>;
  assert.equal(begin['session_id'], 's');
  assert.equal(begin['encoding'], 'mulaw');
  assert.equal(begin['sample_rate'], 8000);
});

void test('retention: true/false as before, or how long the session\'s data is kept (the job grammar); none keeps nothing', () => {
  assert.deepEqual(parseNativeOpen(req('retention=true')).options, { retention: true });
  assert.deepEqual(parseNativeOpen(req('retention=30d')).options, { retention: true, retentionSeconds: 30 * 86_400 });
  assert.deepEqual(parseNativeOpen(req('retention=90m')).options, { retention: true, retentionSeconds: 5400 });
  assert.deepEqual(parseNativeOpen(req('retention=keep')).options, { retention: true, retentionSeconds: -1 });
  assert.deepEqual(parseNativeOpen(req('retention=none')).options, { retention: false });
  assert.throws(() => parseNativeOpen(req('retention=forever')), /retention: retention "forever" must be keep, none, or a duration/);
});
