/**
 * The gateway's real-time side on the real Kafka: the real gateway (uWS) and a `ws` client speaking the native
 * dialect, with a SCRIPTED streaming engine (scripted-realtime-engine.ts; the real engine is built separately and
 * covered by the full-stack tests) answering over the real topics. Covers a session from partials to session.end,
 * every refusal and limit with its code while a healthy session carries on, tokens, retention and resume after a
 * gateway shutdown.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { createLogger } from '../../core/logger.js';
import { mintToken, tokenSecret } from '../../gateway/realtime/realtime-token.js';
import {
  REALTIME_EVENTS, REALTIME_INPUT, REALTIME_TOKENS, SESSION_STATE, StreamConsumer, checkRealtimeEvent, connectStreams, decodeMessage, ensureTopics, prefixed,
  type RealtimeEvent, type StreamRuntime,
} from '../../streams/index.js';
import { nativeUrl, ofType, openNative, streamNative, type NativeSessionResult, type ServerMessage } from '../../harness/realtime-client.js';
import { startTestKafka, type TestKafka } from '../../harness/kafka-fixture.js';
import { RT_TEST_KEY, realtimeTestConfig, startRealtimeTestGateway, type RealtimeTestGateway } from './realtime-gateway-fixture.js';
import { startScriptedEngine, type ScriptedEngine } from './scripted-realtime-engine.js';

const log = createLogger({ service: 'realtime-gateway-test', level: (process.env['RT_TEST_LOG'] as 'info' | undefined) ?? 'error' });
const run = randomBytes(4).toString('hex');
const prefixA = `test.rt${run}a.`;
const prefixB = `test.rt${run}b.`;

let broker: TestKafka;
let streams: StreamRuntime;
let engineA: ScriptedEngine;
let engineB: ScriptedEngine;
/** Main gateway: short idle timeout and maximum length, tight lag budget. */
let gw: RealtimeTestGateway;
/** Prefix B: capacity 2 (one engine × 2). */
let gwCapacity: RealtimeTestGateway;
/** Prefix B: one session per key. */
let gwPerKey: RealtimeTestGateway;
let events: StreamConsumer<RealtimeEvent>;
const eventsSeen: RealtimeEvent[] = [];

/** Speech-like samples (content is irrelevant to the scripted engine). */
function tone(seconds: number, rate = 16000): Int16Array {
  const out = new Int16Array(Math.round(seconds * rate));
  for (let i = 0; i < out.length; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * 220 * i) / rate));
  return out;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const textOf = (d: WebSocket.RawData): string => (Buffer.isBuffer(d) ? d : Array.isArray(d) ? Buffer.concat(d) : Buffer.from(d)).toString('utf8');
const types = (r: Pick<NativeSessionResult, 'messages'>): string[] => r.messages.map((m) => m.message.type);

/** Opens a socket and collects messages until it closes (the caller drives it). */
async function session(base: string, query: Record<string, string> = {}, opts: { apiKey?: string | null } = {}) {
  const apiKey = opts.apiKey === null ? undefined : (opts.apiKey ?? RT_TEST_KEY);
  const opened = await openNative({ baseUrl: base, query, ...(apiKey !== undefined && { apiKey }) });
  const messages: ServerMessage[] = [];
  if (opened.refused) return { refused: opened.refused, ws: opened.ws, messages, closed: Promise.resolve({ code: 0, reason: '' }) };
  const { ws } = opened;
  for (const text of opened.takeEarly()) messages.push(JSON.parse(text) as ServerMessage);
  ws.on('message', (d, isBinary) => {
    if (!isBinary) messages.push(JSON.parse(textOf(d)) as ServerMessage);
  });
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
  return { refused: undefined, ws, messages, closed };
}

/** A healthy session streaming in real time in the background: must end normally whatever the others do. */
function healthy(base: string, seconds = 3): Promise<NativeSessionResult> {
  return streamNative(tone(seconds), { baseUrl: base, apiKey: RT_TEST_KEY, speed: 1 });
}

function assertHealthy(r: NativeSessionResult, seconds: number): void {
  assert.equal(r.refused, false);
  assert.equal(r.closeCode, 1000, `healthy session closed ${r.closeCode} ${r.closeReason}`);
  const end = ofType(r, 'session.end')[0]?.message;
  assert.ok(end, 'healthy session got session.end');
  assert.equal(end['total_audio_seconds'], seconds);
  assert.equal(ofType(r, 'transcript.final').length, seconds);
}

