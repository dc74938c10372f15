/**
 * OpenAI Realtime transcription dialect: upgrade (intent, Bearer or browser subprotocol), every client event, the
 * server events in order with one item id per utterance, errors in OpenAI's shape, and random input never throws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { HttpError } from '../../errors.js';
import type { ClientCommand, SessionEvent, UpgradeRequest } from '../dialect.js';
import { openAiDialect as oa, type OpenAiState } from './openai.js';

const req = (query: string, headers: Record<string, string> = {}, protocols: string[] = []): UpgradeRequest => ({ query: new URLSearchParams(query), headers, protocols });
const json = (o: unknown) => Buffer.from(JSON.stringify(o));
const parse = (frames: (string | Buffer)[]) => frames.map((f) => JSON.parse(String(f)) as Record<string, unknown>);
const begin: SessionEvent = { type: 'session.begin', sessionId: 'rt_1', model: 'moonshine-tiny', format: { encoding: 'pcm_s16le', sampleRate: 24000 }, options: { commitStrategy: 'vad' } };

function fresh(headers: Record<string, string> = { authorization: 'Bearer sk-test' }): OpenAiState {
  return oa.createState(oa.parseOpen(req('intent=transcription', headers)));
}

test('parseOpen: intent=transcription, Bearer key or token, browser subprotocol, 24 kHz pcm16 and server VAD by default', () => {
  const open = oa.parseOpen(req('intent=transcription', { authorization: 'Bearer sk-1' }));
  assert.deepEqual(open.credential, { kind: 'api_key', key: 'sk-1' });
  assert.deepEqual(open.format, { encoding: 'pcm_s16le', sampleRate: 24000 });
  assert.equal(open.options.commitStrategy, 'vad');
  assert.deepEqual(oa.parseOpen(req('intent=transcription', { authorization: 'Bearer rtt_x' })).credential, { kind: 'token', token: 'rtt_x' });
  const browser = oa.parseOpen(req('intent=transcription', {}, ['realtime', 'openai-insecure-api-key.sk-2']));
  assert.deepEqual(browser.credential, { kind: 'api_key', key: 'sk-2' });
  assert.equal(browser.protocol, 'realtime');
  assert.deepEqual(oa.parseOpen(req('intent=transcription')).credential, { kind: 'none' });
  for (const q of ['model=gpt-realtime', 'intent=conversation', '', 'intent=transcription&foo=1']) {
    assert.throws(() => oa.parseOpen(req(q)), (e: unknown) => e instanceof HttpError && e.status === 400, q);
  }
});

test('session.update (GA) and transcription_session.update (beta) become configure commands', () => {
  const s = fresh();
  const [ga] = oa.onClientMessage(s, json({
    type: 'session.update',
    session: { type: 'transcription', audio: { input: { format: { type: 'audio/pcmu' }, transcription: { model: 'gpt-4o-transcribe', language: 'fr' }, turn_detection: { type: 'server_vad', threshold: 0.6, prefix_padding_ms: 250, silence_duration_ms: 700 } } } },
  }), false);
  assert.deepEqual(ga, { kind: 'configure', format: { encoding: 'mulaw', sampleRate: 8000 }, options: { commitStrategy: 'vad', vadThreshold: 0.6, speechPadMs: 250, minSilenceMs: 700, language: 'fr' } });
  const [beta] = oa.onClientMessage(s, json({ type: 'transcription_session.update', session: { input_audio_format: 'g711_alaw', input_audio_transcription: { model: 'whisper-base' }, turn_detection: null } }), false);
  assert.deepEqual(beta, { kind: 'configure', format: { encoding: 'alaw', sampleRate: 8000 }, options: { commitStrategy: 'manual', model: 'whisper-base' } });
  const [pcm] = oa.onClientMessage(s, json({ type: 'session.update', session: { type: 'transcription', audio: { input: { format: { type: 'audio/pcm', rate: 24000 } } } } }), false);
  assert.deepEqual(pcm, { kind: 'configure', format: { encoding: 'pcm_s16le', sampleRate: 24000 }, options: {} });
  for (const bad of [
    { type: 'session.update', session: { type: 'realtime' } },
    { type: 'session.update' },
    { type: 'session.update', session: { type: 'transcription', audio: { input: { format: { type: 'audio/opus' } } } } },
    { type: 'session.update', session: { type: 'transcription', audio: { input: { turn_detection: { type: 'server_vad', threshold: 7 } } } } },
    { type: 'session.update', session: { type: 'transcription', audio: { input: { transcription: { model: 'llama' } } } } },
    { type: 'transcription_session.update', session: { input_audio_format: 'mp3' } },
  ]) {
    const [c] = oa.onClientMessage(s, json(bad), false);
    assert.ok(c?.kind === 'invalid' && !c.fatal, JSON.stringify(bad));
  }
});

test('append, commit and clear; committing an empty buffer is OpenAI\'s commit_empty error', () => {
  const s = fresh();
  const [c0] = oa.onClientMessage(s, json({ type: 'input_audio_buffer.commit' }), false);
  assert.ok(c0?.kind === 'invalid' && c0.code === 'input_audio_buffer_commit_empty');
  const pcm = Buffer.from([1, 0, 2, 0]);
  assert.deepEqual(oa.onClientMessage(s, json({ type: 'input_audio_buffer.append', audio: pcm.toString('base64') }), false), [{ kind: 'audio', bytes: pcm }]);
  assert.deepEqual(oa.onClientMessage(s, json({ type: 'input_audio_buffer.commit' }), false), [{ kind: 'flush' }]);
  assert.deepEqual(oa.onClientMessage(s, json({ type: 'input_audio_buffer.clear' }), false), [{ kind: 'clear' }]);
  const bad: ClientCommand[] = [
    ...oa.onClientMessage(s, json({ type: 'input_audio_buffer.append', audio: '%%%' }), false),
    ...oa.onClientMessage(s, json({ type: 'input_audio_buffer.append' }), false),
    ...oa.onClientMessage(s, json({ type: 'response.create' }), false),
    ...oa.onClientMessage(s, json({ type: 'nope' }), false),
    ...oa.onClientMessage(s, Buffer.from('not json'), false),
    ...oa.onClientMessage(s, Buffer.from([0, 1]), true),
  ];
  assert.deepEqual(bad.map((c) => c.kind === 'invalid' && !c.fatal && c.code), ['invalid_value', 'missing_required_parameter', 'unsupported_event', 'invalid_event', 'invalid_json', 'invalid_event']);
});

test('a VAD utterance renders speech_started → deltas → speech_stopped → committed → completed with one item id', () => {
  const s = fresh();
  const [created] = parse(oa.render(s, begin));
  assert.equal(created?.['type'], 'session.created');
  assert.equal((created?.['session'] as Record<string, unknown>)['type'], 'transcription');
  const events = parse([
    ...oa.render(s, { type: 'vad.speech_start', utterance: 0, start: 0.4 }),
    ...oa.render(s, { type: 'transcript.partial', utterance: 0, text: 'hello', start: 0.4, end: 0.9 }),
    ...oa.render(s, { type: 'transcript.partial', utterance: 0, text: 'hello wor', start: 0.4, end: 1.1 }),
    ...oa.render(s, { type: 'transcript.partial', utterance: 0, text: 'yellow', start: 0.4, end: 1.2 }), // a revision sends nothing
    ...oa.render(s, { type: 'vad.speech_end', utterance: 0, start: 0.4, end: 1.6 }),
    ...oa.render(s, { type: 'transcript.final', flushed: false, final: { utterance: 0, text: 'hello world', start: 0.4, end: 1.6, words: [], reason: 'pause' } }),
    ...oa.render(s, { type: 'transcript.final', flushed: true, final: { utterance: 1, text: 'again', start: 2, end: 2.5, words: [], reason: 'flush' } }),
  ]);
  assert.deepEqual(events.map((e) => e['type']), [
    'input_audio_buffer.speech_started', 'conversation.item.input_audio_transcription.delta', 'conversation.item.input_audio_transcription.delta',
    'input_audio_buffer.speech_stopped', 'input_audio_buffer.committed', 'conversation.item.input_audio_transcription.completed',
    'input_audio_buffer.committed', 'conversation.item.input_audio_transcription.completed',
  ]);
  const first = events[0]?.['item_id'];
  assert.ok(typeof first === 'string' && first.startsWith('item_'));
  for (const e of events.slice(0, 6)) assert.equal(e['item_id'], first);
  assert.equal(events[0]?.['audio_start_ms'], 400);
  assert.equal(events[3]?.['audio_end_ms'], 1600);
  assert.deepEqual([events[1]?.['delta'], events[2]?.['delta']], ['hello', ' wor']);
  assert.equal(events[4]?.['previous_item_id'], null);
  assert.equal(events[5]?.['transcript'], 'hello world');
  assert.deepEqual(events[5]?.['usage'], { type: 'duration', seconds: 1.2 });
  assert.notEqual(events[6]?.['item_id'], first);
  assert.equal(events[6]?.['previous_item_id'], first);
  assert.ok(events.every((e) => typeof e['event_id'] === 'string'));
});

test('deltas hold back trailing punctuation, which the next partial moves, so punctuated partials still extend', () => {
  const s = fresh();
  oa.render(s, begin);
  const deltas = parse([
    ...oa.render(s, { type: 'transcript.partial', utterance: 0, text: 'The weather.', start: 0, end: 0.5 }),
    ...oa.render(s, { type: 'transcript.partial', utterance: 0, text: 'The weather today is cold.', start: 0, end: 1.2 }),
    ...oa.render(s, { type: 'transcript.partial', utterance: 0, text: 'The weather today is cold, and windy!', start: 0, end: 1.9 }),
    ...oa.render(s, { type: 'transcript.partial', utterance: 0, text: 'The weather today is cold, and windy.', start: 0, end: 2 }),
  ]).map((e) => e['delta']);
  assert.deepEqual(deltas, ['The weather', ' today is cold', ', and windy']);
});

test('a final before its speech_end still renders stopped → committed → completed once, and late VAD events add nothing', () => {
  const s = fresh();
  oa.render(s, begin);
  const events = parse([
    ...oa.render(s, { type: 'vad.speech_start', utterance: 0, start: 0 }),
    ...oa.render(s, { type: 'transcript.final', flushed: false, final: { utterance: 0, text: 'one', start: 0, end: 1, words: [], reason: 'pause' } }),
    ...oa.render(s, { type: 'vad.speech_end', utterance: 0, start: 0, end: 1 }),
    ...oa.render(s, { type: 'transcript.final', flushed: false, final: { utterance: 0, text: 'one', start: 0, end: 1, words: [], reason: 'pause' } }),
    ...oa.render(s, { type: 'vad.speech_start', utterance: 1, start: 1.2 }),
    ...oa.render(s, { type: 'transcript.final', flushed: true, final: { utterance: 1, text: 'two', start: 1.2, end: 1.5, words: [], reason: 'flush' } }),
  ]);
  assert.deepEqual(events.map((e) => e['type']), [
    'input_audio_buffer.speech_started', 'input_audio_buffer.speech_stopped', 'input_audio_buffer.committed', 'conversation.item.input_audio_transcription.completed',
    'input_audio_buffer.speech_started', 'input_audio_buffer.committed', 'conversation.item.input_audio_transcription.completed',
  ]);
  assert.equal(events[1]?.['audio_end_ms'], 1000);
  assert.equal(new Set(events.slice(0, 4).map((e) => e['item_id'])).size, 1);
  for (let u = 2; u < 60; u++) oa.render(s, { type: 'transcript.final', flushed: false, final: { utterance: u, text: 'x', start: u, end: u + 0.5, words: [], reason: 'pause' } });
  assert.ok(s.items.size <= 20, `finished items are pruned (${s.items.size} kept)`);
});

test('manual turn detection sends no VAD events; updated/cleared/errors render in OpenAI shape; beta clients get beta names', () => {
  const s = fresh();
  oa.render(s, begin);
  oa.onClientMessage(s, json({ type: 'session.update', event_id: 'c1', session: { type: 'transcription', audio: { input: { turn_detection: null } } } }), false);
  const [updated] = parse(oa.render(s, { type: 'session.updated', format: { encoding: 'pcm_s16le', sampleRate: 24000 }, options: { commitStrategy: 'manual' } }));
  assert.equal(updated?.['type'], 'session.updated');
  assert.equal(((updated?.['session'] as Record<string, Record<string, Record<string, unknown>>>)['audio']?.['input'])?.['turn_detection'], null);
  assert.deepEqual(oa.render(s, { type: 'vad.speech_start', utterance: 0, start: 0 }), []);
  assert.deepEqual(parse(oa.render(s, { type: 'buffer.cleared' })).map((e) => e['type']), ['input_audio_buffer.cleared']);
  oa.onClientMessage(s, json({ type: 'input_audio_buffer.commit', event_id: 'c2' }), false);
  const [err] = parse(oa.render(s, { type: 'warning', code: 'input_audio_buffer_commit_empty', message: 'empty' }));
  assert.deepEqual(err?.['error'], { type: 'invalid_request_error', code: 'input_audio_buffer_commit_empty', message: 'empty', param: null, event_id: 'c2' });
  assert.deepEqual(oa.render(s, { type: 'warning', code: 'lag', message: 'behind' }), []);
  assert.equal(parse(oa.render(s, { type: 'warning', code: 'configure_after_audio', message: 'too late' }))[0]?.['type'], 'error');
  const [fatal] = parse(oa.render(s, { type: 'error', code: 'over_capacity', message: 'full', closeCode: 4503 }));
  assert.equal((fatal?.['error'] as Record<string, unknown>)['type'], 'server_error');
  assert.deepEqual(oa.render(s, { type: 'session.end', sessionId: 'rt_1', audioSeconds: 1, text: '', finals: [] }), []);

  const beta = fresh({ authorization: 'Bearer sk', 'openai-beta': 'realtime=v1' });
  const [c] = parse(oa.render(beta, begin));
  assert.equal(c?.['type'], 'transcription_session.created');
  assert.equal((c?.['session'] as Record<string, unknown>)['input_audio_format'], 'pcm16');
});

test('fuzz: random bytes and random JSON never throw', () => {
  const s = fresh();
  const types = ['input_audio_buffer.append', 'input_audio_buffer.commit', 'session.update', 'transcription_session.update', 'x'];
  for (let i = 0; i < 2000; i++) {
    const b = randomBytes(i % 50);
    const msgs = [b, json({ type: types[i % types.length], audio: b.toString('base64').slice(0, i % 30), session: i % 2 ? { type: 'transcription', audio: { input: { format: b.toString('hex'), turn_detection: i % 3 ? null : { threshold: i } } } } : b.toString() })];
    for (const m of msgs) assert.ok(Array.isArray(oa.onClientMessage(s, m, i % 11 === 0)));
  }
});
