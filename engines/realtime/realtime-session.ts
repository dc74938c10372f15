/**
 * One live session on this engine: its mailbox (bounded, in offset order), its StreamingTranscriber, the replies it
 * sends straight to the gateway's reply topic, the finals and end it reports to the session actor, and the ledger of
 * realtime.input messages it still needs (the commit rule, input-ledger.ts).
 *
 * Each session drains its own mailbox, so one slow session never holds another's frames (only the Kafka partition
 * they share waits when a mailbox is full); their decodes share the engine's DecodeScheduler (finals first).
 */
import { CancelledError, DalstonError } from '../../core/errors.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { RealtimeEngineMetrics, RealtimeHopMetric } from '../../core/metrics.js';
import { ATTR, REALTIME_ATTR, SPAN } from '../../core/observability-names.js';
import type { Tracer } from '../../core/telemetry/tracer.js';
import { ModelError } from '../models/model-error.js';
import type { Recognizer } from '../asr/index.js';
import { createStreamingTranscriber, type DecodeGate, type EndpointerOptions, type EndReason, type StreamingTranscriber, type TranscriptEvent, type VadFrameModel } from '../streaming/index.js';
import {
  SCHEMA_VERSION,
  REALTIME_SAMPLE_RATE,
  sameSessionConfig,
  type RealtimeCheckpoint, type RealtimeEvent, type RealtimeFinal, type RealtimeInput, type RealtimeReply, type RealtimeSessionConfig,
} from '../../streams/index.js';
import { BoundedQueue } from './bounded-queue.js';
import { InputLedger, type LedgerKind } from './input-ledger.js';
import { pcm16ToFloat } from './pcm.js';
import { frameAction, isNewFinal, type SessionOrigin, type SessionPlan } from './resume-plan.js';
import type { SessionRecord } from './session-record.js';

/** A realtime.input message handed to the session, with the consumer's release for its offset. */
export interface InputItem {
  /** realtime.input offset; -1n for a message the engine made itself (the end after the gateway closed). */
  readonly offset: bigint;
  readonly input: RealtimeInput;
  /** When the engine read it (epoch ms). */
  readonly receivedAt: number;
  readonly release: () => void;
}

/** Where the session's messages go; the engine implements it with its producers. */
export interface SessionOutbound {
  reply(topic: string, sessionId: string, origin: SessionOrigin, message: RealtimeReply): Promise<void>;
  event(sessionId: string, origin: SessionOrigin, message: RealtimeEvent): Promise<void>;
}

export interface RealtimeSessionOptions {
  readonly sessionId: string;
  readonly partition: number;
  readonly plan: Extract<SessionPlan, { kind: 'serve' }>;
  /** The recognizer of a model (loaded once per engine and shared by its sessions). */
  readonly recognizerFor: (model: string) => Promise<Recognizer>;
  readonly vad: VadFrameModel;
  /** The engine's decode scheduler, shared by its sessions (finals first, partials give way). @default none */
  readonly decodeGate?: DecodeGate;
  readonly outbound: SessionOutbound;
  readonly instanceId: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly tracer: Tracer;
  readonly metrics?: RealtimeEngineMetrics;
  readonly hop?: RealtimeHopMetric;
  /** Messages queued per session before its partition waits. @default 3000 (5 min of 100 ms frames) */
  readonly queueCapacity?: number;
  /** How far behind real time the session may be before its partials are skipped. @default 1000 */
  readonly partialSkipBehindMs?: number;
  /** @default 500 */
  readonly progressIntervalMs?: number;
  /** Called once the session is over on this engine (ended, failed): the engine forgets it. */
  readonly onFinished: (sessionId: string) => void;
}

interface UtteranceTiming {
  readonly openedAt: number;
  /** sentAt of the frame in which speech was detected. */
  readonly onsetSentAt: number;
  firstPartialAt?: number;
  partials: number;
  speechEndAt?: number;
}

const samplesOf = (seconds: number): number => Math.round(seconds * REALTIME_SAMPLE_RATE);

