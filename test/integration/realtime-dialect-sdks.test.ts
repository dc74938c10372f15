/**
 * The vendors' own SDKs, unmodified, against the vendor dialect adapters on a real uWS WebSocket server driven by a
 * scripted session (test/support/scripted-dialect-server.ts): each connects, gets partials then finals in its own
 * event types, a commit/Finalize gets its final at once (it holds exactly the words heard by then), the end carries
 * the audio seconds where the vendor has a place for them, and a bad credential is refused before the upgrade.
 * OpenAI's SDK insists on wss://, so its server runs TLS with a certificate made here.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { deepgramDialect, elevenLabsDialect, openAiDialect } from '../../gateway/realtime/dialects/vendors.js';
import { makeSelfSignedCert, startScriptedDialectServer, type ScriptedDialectServer, type SelfSignedCert } from '../support/scripted-dialect-server.js';
import { streamWithDeepgram, streamWithElevenLabs, streamWithOpenAI, type SdkEvent } from '../support/vendor-sdk-clients.js';

const KEY = 'dalston-test-key';
/** 7.2 s of quiet noise: the scripted session cares about positions, not content. */
const PCM = Int16Array.from({ length: 16000 * 7.2 }, (_, i) => ((i * 7919) % 200) - 100);
const FAST = { speed: 6, endTimeoutMs: 5000 } as const;

let plain: ScriptedDialectServer;
let secure: ScriptedDialectServer;
let cert: SelfSignedCert;

