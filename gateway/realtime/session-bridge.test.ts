/**
 * The session bridge on the real uWS server with a `ws` client, its Kafka side replaced by a recording sender and
 * its clock by a manual one, so the limits are checked at exact instants (the Kafka path is covered by
 * test/integration/realtime-gateway.test.ts): idle timeout, maximum length and the lag budget from one sweep,
 * finals forwarded once, a non-fatal bad message, lazily created audio state.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import WebSocket from 'ws';
import { createApiKeyAuthenticator } from '../auth.js';
import { createGatewayApp, type GatewayApp } from '../gateway-app.js';
import { InMemoryJobReader, RecordingPublisher } from '../memory-ports.js';
import { recordingLogger, TEST_API_KEY } from '../test-harness.js';
import { FsArtifactStore } from '../../storage/index.js';
import { SCHEMA_VERSION, checkRealtimeInput, decodeMessage, type MessageSender, type RealtimeInput, type TopicBatch } from '../../streams/index.js';
import { nativeDialect } from './dialects/native.js';
import { RealtimePublisher } from './realtime-publisher.js';
import { tokenSecret } from './realtime-token.js';
import { SessionBridge } from './session-bridge.js';

class RecordingSender implements MessageSender {
  readonly inputs: RealtimeInput[] = [];
  send(): Promise<never> {
    return Promise.reject(new Error('not used'));
  }
  async sendBatch(batches: readonly TopicBatch[]) {
    for (const b of batches) {
      if (b.topic !== 'in') continue;
      for (const m of b.messages) if (m.value) this.inputs.push(decodeMessage(checkRealtimeInput, m.value));
    }
    return [];
  }
}

let now = 1_000_000;
const sender = new RecordingSender();
let bridge: SessionBridge;
let app: GatewayApp;
let base = '';

before(async () => {
  const registry = new Registry();
  const log = recordingLogger([]);
  bridge = new SessionBridge({
    gatewayId: 'gw-test', replyTopic: 'replies',
    limits: { sessionsPerEngine: 8, maxSessionsPerKey: 8, idleTimeoutMs: 30_000, maxSessionMs: 600_000, maxFrameBytes: 65_536, lag: { warnSeconds: 3, closeSeconds: 5 } },
    defaults: { model: 'm', retention: false },
    authenticator: createApiKeyAuthenticator(TEST_API_KEY), tokenSecret: tokenSecret(TEST_API_KEY),
    ledger: { claim: async () => true, start: async () => undefined, close: async () => undefined },
    presence: { liveEngines: async () => 1 },
    publisher: new RealtimePublisher({ sender, inputTopic: 'in', eventsTopic: 'ev', log }),
    store: new FsArtifactStore('/nonexistent'), spoolDir: '/tmp', registry, log, now: () => now, sweepIntervalMs: 0,
  });
  app = createGatewayApp({
    config: { apiKey: TEST_API_KEY, uploadMaxBytes: 1024 }, log, registry: new Registry(), publisher: new RecordingPublisher(), reader: new InMemoryJobReader(),
    store: new FsArtifactStore('/nonexistent'), readinessChecks: {},
  });
  app.ws(bridge.route(nativeDialect));
  base = `ws://127.0.0.1:${await app.listen(0, '127.0.0.1')}${nativeDialect.path}`;
});

after(async () => {
  await app.close(100);
});

async function connect(query = '') {
  const ws = new WebSocket(`${base}?${query}`, { headers: { authorization: `Bearer ${TEST_API_KEY}` } });
  const messages: Record<string, unknown>[] = [];
  ws.on('message', (d: Buffer) => messages.push(JSON.parse(d.toString('utf8')) as Record<string, unknown>));
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  await waitFor(() => messages.length > 0);
  return { ws, messages, closed, id: String(messages[0]?.['session_id']) };
}

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await sleep(5);
  assert.ok(cond(), 'condition not reached');
}

void test('idle timeout is one sweep past the limit, not a timer per socket', async () => {
  const s = await connect();
  bridge.sweep(now + 29_999);
  assert.equal(s.ws.readyState, WebSocket.OPEN);
  bridge.sweep(now + 30_000);
  const c = await s.closed;
  assert.equal(c.code, 4408);
  assert.equal(s.messages.at(-1)?.['code'], 'idle_timeout');
});

void test('idle counts from the engine\'s last progress too: a silent client whose audio is still being transcribed stays open', async () => {
  const s = await connect();
  s.ws.send(Buffer.alloc(32_000)); // 1 s of audio, then the client waits in silence
  await waitFor(() => sender.inputs.filter((m) => m.sessionId === s.id && m.type === 'rt.audio').length === 10);
  const v = SCHEMA_VERSION;
  // A loaded engine works through the second over 40 s; its progress keeps the session open past the idle limit.
  for (let t = 10_000; t <= 40_000; t += 10_000) {
    bridge.onReply({ v, type: 'rt.progress', sessionId: s.id, processedSeconds: t / 40_000, at: now + t }, now + t);
    bridge.sweep(now + t);
  }
  await sleep(50); // a close would have reached the client by now
  assert.equal(s.ws.readyState, WebSocket.OPEN, 'open 40 s after the last client message');
  bridge.sweep(now + 40_000 + 29_999);
  await sleep(50);
  assert.equal(s.ws.readyState, WebSocket.OPEN);
  bridge.sweep(now + 40_000 + 30_000);
  assert.equal((await s.closed).code, 4408, 'idle once neither side did anything for the limit');
  now += 80_000;
});

void test('maximum length: 4413 even with traffic', async () => {
  const s = await connect();
  now += 599_000;
  s.ws.send(JSON.stringify({ type: 'keepalive' }));
  await sleep(20);
  bridge.sweep(now + 1000);
  assert.equal((await s.closed).code, 4413);
  now += 10_000;
});

void test('audio is framed in 100 ms frames; replies are routed; a repeated final is dropped; flush marks the final', async () => {
  const s = await connect();
  s.ws.send(Buffer.alloc(3200 * 3 + 200));
  await waitFor(() => sender.inputs.filter((m) => m.sessionId === s.id && m.type === 'rt.audio').length === 3);
  s.ws.send(JSON.stringify({ type: 'flush' }));
  await waitFor(() => sender.inputs.some((m) => m.sessionId === s.id && m.type === 'rt.control'));
  const mine = sender.inputs.filter((m) => m.sessionId === s.id);
  assert.deepEqual(mine.map((m) => m.type), ['rt.session.start', 'rt.audio', 'rt.audio', 'rt.audio', 'rt.audio', 'rt.control']);
  const v = SCHEMA_VERSION;
  const final = { utterance: 0, text: 'hi', start: 0, end: 0.3, words: [], reason: 'flush' as const };
  bridge.onReply({ v, type: 'rt.partial', sessionId: s.id, utterance: 0, text: 'h', start: 0, end: 0.2, at: now, receivedAt: now }, now);
  bridge.onReply({ v, type: 'rt.final', sessionId: s.id, final, at: now, receivedAt: now }, now);
  bridge.onReply({ v, type: 'rt.final', sessionId: s.id, final, at: now, receivedAt: now }, now);
  bridge.onReply({ v, type: 'rt.partial', sessionId: s.id, utterance: 0, text: 'late', start: 0, end: 0.2, at: now, receivedAt: now }, now);
  await waitFor(() => s.messages.some((m) => m['type'] === 'transcript.final'));
  await sleep(30);
  assert.deepEqual(s.messages.slice(1).map((m) => m['type']), ['transcript.partial', 'transcript.final']);
  assert.equal(s.messages[2]?.['flushed'], true);
  s.ws.close();
  await s.closed;
});

void test('lag: a warning past 3 s, a close held past 5 s while progress flows', async () => {
  const s = await connect();
  for (let i = 0; i < 6; i++) s.ws.send(Buffer.alloc(32_000)); // 6 s of audio at once
  await waitFor(() => sender.inputs.filter((m) => m.sessionId === s.id && m.type === 'rt.audio').length === 60);
  const v = SCHEMA_VERSION;
  for (let t = 0; t <= 6; t++) {
    bridge.onReply({ v, type: 'rt.progress', sessionId: s.id, processedSeconds: 0.5, at: now + t * 1000 }, now + t * 1000);
    bridge.sweep(now + t * 1000);
  }
  const c = await s.closed;
  assert.equal(c.code, 4010);
  assert.deepEqual(s.messages.filter((m) => m['type'] === 'warning').map((m) => m['code']), ['lag']);
  now += 10_000;
});

void test('a non-fatal bad message is a warning and the session goes on; configure after audio is refused the same way', async () => {
  const s = await connect();
  s.ws.send(Buffer.alloc(320));
  s.ws.send(JSON.stringify({ type: 'config', partials: false }));
  await waitFor(() => s.messages.some((m) => m['type'] === 'warning'));
  assert.equal(s.messages.at(-1)?.['code'], 'configure_after_audio');
  assert.equal(s.ws.readyState, WebSocket.OPEN);
  s.ws.close();
  assert.equal((await s.closed).code, 1005);
  await waitFor(() => sender.inputs.some((m) => m.sessionId === s.id && m.type === 'rt.control' && m.action === 'end'));
});

void test('a frame over the limit closes 1009 with the bridge\'s reason; past the server\'s own payload limit uWS cuts the connection (1006)', async () => {
  const s = await connect();
  s.ws.send(Buffer.alloc(70_000));
  const c = await s.closed;
  assert.equal(c.code, 1009);
  assert.match(c.reason, /^frame_too_big/);
  const t = await connect();
  t.ws.send(Buffer.alloc(1_048_576 + 10));
  assert.equal((await t.closed).code, 1006);
});
