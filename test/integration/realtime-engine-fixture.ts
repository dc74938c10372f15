/**
 * What the streaming-engine integration tests share: real speech laid out as a live stream, a test "gateway" that
 * publishes a session's input at real-time pace and reads its reply topic, the engine in-process, and a STAND-IN for
 * the session actor (built separately in actors/): it records rt.utterance.final / rt.session.ended from
 * realtime.events and writes `rt.session.snapshot` records to sessions.state in exactly the format of
 * streams/realtime-messages.ts, which is all the engine reads from the actor.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../../core/clock.js';
import { createLogger, type Logger } from '../../core/logger.js';
import { createRegistry, realtimeEngineMetrics, realtimeHopMetric, type RealtimeEngineMetrics, type RealtimeHopMetric } from '../../core/metrics.js';
import { noopTracer, type SpanAttributes, type StartSpanOptions, type Tracer } from '../../core/telemetry/tracer.js';
import { SileroVad } from '../../engines/vad/index.js';
import { ModelPool } from '../../engines/realtime/model-pool.js';
import { RealtimeEngine } from '../../engines/realtime/realtime-engine.js';
import { floatToPcm16 } from '../../engines/realtime/pcm.js';
import {
  DEAD_LETTER, REALTIME_EVENTS, REALTIME_INPUT, SCHEMA_VERSION, SESSION_STATE, StreamConsumer, StreamProducer, checkRealtimeEvent, checkRealtimeReply,
  connectStreams, decodeMessage, encodeMessage, ensureTopics, newMessageHeaders, prefixed, realtimeReplyTopic,
  type RealtimeEvent, type RealtimeInput, type SendResult, type RealtimeReply, type RealtimeSessionConfig, type RealtimeSessionState, type StreamRuntime,
} from '../../streams/index.js';
import { synthesize } from '../../harness/speech-fixtures.js';

export const RATE = 16000;
export const FRAME = RATE / 10;

export function testLog(): Logger {
  return createLogger({ service: 'realtime-engine-test', level: (process.env['DALSTON_LOG_LEVEL'] as 'warn' | undefined) ?? 'warn' });
}

export function sessionConfig(over: Partial<RealtimeSessionConfig> = {}): RealtimeSessionConfig {
  return {
    model: 'moonshine-tiny', commitStrategy: 'vad', partials: true, retention: false, enhanceOnEnd: false, inputFormat: 'pcm_s16le/16000/1', dialect: 'native', ...over,
  };
}

/** Topics of one test stack (its own prefix), the gateway's reply topic included. */
export async function createTopics(streams: StreamRuntime, prefix: string, gatewayId: string): Promise<void> {
  await ensureTopics(streams.kafka, [REALTIME_INPUT, REALTIME_EVENTS, SESSION_STATE, DEAD_LETTER, realtimeReplyTopic(gatewayId)].map((t) => ({ ...t, name: prefixed(prefix, t.name) })));
}

// ---------------------------------------------------------------------------------------------------------------
// Speech laid out as a stream
// ---------------------------------------------------------------------------------------------------------------

export interface SpokenPart {
  readonly text: string;
  /** Where the sentence's sound is in the stream, in samples. */
  readonly onset: number;
  readonly end: number;
  /** The sentence alone (for the batch transcript). */
  readonly audio: Float32Array;
}

export interface SpeechStream {
  readonly audio: Float32Array;
  readonly parts: SpokenPart[];
}

function loud(audio: Float32Array): { first: number; last: number } {
  let first = -1;
  let last = -1;
  for (let i = 0; i < audio.length; i++) {
    if (Math.abs(audio[i] ?? 0) > 0.01) {
      if (first < 0) first = i;
      last = i;
    }
  }
  return { first: Math.max(0, first), last: Math.max(0, last) };
}

