/**
 * The streaming engine on the real Kafka with real speech (Moonshine tiny + Silero VAD): a test gateway publishes
 * sessions at real-time pace in 100 ms frames and reads its reply topic; a stand-in session actor writes the
 * snapshots the engine commits by. Asserted: partials before each final, one final per sentence in order with the
 * batch transcript's words (WER ≤ 10 %), flush finalises at once, end → rt.ended with the audio length, an unknown
 * model → a non-retryable rt.error. The latencies seen are printed, never asserted.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../core/config.js';
import { ATTR, REALTIME_ATTR, SPAN } from '../../core/observability-names.js';
import { createRecognizer, wordErrors, type Recognizer } from '../../engines/asr/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { REALTIME_INPUT, connectStreams, prefixed, realtimeEngineGroupId, type RealtimeReply, type StreamRuntime } from '../../streams/index.js';
import { librivoxSet } from '../../harness/speech-fixtures.js';
import { startTestKafka, type TestKafka } from '../../harness/kafka-fixture.js';
import {
  RATE, SessionActorStandIn, recordingTracer, TestGateway, createTopics, espeakParts, layOut, sessionConfig, startInProcessEngine, testLog,
  type ArrivedReply, type InProcessEngine, type SpeechStream,
} from './realtime-engine-fixture.js';

const SENTENCES = [
  'the weather today is cold and windy with a chance of rain in the evening',
  'please send the quarterly report to the finance team before friday',
  'she opened the window and looked at the garden for a long time',
];

const log = testLog();
const prefix = `rtengine-${randomUUID().slice(0, 8)}.`;
let kafka: TestKafka;
let streams: StreamRuntime;
let gateway: TestGateway;
let actor: SessionActorStandIn;
let engine: InProcessEngine;
let recognizer: Recognizer;
const traces = recordingTracer();
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

before(async () => {
  const config = loadConfig();
  kafka = await startTestKafka(log);
  streams = await connectStreams({ brokers: kafka.brokers, clientId: 'realtime-engine-test-client', topicPrefix: prefix, log });
  await createTopics(streams, prefix, 'gw1');
  gateway = new TestGateway(streams, prefix, 'gw1', log);
  actor = new SessionActorStandIn(streams, prefix, log);
  await Promise.all([gateway.start(), actor.start()]);
  engine = await startInProcessEngine(kafka.brokers, prefix, config.homeDir, log, traces.tracer);
  recognizer = await createRecognizer('moonshine-tiny', { homeDir: config.homeDir });
  await recognizer.load();
});

after(async () => {
  await engine?.close();
  await gateway?.close();
  await actor?.close();
  await recognizer?.close();
  await streams?.close();
  await kafka?.stop();
});

async function skippedPartials(): Promise<number> {
  return (await engine.metrics.partialsSkipped.get()).values.reduce((a, v) => a + v.value, 0);
}

async function batchText(audio: Float32Array): Promise<string> {
  return (await recognizer.recognize({ audio })).text;
}

const finals = (rs: ArrivedReply[]): (ArrivedReply & { reply: Extract<RealtimeReply, { type: 'rt.final' }> })[] =>
  rs.filter((r): r is ArrivedReply & { reply: Extract<RealtimeReply, { type: 'rt.final' }> } => r.reply.type === 'rt.final');

function ms(values: number[]): string {
  const s = [...values].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return `p50 ${Math.round(q(0.5))} ms, max ${Math.round(s[s.length - 1] ?? NaN)} ms (n=${s.length})`;
}

/** Streams a laid-out speech stream, ends the session, and checks and reports what came back. */
async function runSession(sessionId: string, speech: SpeechStream, figures: { firstPartial: number[]; final: number[]; withPartials: number }): Promise<void> {
  await gateway.open(sessionId, sessionConfig(), TRACEPARENT);
  await gateway.stream(sessionId, speech.audio);
  await gateway.control(sessionId, 'end', 1);
  const ended = await gateway.waitFor(sessionId, (r) => r.type === 'rt.ended');
  const replies = gateway.replies(sessionId);
  const fs = finals(replies);
  assert.equal(fs.length, speech.parts.length, `one final per spoken part: ${fs.map((f) => f.reply.final.text).join(' | ')}`);
  assert.deepEqual(fs.map((f) => f.reply.final.utterance), [...fs.keys()].map((i) => fs[0]!.reply.final.utterance + i), 'finals in order, each index once');
  // Word error over the whole session (one slip in a 12-word sentence is already 8 %, see the failover test).
  const batchTexts: string[] = [];
  for (const part of speech.parts) batchTexts.push(await batchText(part.audio));
  const liveText = fs.map((f) => f.reply.final.text).join(' ');
  const wer = wordErrors(batchTexts.join(' '), liveText);
  assert.ok(wer.wer <= 0.1, `finals "${liveText}" vs batch "${batchTexts.join(' ')}": WER ${wer.wer}`);
  for (const [i, f] of fs.entries()) {
    const part = speech.parts[i]!;
    const idx = replies.indexOf(f);
    const partialsBefore = replies.slice(0, idx).filter((r) => r.reply.type === 'rt.partial' && r.reply.utterance === f.reply.final.utterance);
    // Partials give way when the engine falls behind real time (adaptive cadence, counted); finals never do.
    if (partialsBefore.length === 0) assert.ok(await skippedPartials() > 0, `partials before final ${i}, or partials shed under load`);
    else figures.withPartials += 1;
    assert.ok(!replies.slice(idx + 1).some((r) => r.reply.type === 'rt.partial' && r.reply.utterance === f.reply.final.utterance), 'no partial of an utterance after its final');
    assert.ok(f.reply.receivedAt > 0 && f.reply.final.end > f.reply.final.start);
    if (partialsBefore[0] !== undefined) figures.firstPartial.push(partialsBefore[0].arrivedAt - gateway.sentAtOf(sessionId, part.onset));
    figures.final.push(f.arrivedAt - gateway.sentAtOf(sessionId, part.end));
  }
  assert.equal(ended.reply.type, 'rt.ended');
  if (ended.reply.type !== 'rt.ended') return;
  assert.ok(Math.abs(ended.reply.audioSeconds - speech.audio.length / RATE) < 0.11, `rt.ended audio ${ended.reply.audioSeconds} s vs ${speech.audio.length / RATE} s sent`);
  assert.equal(ended.reply.finals, fs.length);
  assert.ok(replies.some((r) => r.reply.type === 'rt.progress'), 'progress replies');
  assert.ok(replies.indexOf(ended) === replies.length - 1 || replies.slice(replies.indexOf(ended) + 1).every((r) => r.reply.type === 'rt.progress'), 'rt.ended comes after every final');
}