before(async () => {
  broker = await startTestKafka(log);
  streams = await connectStreams({ brokers: broker.brokers, clientId: `rt-gw-test-${run}`, topicPrefix: prefixA, log });
  const topics = (p: string) => [REALTIME_INPUT, REALTIME_EVENTS, SESSION_STATE, REALTIME_TOKENS].map((t) => ({ ...t, name: prefixed(p, t.name) }));
  await ensureTopics(streams.kafka, [...topics(prefixA), ...topics(prefixB), { name: prefixed(prefixA, 'dead-letter'), partitions: 1, cleanupPolicy: 'delete' as const }]);
  [engineA, engineB] = await Promise.all([
    startScriptedEngine({ kafka: streams.kafka, prefix: prefixA, deadLetter: streams.deadLetter, log }),
    startScriptedEngine({ kafka: streams.kafka, prefix: prefixB, deadLetter: streams.deadLetter, log }),
  ]);
  events = new StreamConsumer<RealtimeEvent>({
    kafka: streams.kafka, groupId: `test-rt${run}-events`, topics: [prefixed(prefixA, REALTIME_EVENTS.name)], deadLetter: streams.deadLetter, log,
    decode: (value) => decodeMessage(checkRealtimeEvent, value), commitOffsets: false, fromBeginning: true, maxWaitTimeMs: 50, partitionsConsumedConcurrently: 6,
    handler: async (m) => {
      eventsSeen.push(m.value);
    },
  });
  [gw, gwCapacity, gwPerKey] = await Promise.all([
    startRealtimeTestGateway({
      streams, log, gatewayId: `gwa${run}`,
      config: realtimeTestConfig(prefixA, {
        realtimeIdleTimeoutSeconds: 2, realtimeMaxSessionSeconds: 7, realtimeMaxFrameBytes: 16_384, realtimeLagWarnSeconds: 1, realtimeLagCloseSeconds: 2, realtimeRetention: true,
      }),
      lag: { holdMs: 1000, silenceAfterMs: 1500, silenceGraceMs: 20_000 },
    }),
    startRealtimeTestGateway({ streams, log, gatewayId: `gwcap${run}`, config: realtimeTestConfig(prefixB, { realtimeSessionsPerEngine: 2 }) }),
    startRealtimeTestGateway({ streams, log, gatewayId: `gwkey${run}`, config: realtimeTestConfig(prefixB, { realtimeMaxSessionsPerKey: 1 }) }),
    events.start(),
  ]);
});

after(async () => {
  await Promise.allSettled([gw?.stop(), gwCapacity?.stop(), gwPerKey?.stop()]);
  await Promise.allSettled([engineA?.close(), engineB?.close(), events?.close()]);
  await streams?.close();
  await broker?.stop();
});