/** Parts separated by `pauseSeconds` of silence, with `leadSeconds` before and `tailSeconds` after. */
export function layOut(parts: readonly { text: string; audio: Float32Array }[], pauseSeconds: number, leadSeconds: number, tailSeconds: number): SpeechStream {
  const pause = Math.round(pauseSeconds * RATE);
  const total = Math.round(leadSeconds * RATE) + parts.reduce((a, p) => a + p.audio.length, 0) + pause * Math.max(0, parts.length - 1) + Math.round(tailSeconds * RATE);
  const audio = new Float32Array(total);
  const out: SpokenPart[] = [];
  let at = Math.round(leadSeconds * RATE);
  for (const [i, p] of parts.entries()) {
    audio.set(p.audio, at);
    const l = loud(p.audio);
    out.push({ text: p.text, onset: at + l.first, end: at + l.last, audio: p.audio });
    at += p.audio.length + (i < parts.length - 1 ? pause : 0);
  }
  return { audio, parts: out };
}

export async function espeakParts(sentences: readonly string[]): Promise<{ text: string; audio: Float32Array }[]> {
  const out: { text: string; audio: Float32Array }[] = [];
  for (const text of sentences) out.push({ text, audio: await synthesize(text) });
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The test "gateway": publishes input, reads replies
// ---------------------------------------------------------------------------------------------------------------

export interface ArrivedReply {
  readonly reply: RealtimeReply;
  /** When the test read it (epoch ms). */
  readonly arrivedAt: number;
}

export class TestGateway {
  readonly gatewayId: string;
  readonly replyTopic: string;
  readonly #streams: StreamRuntime;
  readonly #prefix: string;
  readonly #replies: StreamConsumer<RealtimeReply>;
  readonly #received = new Map<string, ArrivedReply[]>();
  /** Each frame sent, by session: its first session sample and sentAt, in order. */
  readonly frameSentAt = new Map<string, { sample: number; sentAt: number; partition: number; offset: bigint }[]>();
  readonly #seq = new Map<string, number>();

  constructor(streams: StreamRuntime, prefix: string, gatewayId: string, log: Logger) {
    this.#streams = streams;
    this.#prefix = prefix;
    this.gatewayId = gatewayId;
    this.replyTopic = prefixed(prefix, realtimeReplyTopic(gatewayId).name);
    this.#replies = new StreamConsumer<RealtimeReply>({
      kafka: streams.kafka, groupId: `${prefix}test-gateway-${randomUUID()}`, topics: [this.replyTopic], decode: (v) => decodeMessage(checkRealtimeReply, v),
      handler: async (m) => {
        const list = this.#received.get(m.value.sessionId) ?? [];
        list.push({ reply: m.value, arrivedAt: Date.now() });
        this.#received.set(m.value.sessionId, list);
      },
      deadLetter: streams.deadLetter, log, fromBeginning: true, commitOffsets: false, maxWaitTimeMs: 20,
    });
  }

  async start(): Promise<void> {
    await this.#replies.start();
  }

  async close(): Promise<void> {
    await this.#replies.close();
  }

  replies(sessionId: string): ArrivedReply[] {
    return [...(this.#received.get(sessionId) ?? [])];
  }

  async #input(message: RealtimeInput): Promise<SendResult> {
    return this.#streams.producer.send(prefixed(this.#prefix, REALTIME_INPUT.name), { key: message.sessionId, value: encodeMessage(message), headers: newMessageHeaders({ requestId: 'test' }) });
  }

  /** What the gateway does when a client connects: the actor hears `opened`, the engine gets `start`. */
  async open(sessionId: string, config: RealtimeSessionConfig, traceparent?: string): Promise<void> {
    const common = { ...(traceparent !== undefined && { traceparent }), sessionId, tenantId: 'test-tenant', keyId: 'test-key', requestId: `req-${sessionId}`, gatewayId: this.gatewayId, replyTopic: this.replyTopic, config, startedAt: Date.now() };
    await this.#streams.producer.send(prefixed(this.#prefix, REALTIME_EVENTS.name), {
      key: sessionId, value: encodeMessage({ v: SCHEMA_VERSION, type: 'rt.session.opened', ...common }), headers: newMessageHeaders({ requestId: common.requestId }),
    });
    await this.#input({ v: SCHEMA_VERSION, type: 'rt.session.start', ...common });
  }

  /**
   * Sends `audio` in 100 ms frames at real-time pace (on an absolute schedule, so send time does not drift),
   * starting at session sample `from`. `onFrame(i)` runs before frame i is sent.
   */
  async stream(sessionId: string, audio: Float32Array, from = 0, onFrame?: (frame: number, sample: number) => Promise<void> | void): Promise<void> {
    const t0 = Date.now();
    const sent = this.frameSentAt.get(sessionId) ?? [];
    this.frameSentAt.set(sessionId, sent);
    for (let i = 0, at = 0; at < audio.length; i++, at += FRAME) {
      await onFrame?.(i, from + at);
      const due = t0 + i * 100;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      const sentAt = Date.now();
      const seq = this.#seq.get(sessionId) ?? 0;
      this.#seq.set(sessionId, seq + 1);
      const r = await this.#input({ v: SCHEMA_VERSION, type: 'rt.audio', sessionId, seq, offset: from + at, pcm: floatToPcm16(audio.subarray(at, at + FRAME)), sentAt });
      sent.push({ sample: from + at, sentAt, partition: r.partition, offset: BigInt(r.baseOffset) });
    }
  }

  /** sentAt of the frame that held session sample `sample`. */
  sentAtOf(sessionId: string, sample: number): number {
    return this.frameOf(sessionId, sample).sentAt;
  }

  /** The frame that held session sample `sample`: when it was sent, and where it sits in realtime.input. */
  frameOf(sessionId: string, sample: number): { sample: number; sentAt: number; partition: number; offset: bigint } {
    const f = this.frameSentAt.get(sessionId)?.findLast((x) => x.sample <= sample);
    if (f === undefined) throw new Error(`no frame of ${sessionId} holds sample ${sample}`);
    return f;
  }

  async control(sessionId: string, action: 'flush' | 'clear' | 'end', seq = 0): Promise<number> {
    const sentAt = Date.now();
    await this.#input({ v: SCHEMA_VERSION, type: 'rt.control', sessionId, action, seq, sentAt });
    return sentAt;
  }

  async waitFor(sessionId: string, pred: (r: RealtimeReply) => boolean, timeoutMs = 60_000): Promise<ArrivedReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.replies(sessionId).find((r) => pred(r.reply));
      if (hit !== undefined) return hit;
      if (Date.now() > deadline) throw new Error(`no matching reply for ${sessionId} within ${timeoutMs} ms; got ${this.replies(sessionId).map((r) => r.reply.type).join(',')}`);
      await sleep(20);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// STAND-IN for the session actor (actors/ builds the real one): events in, snapshots out