before(async () => {
  cert = await makeSelfSignedCert();
  plain = await startScriptedDialectServer({ adapters: [elevenLabsDialect, deepgramDialect], apiKey: KEY, tokens: ['rtt_once'] });
  secure = await startScriptedDialectServer({ adapters: [openAiDialect, deepgramDialect], apiKey: KEY, tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
});

after(async () => {
  await plain.close();
  await secure.close();
  await cert.remove();
});

const of = (events: readonly SdkEvent[], type: string) => events.filter((e) => e.type === type);
const field = (e: SdkEvent | undefined, name: string): unknown => (e?.data as Record<string, unknown> | undefined)?.[name];
const indexOf = (events: readonly SdkEvent[], type: string) => events.findIndex((e) => e.type === type);

test('ElevenLabs SDK: session_started, partials then committed transcripts (with timestamps); commit answers with what was heard', async () => {
  const { events, refused, error } = await streamWithElevenLabs(plain.wsUrl, KEY, PCM, { ...FAST, commitAtSeconds: [3.9] });
  assert.equal(refused, false, error);
  assert.equal(events[0]?.type, 'session_started');
  assert.equal((field(events[0], 'config') as Record<string, unknown>)['commit_strategy'], 'vad');
  assert.ok(indexOf(events, 'partial_transcript') < indexOf(events, 'committed_transcript'), 'partials come before the first commit');
  assert.deepEqual(of(events, 'committed_transcript').map((e) => field(e, 'text')), ['the quick brown fox', 'jumps over', 'the lazy dog', 'and runs away']);
  const timed = of(events, 'committed_transcript_with_timestamps');
  assert.equal(timed.length, 4);
  const words = field(timed[0], 'words') as { text: string; start: number; end: number; type: string }[];
  assert.deepEqual(words.filter((w) => w.type === 'word').map((w) => w.text), ['the', 'quick', 'brown', 'fox']);
  assert.ok(words.every((w) => w.end >= w.start && w.start >= 0.5 && w.end <= 2.0));
  const session = plain.sessions.find((s) => s.dialect === 'elevenlabs');
  assert.ok(session?.commands.some((c) => c.kind === 'flush'));
  assert.ok(session?.events.some((e) => e.type === 'transcript.final' && e.flushed && e.final.text === 'jumps over'), 'the commit was a real flush');
  // ElevenLabs has no end message and its SDK closes without a status: the server must take 1005 as a normal end.
  assert.equal(session?.closeCode, 1005);
});

test('ElevenLabs SDK: a wrong key is refused; a single-use token works once', async () => {
  const bad = await streamWithElevenLabs(plain.wsUrl, 'wrong-key', PCM.subarray(0, 1600), FAST);
  assert.equal(bad.refused, true);
  assert.match(bad.error ?? '', /401/);
  const once = await streamWithElevenLabs(plain.wsUrl, 'rtt_once', PCM.subarray(0, 16000), FAST);
  assert.equal(once.refused, false, once.error);
  const twice = await streamWithElevenLabs(plain.wsUrl, 'rtt_once', PCM.subarray(0, 1600), FAST);
  assert.equal(twice.refused, true);
});

test('OpenAI SDK over wss: created/updated, VAD events, deltas and completions share item ids; commit is answered at once', async () => {
  const { events, refused, error, closeCode } = await streamWithOpenAI(secure.wsUrl, KEY, PCM, { ...FAST, ca: cert.cert, commitAtSeconds: [3.9] });
  assert.equal(refused, false, error);
  assert.equal(error, undefined);
  assert.equal(events[0]?.type, 'session.created');
  assert.ok(of(events, 'session.updated').length === 1);
  const completed = of(events, 'conversation.item.input_audio_transcription.completed');
  assert.deepEqual(completed.map((e) => field(e, 'transcript')), ['the quick brown fox', 'jumps over', 'the lazy dog', 'and runs away']);
  const firstItem = field(completed[0], 'item_id');
  const ofFirst = events.filter((e) => field(e, 'item_id') === firstItem).map((e) => e.type);
  assert.deepEqual(ofFirst.filter((t, i) => t !== ofFirst[i - 1]), [
    'input_audio_buffer.speech_started', 'conversation.item.input_audio_transcription.delta', 'input_audio_buffer.speech_stopped',
    'input_audio_buffer.committed', 'conversation.item.input_audio_transcription.completed',
  ]);
  const committed = of(events, 'input_audio_buffer.committed');
  assert.equal(committed.length, 4);
  assert.equal(field(committed[1], 'previous_item_id'), firstItem, 'items are chained');
  assert.deepEqual(field(completed[0], 'usage'), { type: 'duration', seconds: 1.5 });
  assert.equal(closeCode, 1000);
});

test('OpenAI SDK: a wrong key is refused before the upgrade', async () => {
  const bad = await streamWithOpenAI(secure.wsUrl, 'wrong-key', PCM.subarray(0, 2400), { ...FAST, ca: cert.cert });
  assert.equal(bad.refused, true);
  assert.match(bad.error ?? '', /401/);
});

test('Deepgram SDK: interim then final Results, SpeechStarted, UtteranceEnd, Finalize → from_finalize, CloseStream → Metadata and close 1000', async () => {
  const before = plain.sessions.filter((s) => s.dialect === 'deepgram').length;
  const { events, refused, error, closeCode } = await streamWithDeepgram(plain.wsUrl, KEY, PCM, { ...FAST, commitAtSeconds: [3.9] });
  assert.equal(refused, false, error);
  const results = of(events, 'Results');
  const transcript = (e: SdkEvent | undefined) => ((field(e, 'channel') as { alternatives: { transcript: string }[] }).alternatives[0]?.transcript);
  const finals = results.filter((r) => field(r, 'is_final') === true);
  assert.ok(results.findIndex((r) => field(r, 'is_final') === false) < results.findIndex((r) => field(r, 'is_final') === true), 'interim results come first');
  assert.deepEqual(finals.map(transcript), ['the quick brown fox', 'jumps over', 'the lazy dog', 'and runs away']);
  assert.deepEqual(finals.map((r) => [field(r, 'speech_final'), field(r, 'from_finalize')]), [[true, false], [false, true], [true, false], [false, false]]);
  assert.ok(of(events, 'SpeechStarted').length >= 3);
  assert.equal(of(events, 'UtteranceEnd').length, 2);
  const metadata = of(events, 'Metadata');
  assert.equal(metadata.length, 1);
  assert.equal(field(metadata[0], 'duration'), 7.2);
  assert.match(String(field(metadata[0], 'request_id')), /^rt_scripted_/);
  assert.equal(closeCode, 1000);
  assert.equal(plain.sessions.filter((s) => s.dialect === 'deepgram').length, before + 1, 'the SDK did not reconnect');
});

test('Deepgram: a wrong key is refused (no reconnection storm); the browser token subprotocol is answered', async () => {
  const before = plain.sessions.length;
  const bad = await streamWithDeepgram(plain.wsUrl, 'wrong-key', PCM.subarray(0, 1600), FAST);
  assert.equal(bad.refused, true);
  assert.match(bad.error ?? '', /401/);
  assert.equal(plain.sessions.length, before);
  const ws = new WebSocket(`${plain.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000`, ['token', KEY]);
  const protocol = await new Promise<string>((resolve, reject) => {
    ws.once('open', () => resolve(ws.protocol));
    ws.once('error', reject);
  });
  assert.equal(protocol, 'token');
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.send(JSON.stringify({ type: 'CloseStream' }));
  assert.equal(await closed, 1000);
});

test('OpenAI browser-style auth: the key in the openai-insecure-api-key subprotocol, `realtime` answered', async () => {
  const ws = new WebSocket(`${secure.wsUrl}/v1/realtime?intent=transcription`, ['realtime', `openai-insecure-api-key.${KEY}`], { ca: cert.cert });
  const first = await new Promise<{ protocol: string; type: unknown }>((resolve, reject) => {
    ws.once('message', (d: Buffer) => resolve({ protocol: ws.protocol, type: (JSON.parse(d.toString()) as { type: unknown }).type }));
    ws.once('error', reject);
  });
  assert.deepEqual(first, { protocol: 'realtime', type: 'session.created' });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.close(1000);
  assert.equal(await closed, 1000);
});

test('Deepgram SDK over wss trusts a test CA through an https agent', async () => {
  const { events, refused, error, closeCode } = await streamWithDeepgram(secure.wsUrl, KEY, PCM.subarray(0, 16000 * 2.6), { ...FAST, ca: cert.cert });
  assert.equal(refused, false, error);
  assert.equal(of(events, 'Results').filter((r) => field(r, 'is_final') === true).length, 1);
  assert.equal(field(of(events, 'Metadata')[0], 'duration'), 2.6);
  assert.equal(closeCode, 1000);
});

test('a bad option refuses the upgrade with 400 and says which', async () => {
  const status = await new Promise<{ code: number; body: string }>((resolve, reject) => {
    const ws = new WebSocket(`${plain.wsUrl}/v1/listen?encoding=opus&sample_rate=16000`, { headers: { authorization: `Token ${KEY}` } });
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        req.destroy(); // ws leaves the connection to whoever listens for this event
        resolve({ code: res.statusCode ?? 0, body });
      });
    });
    ws.once('open', () => reject(new Error('upgrade should be refused')));
    ws.once('error', () => undefined);
  });
  assert.equal(status.code, 400);
  assert.match((JSON.parse(status.body) as { error: { message: string } }).error.message, /encoding "opus" is not supported/);
});