void test('a session: begin, vad, partials before each final, finals once each, session.end with the audio seconds; events for the session actor; audio retained as WAV', async () => {
  const r = await streamNative(tone(3.5), { baseUrl: gw.wsBase, apiKey: RT_TEST_KEY, speed: 4, query: { model: 'scripted-dup' } });
  assert.equal(r.closeCode, 1000, r.closeReason);
  const t = types(r);
  assert.equal(t[0], 'session.begin');
  assert.equal(t.at(-1), 'session.end');
  const begin: ServerMessage = r.messages[0]?.message ?? { type: 'none' };
  const id = String(begin['session_id']);
  assert.match(id, /^sess_[0-9A-Z]{26}$/);
  assert.equal(begin['model'], 'scripted-dup');
  const finals = ofType(r, 'transcript.final').map((m) => m.message);
  // The scripted engine sends every final twice (as after a failover): the client sees each index once.
  assert.deepEqual(finals.map((f) => f['utterance']), [0, 1, 2, 3]);
  assert.deepEqual(finals.map((f) => f['reason']), ['pause', 'pause', 'pause', 'end']);
  assert.deepEqual((finals[0]?.['words'] as { word: string }[]).map((w) => w.word), ['utterance', '0']);
  for (const u of [0, 1, 2]) {
    const partialAt = t.findIndex((x, i) => x === 'transcript.partial' && r.messages[i]?.message['utterance'] === u);
    const finalAt = t.findIndex((x, i) => x === 'transcript.final' && r.messages[i]?.message['utterance'] === u);
    assert.ok(partialAt >= 0 && partialAt < finalAt, `partial of utterance ${u} before its final`);
  }
  assert.ok(t.includes('vad.speech_start') && t.includes('vad.speech_end'));
  const end: ServerMessage = ofType(r, 'session.end')[0]?.message ?? { type: 'none' };
  assert.equal(end['total_audio_seconds'], 3.5);
  assert.equal(end['text'], 'utterance 0 utterance 1 utterance 2 utterance 3');

  await waitFor('rt.session.closed', () => eventsSeen.some((e) => e.type === 'rt.session.closed' && e.sessionId === id));
  const opened = eventsSeen.find((e) => e.type === 'rt.session.opened' && e.sessionId === id);
  assert.ok(opened && opened.type === 'rt.session.opened');
  assert.equal(opened.replyTopic, gw.realtime.replyTopic);
  assert.equal(opened.config.inputFormat, 'pcm_s16le/16000/1');
  assert.match(opened.traceparent ?? '00-', /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$|^00-$/);
  const closed = eventsSeen.find((e) => e.type === 'rt.session.closed' && e.sessionId === id);
  assert.ok(closed && closed.type === 'rt.session.closed');
  assert.equal(closed.closeCode, 1000);
  assert.equal(closed.audioSeconds, 3.5);
  assert.equal(closed.audioKey, `sessions/${id}/audio.wav`);
  const wav = await gw.store.get(closed.audioKey ?? '');
  assert.equal(wav.subarray(0, 4).toString('ascii'), 'RIFF');
  assert.equal(wav.readUInt32LE(24), 16000);
  assert.equal(wav.length, 44 + 3.5 * 16000 * 2);
  // Frames of ~100 ms keyed by session id, offsets contiguous.
  const audio = engineA.inputs.filter((m) => m.type === 'rt.audio' && m.sessionId === id);
  let next = 0;
  for (const a of audio) {
    assert.ok(a.type === 'rt.audio');
    assert.equal(a.offset, next);
    next += a.pcm.length / 2;
  }
  assert.equal(next, 3.5 * 16000);
  const metrics = await gw.registry.metrics();
  assert.match(metrics, /dalston_realtime_latency_seconds_count\{kind="first_partial"\} [1-9]/);
  assert.match(metrics, /dalston_realtime_latency_seconds_count\{kind="final"\} [1-9]/);
  assert.match(metrics, /dalston_realtime_hop_seconds_count\{hop="engine_to_gateway"\} [1-9]/);
  assert.match(metrics, /dalston_realtime_sessions_total\{status="completed"\} [1-9]/);
});

void test('flush finalises the open utterance, marked flushed; clear answers buffer.cleared', async () => {
  const r = await streamNative(tone(1.4), {
    baseUrl: gw.wsBase, apiKey: RT_TEST_KEY, speed: 4,
    controls: [{ atSeconds: 0.3, message: { type: 'flush' } }, { atSeconds: 0.6, message: { type: 'clear' } }],
  });
  assert.equal(r.closeCode, 1000, r.closeReason);
  const finals = ofType(r, 'transcript.final').map((m) => m.message);
  assert.equal(finals[0]?.['reason'], 'flush');
  assert.equal(finals[0]?.['flushed'], true);
  assert.equal(finals.at(-1)?.['flushed'], false);
  assert.equal(ofType(r, 'buffer.cleared').length, 1);
});