// ---------------------------------------------------------------------------------------------------------------

export class SessionActorStandIn {
  readonly #streams: StreamRuntime;
  readonly #stateTopic: string;
  readonly #consumer: StreamConsumer<RealtimeEvent>;
  readonly states = new Map<string, RealtimeSessionState>();
  /** rt.utterance.final events whose index was already recorded (redelivered after a failover). */
  readonly duplicateFinals = new Map<string, number>();

  constructor(streams: StreamRuntime, prefix: string, log: Logger) {
    this.#streams = streams;
    this.#stateTopic = prefixed(prefix, SESSION_STATE.name);
    this.#consumer = new StreamConsumer<RealtimeEvent>({
      kafka: streams.kafka, groupId: `${prefix}standin-session-actor`, topics: [prefixed(prefix, REALTIME_EVENTS.name)],
      decode: (v) => decodeMessage(checkRealtimeEvent, v), handler: (m) => this.#on(m.value), deadLetter: streams.deadLetter, log,
      fromBeginning: true, maxWaitTimeMs: 20, partitionsConsumedConcurrently: REALTIME_EVENTS.partitions,
    });
  }

  async start(): Promise<void> {
    await this.#consumer.start();
  }

  async close(): Promise<void> {
    await this.#consumer.close();
  }

  async #on(e: RealtimeEvent): Promise<void> {
    const now = Date.now();
    const s = this.states.get(e.sessionId);
    switch (e.type) {
      case 'rt.session.opened': {
        if (s !== undefined) return;
        await this.#write({
          sessionId: e.sessionId, tenantId: e.tenantId, keyId: e.keyId, requestId: e.requestId, ...(e.traceparent !== undefined && { traceparent: e.traceparent }),
          status: 'active', startedAt: e.startedAt, updatedAt: now, gatewayId: e.gatewayId, replyTopic: e.replyTopic, config: e.config, finals: [],
          checkpoint: { version: 1, audioOffsetSamples: 0, nextUtterance: 0, finalizedCount: 0 }, audioSeconds: 0, engineEnded: false, gatewayClosed: false, revision: 1,
        });
        return;
      }
      case 'rt.utterance.final': {
        if (s === undefined) return;
        const last = s.finals[s.finals.length - 1]?.utterance ?? -1;
        if (e.final.utterance <= last) {
          this.duplicateFinals.set(e.sessionId, (this.duplicateFinals.get(e.sessionId) ?? 0) + 1);
          return;
        }
        await this.#write({ ...s, finals: [...s.finals, e.final], checkpoint: e.checkpoint, partition: e.partition, resumeOffset: e.resumeOffset, updatedAt: now, revision: s.revision + 1 });
        return;
      }
      case 'rt.session.ended': {
        if (s === undefined) return;
        await this.#write({ ...s, status: 'completed', engineEnded: true, audioSeconds: e.audioSeconds, endedAt: e.at, updatedAt: now, revision: s.revision + 1 });
        return;
      }
      default:
        return;
    }
  }

  async #write(state: RealtimeSessionState): Promise<void> {
    await this.#streams.producer.send(this.#stateTopic, { key: state.sessionId, value: encodeMessage({ v: SCHEMA_VERSION, type: 'rt.session.snapshot', state }), headers: newMessageHeaders() });
    this.states.set(state.sessionId, state);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The engine in-process