test('espeak-ng sentences with 1 s pauses, then a LibriVox clip: partials, then one final per sentence matching the batch transcript, then rt.ended', async (t) => {
  const espeak = layOut(await espeakParts(SENTENCES), 1.0, 0.5, 1.5);
  const clip = (await librivoxSet())[0]!;
  const librivox = layOut([{ text: clip.reference, audio: clip.audio }], 0, 0.5, 1.5);
  const figures = { firstPartial: [] as number[], final: [] as number[], withPartials: 0 };
  await runSession(`espeak-${randomUUID()}`, espeak, figures);
  await runLibrivox(`librivox-${randomUUID()}`, librivox, clip.audio);
  assert.ok(figures.withPartials >= 1, 'partials reach the client before finals');
  console.log(`[figures] finals preceded by partials: ${figures.withPartials} of ${SENTENCES.length}; partials shed by the cadence: ${await skippedPartials()}`);
  t.diagnostic(`first partial after speech onset (frame sent → partial read): ${ms(figures.firstPartial)}`);
  t.diagnostic(`final after end of speech (frame sent → final read): ${ms(figures.final)}`);
  console.log(`[figures] first partial after onset: ${ms(figures.firstPartial)}; final after end of speech: ${ms(figures.final)}`);
  // One realtime.utterance span per final, child of the session's trace, with its latencies.
  const spans = traces.spans.filter((x) => x.name === SPAN.realtimeUtterance && String(x.attributes[ATTR.sessionId]).startsWith('espeak-'));
  assert.equal(spans.length, SENTENCES.length);
  for (const x of spans) {
    assert.equal(x.options?.parentCarrier?.['traceparent'], TRACEPARENT);
    assert.equal(typeof x.attributes[REALTIME_ATTR.finalLatencyMs], 'number');
  }
  // Per-hop latency: both hops the engine ends were observed.
  const hops = new Set((await engine.hop.get()).values.filter((v) => v.metricName?.endsWith('_count') === true && v.value > 0).map((v) => v.labels['hop']));
  assert.ok(hops.has('gateway_to_engine') && hops.has('engine'), `hops observed: ${[...hops].join(',')}`);
  // The stand-in actor recorded every final once.
  for (const [id, s] of actor.states) if (id.startsWith('espeak-')) assert.equal(s.finals.length, SENTENCES.length);
});