void test('refusals and limits each close with their code and reason while a healthy session carries on', async () => {
  const steady = healthy(gw.wsBase, 4);

  // Missing and bad credentials: refused before the upgrade.
  const missing = await session(gw.wsBase, {}, { apiKey: null });
  assert.equal(missing.refused?.status, 401);
  assert.match(missing.refused?.body ?? '', /missing credential/);
  const badKey = await session(gw.wsBase, {}, { apiKey: 'dk_wrong' });
  assert.equal(badKey.refused?.status, 401);
  assert.match(badKey.refused?.body ?? '', /invalid API key/);

  // Tokens: minted over HTTP, valid once; an expired one is refused.
  const minted = await fetch(`${gw.httpBase}/v1/realtime/tokens`, { method: 'POST', headers: { authorization: `Bearer ${RT_TEST_KEY}` } });
  assert.equal(minted.status, 201);
  const { token, expires_at } = (await minted.json()) as { token: string; expires_at: string };
  assert.ok(Date.parse(expires_at) > Date.now());
  const first = await session(gw.wsBase, { token }, { apiKey: null });
  assert.equal(first.refused, undefined);
  await waitFor('session.begin', () => first.messages.length > 0);
  assert.equal(first.messages[0]?.type, 'session.begin');
  first.ws.close(1000);
  const reused = await session(gw.wsBase, { token }, { apiKey: null });
  assert.equal(reused.refused?.status, 401);
  assert.match(reused.refused?.body ?? '', /already used/);
  const expired = mintToken(tokenSecret(RT_TEST_KEY), { tenantId: 'default', keyId: 'key_x', expiresAt: Date.now() - 1 }).token;
  const late = await session(gw.wsBase, { token: expired }, { apiKey: null });
  assert.equal(late.refused?.status, 401);
  assert.match(late.refused?.body ?? '', /expired/);
  const forged = await session(gw.wsBase, { token: `${token.slice(0, -4)}AAAA` }, { apiKey: null });
  assert.equal(forged.refused?.status, 401);

  // Bad audio format: an unknown encoding is refused before the upgrade; a chunk that splits a sample closes 4400.
  const flac = await session(gw.wsBase, { encoding: 'flac' });
  assert.equal(flac.refused?.status, 400);
  assert.match(flac.refused?.body ?? '', /encoding must be one of/);
  const odd = await session(gw.wsBase);
  odd.ws.send(Buffer.alloc(3201));
  const oddClose = await odd.closed;
  assert.equal(oddClose.code, 4400);
  assert.match(oddClose.reason, /^invalid_audio: /);
  assert.equal(odd.messages.at(-1)?.type, 'error');
  assert.equal(odd.messages.at(-1)?.['code'], 'invalid_audio');

  // Oversized frame: 1009.
  const big = await session(gw.wsBase);
  big.ws.send(Buffer.alloc(20_000));
  const bigClose = await big.closed;
  assert.equal(bigClose.code, 1009);
  assert.match(bigClose.reason, /^frame_too_big/);

  // Malformed JSON and an unknown message type: 4400 with the reason.
  const badJson = await session(gw.wsBase);
  badJson.ws.send('{"type": "flush"');
  const badJsonClose = await badJson.closed;
  assert.equal(badJsonClose.code, 4400);
  assert.match(badJsonClose.reason, /^invalid_json/);
  const unknown = await session(gw.wsBase);
  unknown.ws.send(JSON.stringify({ type: 'dance' }));
  assert.match((await unknown.closed).reason, /^unknown_message_type/);

  // Idle timeout: nothing sent for 2 s.
  const idle = await session(gw.wsBase);
  const idleClose = await idle.closed;
  assert.equal(idleClose.code, 4408);
  assert.match(idleClose.reason, /^idle_timeout/);

  assertHealthy(await steady, 4);
});

void test('capacity, per-key limit and a lag breach close with 4503, 4429 and 4010 while healthy sessions carry on', async () => {
  // Capacity 2 on prefix B (one scripted engine × 2): the third session is refused.
  const steadyB = healthy(gwCapacity.wsBase, 3);
  await sleep(300);
  const second = await session(gwCapacity.wsBase);
  assert.equal(second.refused, undefined);
  const third = await session(gwCapacity.wsBase);
  const thirdClose = await third.closed;
  assert.equal(thirdClose.code, 4503);
  assert.match(thirdClose.reason, /^over_capacity/);
  assert.equal(third.messages[0]?.type, 'error');
  second.ws.close(1000);

  // One session per key on the other gateway.
  const mine = await session(gwPerKey.wsBase);
  assert.equal(mine.refused, undefined);
  const extra = await session(gwPerKey.wsBase);
  const extraClose = await extra.closed;
  assert.equal(extraClose.code, 4429);
  assert.match(extraClose.reason, /^too_many_sessions/);
  mine.ws.close(1000);

  // The scripted engine reports progress but processes nothing: lag past 2 s for 1 s closes 4010, after a warning.
  const steadyA = healthy(gw.wsBase, 3);
  const slow = await streamNative(tone(10), { baseUrl: gw.wsBase, apiKey: RT_TEST_KEY, speed: 2, query: { model: 'scripted-slow' } });
  assert.equal(slow.closeCode, 4010);
  assert.match(slow.closeReason, /^lag_budget_exceeded/);
  assert.ok(ofType(slow, 'warning').some((m) => m.message['code'] === 'lag'));

  assertHealthy(await steadyB, 3);
  assertHealthy(await steadyA, 3);
});

void test('no progress at all (an engine failover) is not a lag breach within the grace period', async () => {
  const r = await streamNative(tone(6), { baseUrl: gw.wsBase, apiKey: RT_TEST_KEY, speed: 2, query: { model: 'scripted-silent' } });
  assert.equal(r.closeCode, 1000, r.closeReason);
  assert.ok(ofType(r, 'warning').some((m) => m.message['code'] === 'lag'), 'the client is warned');
  assert.equal(ofType(r, 'session.end')[0]?.message['total_audio_seconds'], 6);
});