// ---------------------------------------------------------------------------------------------------------------

/** Spans the engine started, as it asked for them (name, attributes, parent carrier, start time). */
export interface RecordedSpan {
  readonly name: string;
  readonly attributes: SpanAttributes;
  readonly options: StartSpanOptions | undefined;
}

export function recordingTracer(): { tracer: Tracer; spans: RecordedSpan[] } {
  const spans: RecordedSpan[] = [];
  return {
    spans,
    tracer: {
      ...noopTracer,
      startSpan: async (name, attributes, fn, options) => {
        spans.push({ name, attributes, options });
        return noopTracer.startSpan(name, attributes, fn, options);
      },
    },
  };
}

export interface InProcessEngine {
  readonly engine: RealtimeEngine;
  readonly metrics: RealtimeEngineMetrics;
  readonly hop: RealtimeHopMetric;
  close(): Promise<void>;
}

export async function startInProcessEngine(brokers: string[], prefix: string, homeDir: string, log: Logger, tracer: Tracer = noopTracer): Promise<InProcessEngine> {
  const streams = await connectStreams({ brokers, clientId: 'realtime-engine-test', topicPrefix: prefix, log });
  const replies = new StreamProducer({ kafka: streams.kafka, log });
  await replies.connect();
  const vad = await SileroVad.load(homeDir);
  const models = new ModelPool({ homeDir, log });
  await models.get('moonshine-tiny');
  const registry = createRegistry();
  const metrics = realtimeEngineMetrics(registry);
  const hop = realtimeHopMetric(registry);
  const engine = new RealtimeEngine({
    kafka: streams.kafka, admin: streams.admin, replies, events: streams.producer, deadLetter: streams.deadLetter, topicPrefix: prefix,
    models, vad, clock: systemClock, log, tracer, metrics, hop,
  });
  await engine.start();
  return {
    engine,
    metrics,
    hop,
    close: async () => {
      await engine.close();
      await replies.close();
      await streams.close();
      await models.close();
      await vad.close();
    },
  };
}