/** The end-pointer's reasons in the wire protocol's words. */
const WIRE_REASON: Readonly<Record<EndReason, RealtimeFinal['reason']>> = { silence: 'pause', max_duration: 'max_length', flush: 'flush', end: 'end' };

function traceIdOf(traceparent: string | undefined): string | undefined {
  const m = traceparent === undefined ? null : /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/.exec(traceparent);
  return m?.[1];
}

/**
 * Endpointer options from the session's configuration. `manual` commits only on a flush, `end` or the length cap:
 * pauses (of minSilenceMs) are still reported as VAD events but close nothing.
 */
function endpointerOptions(config: RealtimeSessionConfig): EndpointerOptions {
  return {
    ...(config.vadThreshold !== undefined && { threshold: config.vadThreshold }),
    ...(config.minSpeechMs !== undefined && { minSpeechMs: config.minSpeechMs }),
    ...(config.minSilenceMs !== undefined && { minSilenceMs: config.minSilenceMs }),
    ...(config.speechPadMs !== undefined && { speechPadMs: config.speechPadMs }),
    ...(config.maxUtteranceMs !== undefined && { maxUtteranceMs: config.maxUtteranceMs }),
    ...(config.commitStrategy === 'manual' && { manualCommit: true }),
  };
}

export class RealtimeSession {
  readonly sessionId: string;
  readonly partition: number;
  readonly #o: RealtimeSessionOptions;
  readonly #log: Logger;
  readonly #queue: BoundedQueue<InputItem>;
  readonly #ledger = new InputLedger();
  readonly #abort = new AbortController();
  #config: RealtimeSessionConfig;
  readonly #origin: SessionOrigin;
  readonly #skipBelow: bigint | undefined;
  readonly #utterances = new Map<number, UtteranceTiming>();
  #replyTopic: string;
  #lastFinalUtterance: number;
  /** Session samples fed to the transcriber so far (absolute). */
  #fedUntil: number;
  #lastHandled = -1n;
  /** True once audio reached the transcriber: from then on the configuration is fixed. */
  #audioFed = false;
  #current: InputItem | undefined;
  #state: 'running' | 'ended' | 'failed' | 'stopped' = 'running';
  #endQueued = false;
  #lastProgressAt = 0;
  #partialsSkipped = 0;
  #out: Promise<void> = Promise.resolve();
  /** Frames sent before this were re-read after a takeover: their age is not transport time. */
  readonly #createdAt: number;
  readonly done: Promise<void>;

