/**
 * ElevenLabs dialect: query → session options (and 400s), input_audio_chunk → audio/flush, every session event →
 * the messages the ElevenLabs SDK parses, and random input never throws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { HttpError } from '../../errors.js';
import type { SessionEvent, UpgradeRequest } from '../dialect.js';
import { elevenLabsDialect as el } from './elevenlabs.js';

const req = (query: string, headers: Record<string, string> = {}, protocols: string[] = []): UpgradeRequest => ({ query: new URLSearchParams(query), headers, protocols });
const json = (o: unknown) => Buffer.from(JSON.stringify(o));
const parse = (frames: (string | Buffer)[]) => frames.map((f) => JSON.parse(String(f)) as Record<string, unknown>);
const final = (over: Partial<{ utterance: number; text: string; reason: 'pause' | 'flush' | 'end' | 'max_length' }> = {}): SessionEvent => ({
  type: 'transcript.final', flushed: over.reason === 'flush',
  final: { utterance: over.utterance ?? 0, text: over.text ?? 'hello world', start: 0.5, end: 1.5, reason: over.reason ?? 'pause', words: [{ text: 'hello', start: 0.5, end: 0.9, confidence: 0.9 }, { text: 'world', start: 1, end: 1.5 }] },
});

test('parseOpen maps the documented query to session options and the key header to a credential', () => {
  const open = el.parseOpen(req('model_id=scribe_v2_realtime&audio_format=ulaw_8000&language_code=eng&commit_strategy=vad&vad_silence_threshold_secs=0.8&vad_threshold=0.4&min_speech_duration_ms=100&min_silence_duration_ms=120&include_timestamps=true&enable_logging=false&keyterms=foo', { 'xi-api-key': 'k1' }));
  assert.deepEqual(open.credential, { kind: 'api_key', key: 'k1' });
  assert.deepEqual(open.format, { encoding: 'mulaw', sampleRate: 8000 });
  assert.deepEqual(open.options, { commitStrategy: 'vad', language: 'en', vadThreshold: 0.4, minSpeechMs: 100, minSilenceMs: 800, retention: false });
  assert.equal(open.settings?.['include_timestamps'], true);
});

test('defaults follow ElevenLabs: pcm_16000 and manual commits; a token in the query is a token credential', () => {
  const open = el.parseOpen(req('model_id=scribe_v2_realtime&token=rtt_abc'));
  assert.deepEqual(open.format, { encoding: 'pcm_s16le', sampleRate: 16000 });
  assert.equal(open.options.commitStrategy, 'manual');
  assert.deepEqual(open.credential, { kind: 'token', token: 'rtt_abc' });
  assert.deepEqual(el.parseOpen(req('model_id=scribe_v1')).credential, { kind: 'none' });
  assert.equal(el.parseOpen(req('model_id=whisper-base')).options.model, 'whisper-base');
  const resumed = el.parseOpen(req('model_id=scribe_v2_realtime&resume=rt_1&resume_offset=16000'));
  assert.equal(resumed.resumeSessionId, 'rt_1');
  assert.equal(resumed.resumeOffsetSamples, 16000);
});

test('bad or unknown query parameters refuse the upgrade with a 400 naming them', () => {
  for (const [q, re] of [
    ['model_id=scribe_v2_realtime&sample_rte=1', /sample_rte/],
    ['model_id=scribe_v2_realtime&audio_format=mp3', /audio_format/],
    ['model_id=scribe_v2_realtime&vad_silence_threshold_secs=9', /vad_silence_threshold_secs/],
    ['model_id=scribe_v2_realtime&commit_strategy=auto', /commit_strategy/],
    ['model_id=scribe_v2_realtime&include_timestamps=yes', /include_timestamps/],
    ['model_id=gpt-9', /model "gpt-9"/],
    ['model_id=scribe_v2_realtime&language_code=xx-klingon', /language/],
  ] as const) {
    assert.throws(() => el.parseOpen(req(q)), (e: unknown) => e instanceof HttpError && e.status === 400 && re.test(e.message), q);
  }
});

test('input_audio_chunk gives audio, commit:true a flush after it; bad chunks are non-fatal input_error', () => {
  const s = el.createState(el.parseOpen(req('model_id=scribe_v2_realtime')));
  const pcm = Buffer.from([1, 0, 2, 0]);
  assert.deepEqual(el.onClientMessage(s, json({ message_type: 'input_audio_chunk', audio_base_64: pcm.toString('base64'), commit: false, sample_rate: 16000 }), false), [{ kind: 'audio', bytes: pcm }]);
  assert.deepEqual(el.onClientMessage(s, json({ message_type: 'input_audio_chunk', audio_base_64: pcm.toString('base64'), commit: true }), false), [{ kind: 'audio', bytes: pcm }, { kind: 'flush' }]);
  assert.deepEqual(el.onClientMessage(s, json({ message_type: 'input_audio_chunk', audio_base_64: '', commit: true, sample_rate: 16000 }), false), [{ kind: 'flush' }]);
  for (const bad of [
    Buffer.from('{nope'), json([1]), json({ message_type: 'hello' }), json({ message_type: 'input_audio_chunk', audio_base_64: '@@@' }),
    json({ message_type: 'input_audio_chunk', audio_base_64: 'AAAA', sample_rate: 44100 }), json({ message_type: 'input_audio_chunk', audio_base_64: 'AAAA', commit: 'yes' }),
  ]) {
    const [c] = el.onClientMessage(s, bad, false);
    assert.equal(c?.kind, 'invalid');
    assert.ok(c?.kind === 'invalid' && c.code === 'input_error' && !c.fatal);
  }
  assert.equal(el.onClientMessage(s, Buffer.from([1, 2]), true)[0]?.kind, 'invalid');
});

test('session events render as ElevenLabs messages: session_started, partial, committed (+ timestamps), errors', () => {
  const s = el.createState(el.parseOpen(req('model_id=scribe_v2_realtime&include_timestamps=true&language_code=en&commit_strategy=vad')));
  const [started] = parse(el.render(s, { type: 'session.begin', sessionId: 'rt_1', model: 'moonshine-tiny', format: { encoding: 'pcm_s16le', sampleRate: 16000 }, options: { commitStrategy: 'vad' } }));
  assert.equal(started?.['message_type'], 'session_started');
  assert.equal(started?.['session_id'], 'rt_1');
  assert.deepEqual((started?.['config'] as Record<string, unknown>)['commit_strategy'], 'vad');
  assert.equal((started?.['config'] as Record<string, unknown>)['model_id'], 'scribe_v2_realtime');
  assert.deepEqual(parse(el.render(s, { type: 'transcript.partial', utterance: 0, text: 'hel', start: 0.5, end: 0.8 })), [{ message_type: 'partial_transcript', text: 'hel' }]);
  const committed = parse(el.render(s, final()));
  assert.deepEqual(committed[0], { message_type: 'committed_transcript', text: 'hello world' });
  assert.equal(committed[1]?.['message_type'], 'committed_transcript_with_timestamps');
  const words = committed[1]?.['words'] as Record<string, unknown>[];
  assert.deepEqual(words.map((w) => w['type']), ['word', 'spacing', 'word']);
  assert.deepEqual(words.map((w) => w['text']), ['hello', ' ', 'world']);
  assert.equal(words[0]?.['start'], 0.5);
  for (const e of [{ type: 'vad.speech_start', utterance: 0, start: 0 }, { type: 'buffer.cleared' }, { type: 'session.end', sessionId: 'rt_1', audioSeconds: 3, text: '', finals: [] }, { type: 'warning', code: 'lag', message: 'behind' }] as SessionEvent[]) {
    assert.deepEqual(el.render(s, e), []);
  }
  assert.deepEqual(parse(el.render(s, { type: 'warning', code: 'input_error', message: 'bad' })), [{ message_type: 'input_error', error: 'bad' }]);
  assert.deepEqual(parse(el.render(s, { type: 'error', code: 'over_capacity', message: 'full', closeCode: 4503 })), [{ message_type: 'resource_exhausted', error: 'full' }]);
  assert.deepEqual(parse(el.render(s, { type: 'error', code: 'max_length', message: 'too long', closeCode: 4413 })), [{ message_type: 'session_time_limit_exceeded', error: 'too long' }]);
  assert.deepEqual(parse(el.render(s, { type: 'error', code: 'x', message: 'boom', closeCode: 1011 })), [{ message_type: 'transcriber_error', error: 'boom' }]);
  const plain = el.createState(el.parseOpen(req('model_id=scribe_v2_realtime')));
  assert.equal(el.render(plain, final()).length, 1, 'no timestamped message unless include_timestamps=true');
});

test('fuzz: random bytes and random JSON never throw and give only known commands', () => {
  const s = el.createState(el.parseOpen(req('model_id=scribe_v2_realtime')));
  const kinds = new Set(['audio', 'flush', 'invalid']);
  for (let i = 0; i < 2000; i++) {
    const bytes = randomBytes(i % 64);
    const candidates: Buffer[] = [bytes, json({ message_type: 'input_audio_chunk', audio_base_64: bytes.toString('base64').slice(0, i % 40), commit: i % 3 === 0, sample_rate: i % 5 === 0 ? 8000 : 16000 }), json({ message_type: bytes.toString('latin1') })];
    for (const c of candidates) for (const cmd of el.onClientMessage(s, c, i % 7 === 0)) assert.ok(kinds.has(cmd.kind));
  }
});
