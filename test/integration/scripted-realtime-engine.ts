/**
 * A SCRIPTED streaming engine (not the real one, which is built in engines/realtime/): it joins the streaming
 * engines' consumer group on the real Kafka (so the gateway counts it as a live instance), reads realtime.input and
 * answers on each session's reply topic with a fixed script, so the gateway's real-time side can be tested before
 * the real engine exists:
 *  - every 1 s of audio is an utterance: `rt.vad speech_start` on its first frame, a partial `u<n> partial` at 0.5 s,
 *    then `rt.final` "utterance <n>" (reason pause) and `rt.vad speech_end` at 1 s;
 *  - flush finalises the open utterance (reason flush); end finalises it (reason end) and answers `rt.ended`;
 *  - `rt.progress` after every frame (processed = received), except for these models: `scripted-slow` reports
 *    processed 0 (the engine falls behind), `scripted-silent` sends no progress at all (a failover's silence),
 *    `scripted-dup` sends every final twice (a failover's repeat);
 *  - `rt.reply_to` moves the session's replies to another gateway's topic.
 * It also plays a SCRIPTED session actor for resume: after each final it writes the session's snapshot (finals so
 * far) to sessions.state, and `completed` once ended.
 */
import {
  SCHEMA_VERSION, SESSION_STATE, StreamConsumer, StreamProducer, checkRealtimeInput, decodeMessage, encodeMessage, newMessageHeaders, prefixed,
  realtimeEngineGroupId, type DeadLetterWriter, type Kafka, type RealtimeFinal, type RealtimeInput, type RealtimeReply, type RealtimeSessionConfig,
  type RealtimeSessionState,
} from '../../streams/index.js';
import { REALTIME_INPUT } from '../../streams/topics.js';
import type { Logger } from '../../core/logger.js';

const RATE = 16000;
const v = SCHEMA_VERSION;

interface ScriptedSession {
  replyTopic: string;
  config: RealtimeSessionConfig;
  tenantId: string;
  /** Samples received. */
  samples: number;
  utterance: number;
  utteranceStart: number;
  /** Samples in the open utterance. */
  open: number;
  lastSentAt: number;
  finals: RealtimeFinal[];
  revision: number;
  ended: boolean;
}

export interface ScriptedEngine {
  /** Session ids seen, with the reply topic each is answered on now. */
  readonly sessions: ReadonlyMap<string, { readonly replyTopic: string; readonly samples: number; readonly ended: boolean }>;
  /** Every input message read, in order. */
  readonly inputs: RealtimeInput[];
  close(): Promise<void>;
}

