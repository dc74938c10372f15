/**
 * Deepgram live dialect: query → format and options (and 400s), Token/Bearer/subprotocol credentials, binary
 * audio and KeepAlive/Finalize/CloseStream, Results/SpeechStarted/UtteranceEnd/Metadata as the SDK types them,
 * and random input never throws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { HttpError } from '../../errors.js';
import type { SessionEvent, UpgradeRequest } from '../dialect.js';
import { createDeepgramDialect } from './deepgram.js';

const dg = createDeepgramDialect({ now: () => Date.UTC(2026, 11, 5) });
const req = (query: string, headers: Record<string, string> = {}, protocols: string[] = []): UpgradeRequest => ({ query: new URLSearchParams(query), headers, protocols });
const json = (o: unknown) => Buffer.from(JSON.stringify(o));
const parse = (frames: (string | Buffer)[]) => frames.map((f) => JSON.parse(String(f)) as Record<string, unknown>);
const Q = 'model=nova-3&encoding=linear16&sample_rate=16000';

test('parseOpen maps encoding/sample_rate/channels, interim_results, endpointing and the Deepgram extras', () => {
  const open = dg.parseOpen(req(`${Q}&channels=2&language=en-US&interim_results=true&endpointing=300&utterance_end_ms=1000&vad_events=true&punctuate=true&smart_format=true&tag=x`, { authorization: 'Token k1' }));
  assert.deepEqual(open.credential, { kind: 'api_key', key: 'k1' });
  assert.deepEqual(open.format, { encoding: 'pcm_s16le', sampleRate: 16000, channels: 2 });
  assert.deepEqual(open.options, { partials: true, commitStrategy: 'vad', minSilenceMs: 300, language: 'en' });
  assert.equal(open.settings?.['utterance_end_ms'], 1000);
  assert.equal(open.settings?.['vad_events'], true);
  const defaults = dg.parseOpen(req('encoding=mulaw', { authorization: 'Bearer rtt_t' }));
  assert.deepEqual(defaults.format, { encoding: 'mulaw', sampleRate: 8000, channels: 1 });
  assert.equal(defaults.options.partials, false, 'Deepgram sends no interim results unless asked');
  assert.deepEqual(defaults.credential, { kind: 'token', token: 'rtt_t' });
  assert.equal(dg.parseOpen(req(`${Q}&endpointing=false`)).options.commitStrategy, 'manual');
  assert.equal(dg.parseOpen(req(`${Q}&endpointing=10`)).options.minSilenceMs, 32);
  assert.equal(dg.parseOpen(req(`${Q}&language=multi`)).options.language, undefined);
});

test('the token subprotocol is a credential and is answered', () => {
  const open = dg.parseOpen(req(Q, {}, ['token', 'k2']));
  assert.deepEqual(open.credential, { kind: 'api_key', key: 'k2' });
  assert.equal(open.protocol, 'token');
  const bearer = dg.parseOpen(req(Q, {}, ['bearer', 'rtt_z']));
  assert.deepEqual(bearer.credential, { kind: 'token', token: 'rtt_z' });
  assert.equal(bearer.protocol, 'bearer');
  assert.deepEqual(dg.parseOpen(req(Q)).credential, { kind: 'none' });
});

test('unsupported or bad options refuse the upgrade with 400', () => {
  for (const q of ['model=nova-3', 'encoding=opus&sample_rate=16000', 'encoding=linear16', `${Q}&channels=3`, `${Q}&multichannel=true`, `${Q}&endpointing=soon`, `${Q}&interim_results=1`, `${Q}&foo=bar`, 'model=gpt-4o&encoding=linear16&sample_rate=16000', `${Q}&utterance_end_ms=10`]) {
    assert.throws(() => dg.parseOpen(req(q)), (e: unknown) => e instanceof HttpError && e.status === 400, q);
  }
});

test('binary audio, KeepAlive, Finalize, CloseStream; unknown messages are a non-fatal Error', () => {
  const s = dg.createState(dg.parseOpen(req(Q)));
  const pcm = Buffer.from([1, 0, 2, 0]);
  assert.deepEqual(dg.onClientMessage(s, pcm, true), [{ kind: 'audio', bytes: pcm }]);
  assert.deepEqual(dg.onClientMessage(s, json({ type: 'KeepAlive' }), false), [{ kind: 'keepalive' }]);
  assert.deepEqual(dg.onClientMessage(s, json({ type: 'Finalize' }), false), [{ kind: 'flush' }]);
  assert.deepEqual(dg.onClientMessage(s, json({ type: 'CloseStream' }), false), [{ kind: 'end' }]);
  assert.deepEqual(dg.onClientMessage(s, Buffer.alloc(0), true), [{ kind: 'end' }]);
  for (const bad of [json({ type: 'Configure' }), json({ type: 'Nope' }), Buffer.from('{')]) {
    const [c] = dg.onClientMessage(s, bad, false);
    assert.ok(c?.kind === 'invalid' && !c.fatal);
    const [rendered] = parse(dg.render(s, { type: 'warning', code: c.code, message: c.message }));
    assert.equal(rendered?.['type'], 'Error');
  }
});

test('events render as Results (interim, final, speech_final, from_finalize), SpeechStarted, UtteranceEnd and Metadata', () => {
  const s = dg.createState(dg.parseOpen(req(`${Q}&interim_results=true&vad_events=true&utterance_end_ms=1000`)));
  const audio = Buffer.from([5, 0, 6, 0]);
  dg.onClientMessage(s, audio, true);
  assert.deepEqual(dg.render(s, { type: 'session.begin', sessionId: 'rt_9', model: 'moonshine-tiny', format: { encoding: 'pcm_s16le', sampleRate: 16000 }, options: {} }), []);
  const [started] = parse(dg.render(s, { type: 'vad.speech_start', utterance: 0, start: 0.25 }));
  assert.deepEqual(started, { type: 'SpeechStarted', channel: [0, 1], timestamp: 0.25 });
  const [interim] = parse(dg.render(s, { type: 'transcript.partial', utterance: 0, text: 'hello there', start: 0.25, end: 1.25 }));
  assert.equal(interim?.['is_final'], false);
  const alt = (r: Record<string, unknown> | undefined) => ((r?.['channel'] as Record<string, unknown[]>)['alternatives']?.[0]) as Record<string, unknown>;
  assert.equal(alt(interim)['transcript'], 'hello there');
  assert.equal((alt(interim)['words'] as unknown[]).length, 2);
  assert.equal((interim?.['metadata'] as Record<string, unknown>)['request_id'], 'rt_9');
  assert.equal(((interim?.['metadata'] as Record<string, Record<string, unknown>>)['model_info'])?.['name'], 'moonshine-tiny', 'the model that serves the session');
  const finals = parse(dg.render(s, { type: 'transcript.final', flushed: false, final: { utterance: 0, text: 'Hello there.', start: 0.25, end: 1.5, reason: 'pause', words: [{ text: 'Hello', start: 0.3, end: 0.6, confidence: 0.8 }, { text: 'there.', start: 0.7, end: 1.2 }] } }));
  assert.deepEqual(finals.map((f) => f['type']), ['Results', 'UtteranceEnd']);
  assert.equal(finals[0]?.['is_final'], true);
  assert.equal(finals[0]?.['speech_final'], true);
  assert.equal(finals[0]?.['from_finalize'], false);
  assert.equal(finals[0]?.['start'], 0.25);
  assert.equal(finals[0]?.['duration'], 1.25);
  assert.deepEqual((alt(finals[0])['words'] as unknown[])[1], { word: 'there', start: 0.7, end: 1.2, confidence: 1, punctuated_word: 'there.' });
  assert.equal(finals[1]?.['last_word_end'], 1.2);
  const [flushed, ...rest] = parse(dg.render(s, { type: 'transcript.final', flushed: true, final: { utterance: 1, text: 'more', start: 2, end: 2.4, reason: 'flush', words: [] } }));
  assert.equal(flushed?.['from_finalize'], true);
  assert.equal(flushed?.['speech_final'], false);
  assert.equal(rest.length, 0, 'UtteranceEnd only after a pause');
  const [meta] = parse(dg.render(s, { type: 'session.end', sessionId: 'rt_9', audioSeconds: 3.2, text: 'Hello there. more', finals: [] }));
  assert.deepEqual(meta, {
    type: 'Metadata', transaction_key: 'deprecated', request_id: 'rt_9', sha256: createHash('sha256').update(audio).digest('hex'),
    created: '2026-12-05T00:00:00.000Z', duration: 3.2, channels: 1,
  });
  assert.deepEqual(dg.render(s, { type: 'vad.speech_end', utterance: 0, start: 0, end: 1 }), []);
  assert.deepEqual(dg.render(s, { type: 'warning', code: 'lag', message: 'behind' }), []);
  assert.equal(parse(dg.render(s, { type: 'error', code: 'idle', message: 'idle', closeCode: 4408 }))[0]?.['type'], 'Error');
  const quiet = dg.createState(dg.parseOpen(req(Q)));
  assert.deepEqual(dg.render(quiet, { type: 'vad.speech_start', utterance: 0, start: 0 }), [], 'SpeechStarted only with vad_events=true');
});

test('fuzz: random bytes and random JSON never throw', () => {
  const s = dg.createState(dg.parseOpen(req(Q)));
  for (let i = 0; i < 3000; i++) {
    const b = randomBytes(i % 80);
    assert.ok(Array.isArray(dg.onClientMessage(s, b, i % 2 === 0)));
    assert.ok(Array.isArray(dg.onClientMessage(s, json({ type: b.toString('latin1') }), false)));
  }
  const events: SessionEvent[] = [{ type: 'transcript.partial', utterance: 0, text: '  ', start: 1, end: 1 }, { type: 'transcript.partial', utterance: 0, text: '', start: 0, end: 0 }];
  for (const e of events) assert.equal(dg.render(s, e).length, 1);
});