/** A LibriVox recording may be split into several utterances: their text together matches the batch transcript. */
async function runLibrivox(sessionId: string, speech: SpeechStream, clip: Float32Array): Promise<void> {
  await gateway.open(sessionId, sessionConfig());
  await gateway.stream(sessionId, speech.audio);
  await gateway.control(sessionId, 'end', 1);
  const ended = await gateway.waitFor(sessionId, (r) => r.type === 'rt.ended');
  const fs = finals(gateway.replies(sessionId));
  assert.ok(fs.length >= 1);
  const text = fs.map((f) => f.reply.final.text).join(' ');
  const batch = await batchText(clip);
  const wer = wordErrors(batch, text);
  console.log(`[figures] LibriVox clip: ${fs.length} finals, WER against the batch transcript ${(wer.wer * 100).toFixed(1)} %`);
  assert.ok(wer.wer <= 0.1, `streamed "${text}" vs batch "${batch}": WER ${wer.wer}`);
  assert.ok(ended.reply.type === 'rt.ended' && ended.reply.finals === fs.length);
}

test('flush finalises the open utterance at once (no pause follows); the session goes on with the next index; end → rt.ended', async (t) => {
  const sessionId = `flush-${randomUUID()}`;
  const [first, second] = await espeakParts(SENTENCES.slice(0, 2));
  // No silence after the first sentence: only the flush can close it.
  const one = layOut([first!], 0, 0.5, 0);
  await gateway.open(sessionId, sessionConfig());
  await gateway.stream(sessionId, one.audio);
  const flushedAt = await gateway.control(sessionId, 'flush', 1);
  const flushed = await gateway.waitFor(sessionId, (r) => r.type === 'rt.final');
  assert.ok(flushed.reply.type === 'rt.final');
  if (flushed.reply.type !== 'rt.final') return;
  assert.equal(flushed.reply.final.reason, 'flush');
  const batch = await batchText(first!.audio);
  const text = flushed.reply.final.text;
  // One 14-word sentence allows one differing word; when batch itself misheard (its decode is not bit-for-bit
  // repeatable across runs), the flushed text must be at least as close as batch's to what espeak said.
  if (wordErrors(batch, text).wer > 0.1) {
    const spoken = SENTENCES[0] ?? '';
    assert.ok(wordErrors(spoken, text).wer <= wordErrors(spoken, batch).wer, `flushed "${text}" vs batch "${batch}", spoken "${spoken}"`);
  }
  const flushLatency = flushed.arrivedAt - flushedAt;
  t.diagnostic(`flush → final: ${flushLatency} ms`);
  console.log(`[figures] flush → final: ${flushLatency} ms`);
  const two = layOut([second!], 0, 0.3, 1.5);
  await gateway.stream(sessionId, two.audio, one.audio.length);
  await gateway.control(sessionId, 'end', 2);
  const ended = await gateway.waitFor(sessionId, (r) => r.type === 'rt.ended');
  const fs = finals(gateway.replies(sessionId));
  assert.deepEqual(fs.map((f) => f.reply.final.utterance), [flushed.reply.final.utterance, flushed.reply.final.utterance + 1]);
  assert.ok(ended.reply.type === 'rt.ended' && Math.abs(ended.reply.audioSeconds - (one.audio.length + two.audio.length) / RATE) < 0.11);
});