  constructor(options: RealtimeSessionOptions) {
    this.#o = options;
    this.sessionId = options.sessionId;
    this.partition = options.partition;
    const plan = options.plan;
    this.#config = plan.config;
    this.#origin = plan.origin;
    this.#replyTopic = plan.replyTopic;
    this.#skipBelow = plan.skipBelow;
    this.#lastFinalUtterance = plan.lastFinalUtterance;
    this.#fedUntil = plan.checkpoint.audioOffsetSamples;
    this.#createdAt = options.clock.now();
    const traceId = traceIdOf(plan.origin.traceparent);
    this.#log = options.log.child({ session_id: this.sessionId, request_id: plan.origin.requestId, ...(traceId !== undefined && { trace_id: traceId }) });
    this.#queue = new BoundedQueue(options.queueCapacity ?? 3000);
    this.done = this.#run();
    this.#log.info(
      { model: plan.config.model, partition: this.partition, restored: plan.restored, checkpoint: plan.checkpoint, skip_below: plan.skipBelow?.toString() },
      plan.restored ? 'session restored from its checkpoint' : 'session started',
    );
  }

  get state(): 'running' | 'ended' | 'failed' | 'stopped' {
    return this.#state;
  }

  get queued(): number {
    return this.#queue.length;
  }

  get replyTopic(): string {
    return this.#replyTopic;
  }

  /** Queues a message; resolves once queued (waits while the mailbox is full). A finished session releases it at once. */
  async enqueue(item: InputItem): Promise<void> {
    if (this.#state !== 'running') {
      item.release();
      return;
    }
    try {
      await this.#queue.put(item);
    } catch {
      item.release();
    }
  }

  /** The session actor recorded more of this session: release what is now durable. */
  onSnapshot(record: SessionRecord): void {
    this.#lastFinalUtterance = Math.max(this.#lastFinalUtterance, record.lastFinalUtterance);
    if (record.partition === this.partition && record.resumeOffset !== undefined) this.#ledger.releaseBefore(BigInt(record.resumeOffset));
    if (this.#state !== 'running') return;
    if (record.status === 'failed') {
      this.#log.info({}, 'session failed elsewhere: stopping');
      this.#finish('failed');
      return;
    }
    if (record.gatewayClosed && !this.#endQueued) {
      // The client's side closed without an end: finalise what is open so the actor records it, then end.
      this.#endQueued = true;
      const now = this.#o.clock.now();
      void this.enqueue({
        offset: -1n, receivedAt: now, release: () => undefined,
        input: { v: SCHEMA_VERSION, type: 'rt.control', sessionId: this.sessionId, action: 'end', seq: -1, sentAt: now },
      });
    }
  }

  /** The partition moved away (or the engine closes): stop at once; the next owner re-reads what was not released. */
  async stop(): Promise<void> {
    if (this.#state === 'running') this.#state = 'stopped';
    this.#abort.abort(new CancelledError('session moved to another engine'));
    this.#queue.close();
    await this.done.catch(() => undefined);
  }

  async #run(): Promise<void> {
    let transcriber: StreamingTranscriber;
    try {
      transcriber = await this.#createTranscriber();
    } catch (err) {
      await this.#cannotStart(err);
      return;
    }
    for (;;) {
      const item = await this.#queue.take();
      if (item === undefined) return;
      if (this.#state !== 'running') {
        item.release();
        continue;
      }
      try {
        transcriber = (await this.#handle(transcriber, item)) ?? transcriber;
      } catch (err) {
        if (this.#abort.signal.aborted || err instanceof CancelledError) return;
        this.#log.error({ err: err instanceof Error ? err.message : String(err) }, 'session failed while decoding');
        this.#reply({ v: SCHEMA_VERSION, type: 'rt.error', sessionId: this.sessionId, code: 'engine_decode_failed', message: 'the engine could not decode this session', retryable: false, at: this.#o.clock.now() });
        await this.#out;
        this.#finish('failed');
        return;
      }
    }
  }

  /** The configuration cannot be served (unknown model, bad options): the gateway is told and the session fails. */
  async #cannotStart(err: unknown): Promise<void> {
    const code = err instanceof ModelError ? 'model_unavailable' : err instanceof DalstonError ? 'invalid_config' : 'engine_error';
    this.#log.warn({ code, err: err instanceof Error ? err.message : String(err) }, 'session cannot start');
    this.#reply({ v: SCHEMA_VERSION, type: 'rt.error', sessionId: this.sessionId, code, message: err instanceof Error ? err.message : String(err), retryable: false, at: this.#o.clock.now() });
    await this.#out;
    this.#finish('failed');
  }

  async #createTranscriber(): Promise<StreamingTranscriber> {
    const recognizer = await this.#o.recognizerFor(this.#config.model);
    const plan = this.#o.plan;
    return createStreamingTranscriber({
      recognizer,
      vad: this.#o.vad,
      endpointer: endpointerOptions(this.#config),
      partials: { enabled: this.#config.partials, ...(this.#o.partialSkipBehindMs !== undefined && { skipWhenBehindMs: this.#o.partialSkipBehindMs }) },
      ...(this.#config.language !== undefined && { language: this.#config.language }),
      clock: this.#o.clock,
      // Load signal for the adaptive cadence: how old the audio being processed is (partials give way first).
      behindMs: () => this.#behindMs(),
      checkpoint: plan.checkpoint,
      signal: this.#abort.signal,
      ...(this.#o.decodeGate !== undefined && { decodeGate: this.#o.decodeGate }),
      onDecode: (m) => this.#o.metrics?.decode.observe({ kind: m.kind }, m.decodeMs / 1000),
      log: this.#log,
    });
  }

  /** A transcriber for the new configuration replaces the one that has seen no audio yet. */
  async #reconfigure(old: StreamingTranscriber, config: RealtimeSessionConfig): Promise<StreamingTranscriber> {
    this.#config = config;
    try {
      const next = await this.#createTranscriber();
      this.#log.info({ model: config.model, commit_strategy: config.commitStrategy }, 'session reconfigured before its audio');
      return next;
    } catch (err) {
      await this.#cannotStart(err);
      return old;
    }
  }

  /** Age of the audio being processed: the session's queue delay plus transport, i.e. how far behind real time it is. */
  #behindMs(): number {
    const m = this.#current?.input;
    return m?.type === 'rt.audio' ? Math.max(0, this.#o.clock.now() - m.sentAt) : 0;
  }

  /** Handles one message; returns the transcriber to go on with when the message replaced it (a new configuration). */
  async #handle(t: StreamingTranscriber, item: InputItem): Promise<StreamingTranscriber | undefined> {
    const m = item.input;
    if (item.offset >= 0n) {
      if (this.#skipBelow !== undefined && item.offset < this.#skipBelow) {
        item.release(); // covered by the checkpoint this session was restored from
        return;
      }
      this.#lastHandled = item.offset;
      const kind: LedgerKind = m.type === 'rt.audio' ? 'audio' : m.type === 'rt.control' ? 'control' : m.type === 'rt.reply_to' ? 'reply_to' : 'start';
      const audio = m.type === 'rt.audio' ? { startSample: m.offset, endSample: m.offset + (m.pcm.length >> 1) } : {};
      this.#ledger.add({ offset: item.offset, kind, ...audio, ...((m.type === 'rt.audio' || m.type === 'rt.control') && { sentAt: m.sentAt }), release: item.release });
    }
    this.#current = item;
    const before = t.checkpoint();
    switch (m.type) {
      case 'rt.session.start':
        // Again after a resume through another gateway: same session, the new gateway's reply topic.
        this.#replyTopic = m.replyTopic;
        // Again before any audio: the client configured the session after opening it (OpenAI's session.update); the
        // gateway refuses a change once audio was sent, and a restored session already has its recorded configuration.
        if (!this.#audioFed && !this.#o.plan.restored && !sameSessionConfig(this.#config, m.config)) return this.#reconfigure(t, m.config);
        return;
      case 'rt.reply_to':
        this.#replyTopic = m.replyTopic;
        this.#log.info({ gateway_id: m.gatewayId }, 'replies go to another gateway');
        return;
      case 'rt.audio': {
        if (m.sentAt >= this.#createdAt || !this.#o.plan.restored) this.#o.hop?.observe({ hop: 'gateway_to_engine' }, Math.max(0, item.receivedAt - m.sentAt) / 1000);
        const samples = pcm16ToFloat(m.pcm);
        const action = frameAction(m.offset, samples.length, this.#fedUntil);
        if (action.kind === 'skip') return;
        let chunk = samples.subarray(action.from);
        if (action.gap > 0) {
          this.#log.warn({ gap_samples: action.gap }, 'audio missing from the session: filled with silence');
          const filled = new Float32Array(action.gap + chunk.length);
          filled.set(chunk, action.gap);
          chunk = filled;
        }
        this.#audioFed = true;
        const events = await t.push(chunk);
        this.#fedUntil += chunk.length;
        this.#o.metrics?.audioSeconds.inc(chunk.length / REALTIME_SAMPLE_RATE);
        const skipped = t.stats.partialsSkipped;
        if (skipped > this.#partialsSkipped) this.#o.metrics?.partialsSkipped.inc(skipped - this.#partialsSkipped);
        this.#partialsSkipped = skipped;
        this.#emit(events, item, before);
        this.#progress(t);
        return;
      }
      case 'rt.control':
        switch (m.action) {
          case 'flush':
            this.#emit(await t.flush(), item, before);
            return;
          case 'clear':
            await t.clear();
            return;
          case 'end':
            this.#emit(await t.end(), item, before);
            await this.#end(t);
            return;
        }
    }
  }

  #emit(events: readonly TranscriptEvent[], item: InputItem, before: RealtimeCheckpoint): void {
    const now = this.#o.clock.now();
    const sentAt = item.input.type === 'rt.audio' || item.input.type === 'rt.control' ? item.input.sentAt : item.receivedAt;
    let finalized = before.finalizedCount;
    /** Utterances closed in this batch: one without a final (it held no words) is forgotten after the loop. */
    const closed = new Set<number>();
    for (const e of events) {
      switch (e.type) {
        case 'speech_start':
          this.#utterances.set(e.utterance, { openedAt: now, onsetSentAt: sentAt, partials: 0 });
          this.#reply({ v: SCHEMA_VERSION, type: 'rt.vad', sessionId: this.sessionId, event: 'speech_start', utterance: e.utterance, start: e.start, at: now }, item);
          break;
        case 'partial': {
          const u = this.#utterances.get(e.utterance);
          if (u !== undefined) {
            u.partials += 1;
            u.firstPartialAt ??= now;
          }
          this.#reply({ v: SCHEMA_VERSION, type: 'rt.partial', sessionId: this.sessionId, utterance: e.utterance, text: e.text, start: e.start, end: e.end, at: now, receivedAt: sentAt }, item);
          break;
        }
        case 'voice_start':
          // Manual commit: the VAD's view inside an utterance that only a flush, `end` or the length cap closes.
          this.#reply({ v: SCHEMA_VERSION, type: 'rt.vad', sessionId: this.sessionId, event: 'speech_start', utterance: e.utterance, start: e.start, at: now }, item);
          break;
        case 'voice_end':
          this.#reply({ v: SCHEMA_VERSION, type: 'rt.vad', sessionId: this.sessionId, event: 'speech_end', utterance: e.utterance, start: e.start, end: e.end, at: now }, item);
          break;
        case 'speech_end': {
          const u = this.#utterances.get(e.utterance);
          const speechEndAt = item.input.type === 'rt.control' ? item.input.sentAt : (this.#ledger.sentAtOfSample(samplesOf(e.end)) ?? sentAt);
          if (u !== undefined) u.speechEndAt = speechEndAt;
          closed.add(e.utterance);
          this.#reply({ v: SCHEMA_VERSION, type: 'rt.vad', sessionId: this.sessionId, event: 'speech_end', utterance: e.utterance, start: e.start, end: e.end, at: now }, item);
          break;
        }
        case 'final': {
          finalized += 1;
          closed.delete(e.utterance);
          const u = this.#utterances.get(e.utterance);
          this.#utterances.delete(e.utterance);
          if (!isNewFinal(e.utterance, this.#lastFinalUtterance)) {
            this.#log.info({ utterance: e.utterance }, 'final already recorded: not sent again');
            break;
          }
          this.#lastFinalUtterance = e.utterance;
          const final: RealtimeFinal = {
            utterance: e.utterance, text: e.text, start: e.start, end: e.end, reason: WIRE_REASON[e.reason],
            words: e.words.map((w) => ({ text: w.text, start: w.start, end: w.end, ...(w.confidence !== undefined && { confidence: w.confidence }) })),
          };
          const end = samplesOf(e.end);
          const checkpoint: RealtimeCheckpoint = { version: 1, audioOffsetSamples: end, nextUtterance: e.utterance + 1, finalizedCount: finalized };
          const resumeOffset = this.#ledger.resumeOffset(end, item.offset >= 0n ? item.offset : this.#lastHandled);
          const speechEndAt = u?.speechEndAt;
          this.#reply({ v: SCHEMA_VERSION, type: 'rt.final', sessionId: this.sessionId, final, at: now, receivedAt: sentAt, ...(speechEndAt !== undefined && { speechEndAt }) }, item);
          this.#event({
            v: SCHEMA_VERSION, type: 'rt.utterance.final', sessionId: this.sessionId, final, checkpoint, partition: this.partition,
            resumeOffset: resumeOffset.toString(), engineInstance: this.#o.instanceId, at: now,
          });
          this.#utteranceSpan(e.utterance, final.reason, u, now, e.end - e.start);
          break;
        }
      }
    }
    for (const index of closed) this.#utterances.delete(index);
  }

  #utteranceSpan(utterance: number, reason: string, u: UtteranceTiming | undefined, now: number, audioSeconds: number): void {
    const traceparent = this.#origin.traceparent;
    const attrs = {
      [ATTR.sessionId]: this.sessionId,
      [ATTR.model]: this.#config.model,
      [ATTR.audioDurationSeconds]: audioSeconds,
      [REALTIME_ATTR.utterance]: utterance,
      [REALTIME_ATTR.reason]: reason,
      [REALTIME_ATTR.restored]: this.#o.plan.restored,
      [REALTIME_ATTR.partials]: u?.partials ?? 0,
      [REALTIME_ATTR.firstPartialLatencyMs]: u?.firstPartialAt === undefined ? undefined : u.firstPartialAt - u.onsetSentAt,
      [REALTIME_ATTR.finalLatencyMs]: u?.speechEndAt === undefined ? undefined : now - u.speechEndAt,
    };
    void this.#o.tracer
      .startSpan(SPAN.realtimeUtterance, attrs, () => undefined, {
        startTimeMs: u?.openedAt ?? now,
        ...(traceparent !== undefined && { parentCarrier: { traceparent } }),
      })
      .catch(() => undefined);
  }

  #progress(t: StreamingTranscriber): void {
    const now = this.#o.clock.now();
    if (now - this.#lastProgressAt < (this.#o.progressIntervalMs ?? 500)) return;
    this.#lastProgressAt = now;
    this.#reply({ v: SCHEMA_VERSION, type: 'rt.progress', sessionId: this.sessionId, processedSeconds: t.position, at: now });
  }

  async #end(t: StreamingTranscriber): Promise<void> {
    const now = this.#o.clock.now();
    const audioSeconds = t.position;
    const checkpoint = t.checkpoint();
    this.#reply({ v: SCHEMA_VERSION, type: 'rt.ended', sessionId: this.sessionId, audioSeconds, finals: checkpoint.finalizedCount, at: now });
    this.#event({ v: SCHEMA_VERSION, type: 'rt.session.ended', sessionId: this.sessionId, audioSeconds, checkpoint, engineInstance: this.#o.instanceId, at: now });
    this.#state = 'ended';
    const stats = t.stats;
    this.#log.info(
      { audio_seconds: audioSeconds, finals: checkpoint.finalizedCount, partials: stats.partialsEmitted, partial_decodes: stats.partialDecodes, partials_skipped: stats.partialsSkipped },
      'session ended',
    );
    // Once the end is in realtime.events the session needs none of its input: a new owner must not redo it.
    await this.#out;
    this.#finish('ended');
  }

  #finish(state: 'ended' | 'failed'): void {
    if (this.#state === 'running' || this.#state === state) this.#state = state;
    this.#queue.close().forEach((i) => i.release());
    this.#ledger.releaseAll();
    this.#abort.abort(new CancelledError(`session ${state}`));
    this.#o.onFinished(this.sessionId);
  }

  /** Replies go out in order, without holding the decode loop; `engine` hop: receipt → reply acknowledged. */
  #reply(message: RealtimeReply, item?: InputItem): void {
    const topic = this.#replyTopic;
    const receivedAt = item?.receivedAt;
    this.#out = this.#out
      .then(() => this.#o.outbound.reply(topic, this.sessionId, this.#origin, message))
      .then(() => {
        if (receivedAt !== undefined && (message.type === 'rt.partial' || message.type === 'rt.final')) {
          this.#o.hop?.observe({ hop: 'engine' }, Math.max(0, this.#o.clock.now() - receivedAt) / 1000);
        }
      })
      .catch((err: unknown) => this.#log.error({ type: message.type, err: err instanceof Error ? err.message : String(err) }, 'reply could not be published'));
  }

  #event(message: RealtimeEvent): void {
    this.#out = this.#out
      .then(() => this.#o.outbound.event(this.sessionId, this.#origin, message))
      .catch((err: unknown) => this.#log.error({ type: message.type, err: err instanceof Error ? err.message : String(err) }, 'event could not be published'));
  }
}