void test('maximum session length closes with 4413', async () => {
  const s = await session(gw.wsBase);
  const keepalive = setInterval(() => s.ws.readyState === WebSocket.OPEN && s.ws.send(JSON.stringify({ type: 'keepalive' })), 500);
  const closed = await s.closed;
  clearInterval(keepalive);
  assert.equal(closed.code, 4413);
  assert.match(closed.reason, /^max_session_length/);
});

void test('status reports the live engine, capacity and active sessions', async () => {
  const res = await fetch(`${gw.httpBase}/v1/realtime/status`, { headers: { authorization: `Bearer ${RT_TEST_KEY}` } });
  assert.equal(res.status, 200);
  const body = (await res.json()) as Record<string, unknown>;
  assert.equal(body['live_engines'], 1);
  assert.equal(body['capacity'], 16);
  assert.equal(body['gateway_id'], `gwa${run}`);
  assert.equal(typeof body['active_sessions'], 'number');
});

void test('resume: a gateway shutting down closes 1012 with where to resume; another gateway continues the session without losing finalised text', async () => {
  const leaving = await startRealtimeTestGateway({ streams, log, gatewayId: `gwleave${run}`, config: realtimeTestConfig(prefixA) });
  const pcm = tone(4);
  const s = await session(leaving.wsBase, { model: 'scripted' });
  await waitFor('session.begin', () => s.messages.length > 0);
  const id = String(s.messages[0]?.['session_id']);
  // 2.5 s of audio: finals 0 and 1, then the gateway goes away.
  for (let at = 0; at < 40_000; at += 1600) s.ws.send(Buffer.from(pcm.buffer, at * 2, 3200));
  await waitFor('two finals', () => s.messages.filter((m) => m.type === 'transcript.final').length === 2);
  await leaving.stop();
  const closed = await s.closed;
  assert.equal(closed.code, 1012);
  const m = /^resume=(\S+); resume_offset=(\d+)$/.exec(closed.reason);
  assert.ok(m, closed.reason);
  assert.equal(m[1], id);
  const offset = Number(m[2]);
  assert.equal(offset, 40_000);

  const url = nativeUrl({ baseUrl: gw.wsBase, query: { resume: id, resume_offset: String(offset) } });
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${RT_TEST_KEY}` } });
  const got: ServerMessage[] = [];
  ws.on('message', (d) => got.push(JSON.parse(textOf(d)) as ServerMessage));
  const end = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  await waitFor('replayed finals', () => got.filter((x) => x.type === 'transcript.final').length >= 2);
  assert.equal(got[0]?.type, 'session.begin');
  assert.equal(got[0]?.['session_id'], id);
  for (let at = offset; at < pcm.length; at += 1600) ws.send(Buffer.from(pcm.buffer, at * 2, 3200));
  ws.send(JSON.stringify({ type: 'end' }));
  assert.equal(await end, 1000);
  const finals = got.filter((x) => x.type === 'transcript.final');
  assert.deepEqual(finals.map((f) => f['utterance']), [0, 1, 2, 3]);
  const sessionEnd = got.find((x) => x.type === 'session.end');
  assert.equal(sessionEnd?.['total_audio_seconds'], 4);
  assert.equal(sessionEnd?.['text'], 'utterance 0 utterance 1 utterance 2 utterance 3');
  await waitFor('rt.session.resumed', () => eventsSeen.some((e) => e.type === 'rt.session.resumed' && e.sessionId === id));
  await waitFor('rt.session.closed', () => eventsSeen.some((e) => e.type === 'rt.session.closed' && e.sessionId === id));
  const interrupted = eventsSeen.find((e) => e.type === 'rt.session.closed' && e.sessionId === id);
  assert.ok(interrupted && interrupted.type === 'rt.session.closed');
  assert.equal(interrupted.closeCode, 1012);
  assert.equal(engineA.sessions.get(id)?.replyTopic, gw.realtime.replyTopic);
});

void test('a token presented to two gateways at the same moment opens exactly one session (the claim ledger orders them)', async () => {
  for (let round = 0; round < 3; round++) {
    const minted = await fetch(`${gwCapacity.httpBase}/v1/realtime/tokens`, { method: 'POST', headers: { authorization: `Bearer ${RT_TEST_KEY}` } });
    const { token } = (await minted.json()) as { token: string };
    const [a, b] = await Promise.all([session(gwCapacity.wsBase, { token }, { apiKey: null }), session(gwPerKey.wsBase, { token }, { apiKey: null })]);
    const outcomes = [a, b].map((s) => (s.refused ? s.refused.status : 101)).sort();
    assert.deepEqual(outcomes, [101, 401], `round ${round}`);
    for (const s of [a, b]) if (!s.refused) s.ws.close(1000);
    await Promise.all([a.closed, b.closed]);
  }
});