test('commit_strategy manual: two sentences 2.5 s apart stay one utterance; the pause is reported as rt.vad speech_end/speech_start of it; only the flush finalises both', async () => {
  const sessionId = `manual-${randomUUID()}`;
  const speech = layOut(await espeakParts(SENTENCES.slice(0, 2)), 2.5, 0.5, 1.5);
  await gateway.open(sessionId, sessionConfig({ commitStrategy: 'manual' }));
  await gateway.stream(sessionId, speech.audio);
  // The last pause's report may still be on its way (it comes 0.7 s before the end of the tail).
  const vadCount = (): number => gateway.replies(sessionId).filter((r) => r.reply.type === 'rt.vad').length;
  for (const deadline = Date.now() + 10_000; vadCount() < 4 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
  const before = gateway.replies(sessionId);
  assert.equal(finals(before).length, 0, 'no final before the flush, though the pause was five times minSilence');
  const vad = before.flatMap((r) => (r.reply.type === 'rt.vad' ? [r.reply] : []));
  assert.deepEqual(vad.map((v) => `${v.event}:${v.utterance}`), ['speech_start:0', 'speech_end:0', 'speech_start:0', 'speech_end:0'], 'the VAD still reports each pause and the speech after it');
  await gateway.control(sessionId, 'flush', 1);
  const flushed = await gateway.waitFor(sessionId, (r) => r.type === 'rt.final');
  assert.ok(flushed.reply.type === 'rt.final');
  if (flushed.reply.type !== 'rt.final') return;
  assert.equal(flushed.reply.final.reason, 'flush');
  assert.equal(flushed.reply.final.utterance, 0);
  const wer = wordErrors(SENTENCES.slice(0, 2).join(' '), flushed.reply.final.text);
  assert.ok(wer.wer <= 0.15, `one final holds both sentences: "${flushed.reply.final.text}" (WER ${wer.wer})`);
  await gateway.control(sessionId, 'end', 2);
  const ended = await gateway.waitFor(sessionId, (r) => r.type === 'rt.ended');
  assert.ok(ended.reply.type === 'rt.ended' && ended.reply.finals === 1, 'end finalised nothing more');
});

test('the committed realtime.input offset stops at the open utterance: it moves past an utterance only once the actor recorded its final', async () => {
  const sessionId = `commit-${randomUUID()}`;
  const speech = layOut(await espeakParts(SENTENCES.slice(0, 2)), 1.0, 0.5, 1.5);
  const [one, two] = speech.parts as [typeof speech.parts[0], typeof speech.parts[0]];
  const group = realtimeEngineGroupId(prefix);
  const topic = prefixed(prefix, REALTIME_INPUT.name);
  let check: Promise<{ committed: bigint; resumeOffset: bigint }> | undefined;
  await gateway.open(sessionId, sessionConfig());
  await gateway.stream(sessionId, speech.audio, 0, (_i, sample) => {
    // In the middle of the second sentence: the first is final (and recorded), the second is open.
    if (check !== undefined || sample < (two.onset + two.end) / 2) return;
    const partition = gateway.frameOf(sessionId, 0).partition;
    check = (async () => {
      for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(50)) {
        const state = actor.states.get(sessionId);
        if (state?.finals.length !== 1 || state.resumeOffset === undefined) continue;
        const offsets = await streams.admin.fetchOffsets({ groupId: group, topics: [topic] });
        const committed = offsets[0]?.partitions.find((p) => p.partition === partition)?.offset;
        if (committed !== undefined && committed === state.resumeOffset) return { committed: BigInt(committed), resumeOffset: BigInt(state.resumeOffset) };
      }
      throw new Error('the committed offset never reached the resume offset of the recorded final');
    })();
  });
  const { committed } = await check!;
  await gateway.control(sessionId, 'end', 1);
  await gateway.waitFor(sessionId, (r) => r.type === 'rt.ended');
  // Past the first sentence's speech (its final is durable), not past the start of the second (it was open).
  assert.ok(committed > gateway.frameOf(sessionId, one.end).offset, `committed ${committed} past the first sentence's last frame`);
  assert.ok(committed <= gateway.frameOf(sessionId, two.onset).offset, `committed ${committed} not past the second sentence's first frame`);
});

test('a session naming a model that is not installed gets a non-retryable rt.error', async () => {
  const sessionId = `nomodel-${randomUUID()}`;
  await gateway.open(sessionId, sessionConfig({ model: 'no-such-model' }));
  const err = await gateway.waitFor(sessionId, (r) => r.type === 'rt.error');
  assert.ok(err.reply.type === 'rt.error');
  if (err.reply.type !== 'rt.error') return;
  assert.equal(err.reply.retryable, false);
  assert.equal(err.reply.code, 'model_unavailable');
});