export async function startScriptedEngine(o: { kafka: Kafka; prefix: string; deadLetter: DeadLetterWriter; log: Logger }): Promise<ScriptedEngine> {
  const producer = new StreamProducer({ kafka: o.kafka, log: o.log });
  await producer.connect();
  const sessions = new Map<string, ScriptedSession>();
  const inputs: RealtimeInput[] = [];
  const reply = (s: ScriptedSession, r: RealtimeReply) => producer.send(s.replyTopic, { key: r.sessionId, value: encodeMessage(r), headers: newMessageHeaders() });
  const snapshot = async (id: string, s: ScriptedSession) => {
    s.revision++;
    const state: RealtimeSessionState = {
      sessionId: id, tenantId: s.tenantId, keyId: 'key_scripted', requestId: 'req_scripted', status: s.ended ? 'completed' : 'active',
      startedAt: 0, updatedAt: Date.now(), gatewayId: 'scripted', replyTopic: s.replyTopic, config: s.config, finals: s.finals,
      checkpoint: { version: 1, audioOffsetSamples: s.utteranceStart, nextUtterance: s.utterance, finalizedCount: s.finals.length },
      audioSeconds: s.samples / RATE, engineEnded: s.ended, gatewayClosed: false, revision: s.revision,
    };
    await producer.send(prefixed(o.prefix, SESSION_STATE.name), { key: id, value: encodeMessage({ v, type: 'rt.session.snapshot', state }), headers: newMessageHeaders() });
  };
  const finalise = async (id: string, s: ScriptedSession, reason: RealtimeFinal['reason']) => {
    if (s.open === 0) return;
    const start = s.utteranceStart / RATE;
    const end = (s.utteranceStart + s.open) / RATE;
    const final: RealtimeFinal = {
      utterance: s.utterance, text: `utterance ${s.utterance}`, start, end, reason,
      words: [{ text: 'utterance', start, end: (start + end) / 2, confidence: 0.9 }, { text: String(s.utterance), start: (start + end) / 2, end }],
    };
    const now = Date.now();
    const msg: RealtimeReply = { v, type: 'rt.final', sessionId: id, final, at: now, receivedAt: s.lastSentAt, speechEndAt: s.lastSentAt };
    await reply(s, msg);
    if (s.config.model === 'scripted-dup') await reply(s, { ...msg, at: Date.now() });
    await reply(s, { v, type: 'rt.vad', sessionId: id, event: 'speech_end', utterance: s.utterance, start, end, at: now });
    s.finals.push(final);
    s.utterance++;
    s.utteranceStart += s.open;
    s.open = 0;
    await snapshot(id, s);
  };
  const consumer = new StreamConsumer<RealtimeInput>({
    kafka: o.kafka, groupId: realtimeEngineGroupId(o.prefix), topics: [prefixed(o.prefix, REALTIME_INPUT.name)], deadLetter: o.deadLetter, log: o.log,
    decode: (value) => decodeMessage(checkRealtimeInput, value), fromBeginning: false, maxWaitTimeMs: 20, partitionsConsumedConcurrently: 12,
    sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000,
    handler: async (m) => {
      const msg = m.value;
      inputs.push(msg);
      const id = msg.sessionId;
      if (msg.type === 'rt.session.start') {
        const known = sessions.get(id);
        if (known) {
          known.config = msg.config;
          known.replyTopic = msg.replyTopic;
        } else {
          sessions.set(id, {
            replyTopic: msg.replyTopic, config: msg.config, tenantId: msg.tenantId, samples: 0, utterance: 0, utteranceStart: 0, open: 0,
            lastSentAt: 0, finals: [], revision: 0, ended: false,
          });
        }
        return;
      }
      const s = sessions.get(id);
      if (!s) return;
      switch (msg.type) {
        case 'rt.reply_to':
          s.replyTopic = msg.replyTopic;
          return;
        case 'rt.audio': {
          const n = msg.pcm.length / 2;
          if (s.open === 0) await reply(s, { v, type: 'rt.vad', sessionId: id, event: 'speech_start', utterance: s.utterance, start: s.utteranceStart / RATE, at: Date.now() });
          const before = s.open;
          s.open += n;
          s.samples += n;
          s.lastSentAt = msg.sentAt;
          if (before < RATE / 2 && s.open >= RATE / 2) {
            await reply(s, {
              v, type: 'rt.partial', sessionId: id, utterance: s.utterance, text: `u${s.utterance} partial`, start: s.utteranceStart / RATE,
              end: (s.utteranceStart + s.open) / RATE, at: Date.now(), receivedAt: msg.sentAt,
            });
          }
          if (s.open >= RATE) await finalise(id, s, 'pause');
          if (s.config.model === 'scripted-silent') return;
          await reply(s, { v, type: 'rt.progress', sessionId: id, processedSeconds: s.config.model === 'scripted-slow' ? 0 : s.samples / RATE, at: Date.now() });
          return;
        }
        case 'rt.control':
          if (msg.action === 'clear') s.open = 0;
          else await finalise(id, s, msg.action === 'flush' ? 'flush' : 'end');
          if (msg.action === 'end' && !s.ended) {
            s.ended = true;
            await reply(s, { v, type: 'rt.ended', sessionId: id, audioSeconds: s.samples / RATE, finals: s.finals.length, at: Date.now() });
            await snapshot(id, s);
          }
          return;
      }
    },
  });
  await consumer.start();
  return {
    sessions,
    inputs,
    close: async () => {
      await consumer.close();
      await producer.close();
    },
  };
}
