/**
 * The recognition loop of one real-time session: 16 kHz audio in (chunks of any size), transcript events out.
 *
 * Audio goes through Silero VAD frame by frame into the end-pointer. While an utterance is open it is
 * re-decoded from its start every `partials.intervalMs` of new audio (a partial); when the end-pointer closes
 * it (pause, maxUtterance, flush, end of stream) it is decoded once more and becomes the final. Decoding is
 * done by any `Recognizer`, so every installed model works here as in batch.
 *
 * Under load partials give way first: the interval stretches with the predicted cost of the next partial
 * decode (measured cost per second of audio, Clock-timed, times the utterance's length) and with the lag the host reports, and partials are skipped outright while the host is
 * far behind real time. Finals are always decoded.
 *
 * One call at a time: push/flush/clear/end each await their decodes; the host's session mailbox serialises
 * them, and an overlapping call is a programming error (IllegalStateError).
 */
import { CancelledError, IllegalStateError, InvalidInputError } from '../../core/errors.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { RecognitionResult, Recognizer, Word } from '../asr/index.js';
import { INITIAL_CHECKPOINT, parseCheckpoint, type TranscriberCheckpoint } from './checkpoint.js';
import { StreamingEndpointer, type EndpointerEvent, type EndReason } from './endpointer.js';
import { compileEndpointerOptions, type EndpointerOptions } from './endpointer-options.js';
import { compilePartialCadence, decidePartial, partialInterval, type CompiledPartialCadence, type PartialCadenceOptions } from './partial-cadence.js';
import type { DecodeGate } from './decode-gate.js';
import { SampleBuffer } from './sample-buffer.js';
import type { TranscriptEvent } from './transcript-events.js';
import { STREAM_SAMPLE_RATE } from './audio-input.js';

/**
 * Silero VAD's frame at 16 kHz (engines/vad's VAD_FRAME_SAMPLES; repeated here so the pure parts of this room do
 * not load onnxruntime; the real-speech test checks they agree).
 */
export const VAD_FRAME_SAMPLES = 512;

/** The per-frame VAD the transcriber needs; engines/vad's SileroVad satisfies it. */
export interface VadFrameModel {
  createStream(): VadFrameStream;
}

export interface VadFrameStream {
  /** Speech probability of exactly VAD_FRAME_SAMPLES samples. */
  process(frame: Float32Array): Promise<number>;
}

/** A decode measurement, for metrics and benchmarks (no text: transcripts are personal data). */
export interface DecodeMeasurement {
  readonly kind: 'partial' | 'final';
  readonly utterance: number;
  /** Wall time of the recogniser call, by the injected clock. */
  readonly decodeMs: number;
  /** Length of the audio decoded. */
  readonly audioMs: number;
  /** Wait for the decode gate's turn (0 without a gate). */
  readonly queuedMs: number;
}

export interface StreamingTranscriberOptions {
  /** Decodes partials and finals; loaded on first use if not already. */
  readonly recognizer: Recognizer;
  readonly vad: VadFrameModel;
  readonly endpointer?: EndpointerOptions;
  readonly partials?: PartialCadenceOptions;
  /** Passed to the recogniser. @default undefined (the model's default or detection) */
  readonly language?: string;
  /** Times decodes for the adaptive cadence. @default systemClock */
  readonly clock?: Clock;
  /** How far behind real time the host's processing is, in ms (e.g. age of the oldest queued audio). @default () => 0 */
  readonly behindMs?: () => number;
  /** Resume after a failover: the audio fed must start at checkpoint.audioOffsetSamples. @default a fresh stream */
  readonly checkpoint?: TranscriberCheckpoint;
  /** Aborts decodes in flight when the session goes away; calls then reject with CancelledError. @default none */
  readonly signal?: AbortSignal;
  /**
   * Runs the decodes when the host shares recognisers among sessions: it orders them and may drop a partial (counted
   * as skipped); its queueing delay stretches the partial cadence. @default none (the recogniser is called directly)
   */
  readonly decodeGate?: DecodeGate;
  /** Called after every recogniser call. @default none */
  readonly onDecode?: (m: DecodeMeasurement) => void;
  /** @default silentLogger */
  readonly log?: Logger;
}

/**
 * open — accepting audio;
 * ended — end() ran, the last final was emitted; every further call is illegal;
 * failed — a decode threw or was cancelled; resume elsewhere from checkpoint().
 */
export type TranscriberState = 'open' | 'ended' | 'failed';

export interface TranscriberStats {
  readonly partialsEmitted: number;
  readonly partialDecodes: number;
  /** Partials due but skipped because the host was behind real time. */
  readonly partialsSkipped: number;
  readonly finals: number;
  /** Interval (ms of audio) the cadence currently waits between partials of the open utterance (or of a new one). */
  readonly partialIntervalMs: number;
  readonly lastPartialDecodeMs: number;
  /** Measured decode cost: wall ms per ms of audio, from the last decode (partial or final). */
  readonly decodeCostRatio: number;
  /** Audio held for the open utterance and padding, in samples. */
  readonly bufferedSamples: number;
}

interface OpenUtterance {
  readonly index: number;
  readonly start: number;
  /** End of the audio the last partial decode covered (or the start). */
  decodedTo: number;
  lastPartialText: string;
}

const seconds = (samples: number): number => samples / STREAM_SAMPLE_RATE;

export class StreamingTranscriber {
  private readonly recognizer: Recognizer;
  private readonly vad: VadFrameStream;
  private readonly endpointer: StreamingEndpointer;
  private readonly cadence: CompiledPartialCadence;
  private readonly clock: Clock;
  private readonly behindMs: () => number;
  private readonly language: string | undefined;
  private readonly onDecode: ((m: DecodeMeasurement) => void) | undefined;
  private readonly gate: DecodeGate | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly log: Logger;
  private readonly audio: SampleBuffer;
  private readonly frame = new Float32Array(VAD_FRAME_SAMPLES);
  private frameFill = 0;
  /** Samples still to receive before the first VAD frame of the absolute grid. */
  private offGrid: number;
  private lifecycle: TranscriberState = 'open';
  private busy = false;
  private open: OpenUtterance | undefined;
  private nextUtterance: number;
  private finalized: number;
  /** End of the last closed utterance: the checkpoint's resume offset. */
  private closedUntil: number;
  private lastPartialDecodeMs = 0;
  /**
   * Wall ms per ms of audio of the last decode. Every partial re-decodes the utterance from its start, so the
   * next decode's cost is predicted from this ratio and the utterance's length, not from the last decode alone
   * (a long utterance's cost must not hold back the first partial of the next, short one).
   */
  private decodeCostRatio = 0;
  private partialsEmitted = 0;
  private partialDecodes = 0;
  private partialsSkipped = 0;

  constructor(options: StreamingTranscriberOptions) {
    if (options.language !== undefined && options.language.trim() === '') throw new InvalidInputError('language must be a language code or undefined, not an empty string');
    const checkpoint = options.checkpoint === undefined ? INITIAL_CHECKPOINT : parseCheckpoint(options.checkpoint);
    this.recognizer = options.recognizer;
    this.vad = options.vad.createStream();
    // VAD frames sit on one absolute grid (multiples of 512 samples from the stream start), also after a
    // resume: a restored transcriber then sees the same frames as the original did, and finds the same
    // boundaries once its VAD state has warmed up. The samples before the first grid point are kept as audio only.
    const offset = checkpoint.audioOffsetSamples;
    const grid = Math.ceil(offset / VAD_FRAME_SAMPLES) * VAD_FRAME_SAMPLES;
    this.offGrid = grid - offset;
    this.endpointer = new StreamingEndpointer(compileEndpointerOptions(options.endpointer, STREAM_SAMPLE_RATE), VAD_FRAME_SAMPLES, grid, offset);
    this.cadence = compilePartialCadence(options.partials);
    this.clock = options.clock ?? systemClock;
    this.behindMs = options.behindMs ?? (() => 0);
    this.language = options.language;
    this.onDecode = options.onDecode;
    this.gate = options.decodeGate;
    this.signal = options.signal;
    this.log = options.log ?? silentLogger;
    this.audio = new SampleBuffer(checkpoint.audioOffsetSamples);
    this.nextUtterance = checkpoint.nextUtterance;
    this.finalized = checkpoint.finalizedCount;
    this.closedUntil = checkpoint.audioOffsetSamples;
  }

  get state(): TranscriberState {
    return this.lifecycle;
  }

  /** Seconds of stream audio received (absolute, including any checkpoint offset). */
  get position(): number {
    return seconds(this.audio.end);
  }

  get stats(): TranscriberStats {
    return {
      partialsEmitted: this.partialsEmitted,
      partialDecodes: this.partialDecodes,
      partialsSkipped: this.partialsSkipped,
      finals: this.finalized,
      partialIntervalMs: partialInterval(this.cadence, this.predictedPartialMs(this.open === undefined ? 0 : this.audio.end - this.open.start), this.behindMs()),
      lastPartialDecodeMs: this.lastPartialDecodeMs,
      decodeCostRatio: this.decodeCostRatio,
      bufferedSamples: this.audio.size,
    };
  }

  /** Resume point for a transcriber on another worker; valid in any state, including failed. */
  checkpoint(): TranscriberCheckpoint {
    return {
      version: 1,
      audioOffsetSamples: this.closedUntil,
      nextUtterance: this.open?.index ?? this.nextUtterance,
      finalizedCount: this.finalized,
    };
  }

  /** Feeds 16 kHz mono samples in [-1, 1]; resolves with the events they caused, in order. */
  async push(samples: Float32Array): Promise<TranscriptEvent[]> {
    return this.run('push', async (events) => {
      let at = 0;
      if (this.offGrid > 0) {
        const lead = samples.subarray(0, this.offGrid);
        this.audio.append(lead);
        this.offGrid -= lead.length;
        at = lead.length;
      }
      while (at < samples.length) {
        const take = Math.min(VAD_FRAME_SAMPLES - this.frameFill, samples.length - at);
        const piece = samples.subarray(at, at + take);
        this.frame.set(piece, this.frameFill);
        this.audio.append(piece);
        this.frameFill += take;
        at += take;
        if (this.frameFill === VAD_FRAME_SAMPLES) {
          this.frameFill = 0;
          const probability = await this.vad.process(this.frame);
          for (const e of this.endpointer.push(probability)) await this.onEndpoint(e, events);
          this.audio.discardBefore(this.endpointer.keepFrom);
        }
      }
      await this.maybePartial(events);
    });
  }

  /**
   * Manual commit: the open utterance is finalised now; speech that goes on starts the next one. Speech too short
   * yet to open an utterance (under minSpeech) is not committed: it opens one if it goes on.
   */
  async flush(): Promise<TranscriptEvent[]> {
    return this.run('flush', async (events) => {
      const e = this.endpointer.commit(this.audio.end);
      if (e !== undefined) await this.onEndpoint(e, events);
    });
  }

  /** Drops the open utterance (no speech_end, no final); its index is not reused. */
  async clear(): Promise<TranscriptEvent[]> {
    return this.run('clear', async () => {
      // Pending speech goes too: everything up to now was dropped, so a resumed transcriber must not redo it.
      this.endpointer.discard(this.audio.end);
      this.open = undefined;
      this.closedUntil = this.audio.end;
      this.audio.discardBefore(this.endpointer.keepFrom);
    });
  }

  /** End of the stream: a final for whatever is open; the transcriber then refuses further calls. */
  async end(): Promise<TranscriptEvent[]> {
    return this.run('end', async (events) => {
      const e = this.endpointer.finish(this.audio.end);
      if (e !== undefined) await this.onEndpoint(e, events);
      this.lifecycle = 'ended';
    });
  }

  private async run(call: string, body: (events: TranscriptEvent[]) => Promise<void>): Promise<TranscriptEvent[]> {
    if (this.lifecycle !== 'open') throw new IllegalStateError(`transcriber is ${this.lifecycle}: ${call}() is not allowed`);
    if (this.busy) throw new IllegalStateError(`${call}() while another transcriber call is running: await each call before the next`);
    this.busy = true;
    const events: TranscriptEvent[] = [];
    try {
      if (this.signal?.aborted === true) throw new CancelledError('transcription cancelled');
      await body(events);
      return events;
    } catch (err) {
      // The utterance being decoded is lost here; checkpoint() still points before it, so a resumed transcriber redoes it.
      this.lifecycle = 'failed';
      throw err;
    } finally {
      this.busy = false;
    }
  }

  private async onEndpoint(e: EndpointerEvent, events: TranscriptEvent[]): Promise<void> {
    switch (e.type) {
      case 'start': {
        this.open = { index: this.nextUtterance, start: e.at, decodedTo: e.at, lastPartialText: '' };
        this.nextUtterance += 1;
        events.push({ type: 'speech_start', utterance: this.open.index, start: seconds(e.at) });
        return;
      }
      case 'voice_end':
      case 'voice_start': {
        const open = this.open;
        if (open === undefined) throw new IllegalStateError('end-pointer reported voice activity outside an utterance');
        events.push(e.type === 'voice_end'
          ? { type: 'voice_end', utterance: open.index, start: seconds(e.start), end: seconds(e.at) }
          : { type: 'voice_start', utterance: open.index, start: seconds(e.at) });
        return;
      }
      case 'end': {
        const open = this.open;
        if (open === undefined || open.start !== e.start) throw new IllegalStateError('end-pointer closed an utterance the transcriber did not open');
        events.push({ type: 'speech_end', utterance: open.index, start: seconds(e.start), end: seconds(e.at), reason: e.reason });
        await this.finalize(open, e.at, e.reason, events);
        // Only now: if the decode threw, the checkpoint still names this utterance as the next to do.
        this.open = undefined;
        return;
      }
    }
  }

  private async finalize(open: OpenUtterance, end: number, reason: EndReason, events: TranscriptEvent[]): Promise<void> {
    const decoded = await this.decode('final', open, end);
    if (decoded === undefined) throw new IllegalStateError('the decode gate dropped a final');
    const { text, words } = decoded;
    this.closedUntil = end;
    if (text.length === 0) {
      this.log.debug({ utterance: open.index, reason }, 'utterance held no words: no final');
      return;
    }
    this.finalized += 1;
    events.push({ type: 'final', utterance: open.index, text, start: seconds(open.start), end: seconds(end), words, reason });
  }

  private async maybePartial(events: TranscriptEvent[]): Promise<void> {
    const open = this.open;
    if (open === undefined || !this.cadence.enabled) return;
    const end = this.audio.end;
    const decision = decidePartial(this.cadence, ((end - open.decodedTo) * 1000) / STREAM_SAMPLE_RATE, this.predictedPartialMs(end - open.start), this.behindMs());
    switch (decision.kind) {
      case 'wait':
        return;
      case 'skip':
        this.partialsSkipped += 1;
        // Counts as done for this stretch of audio, so the next chance comes one interval later.
        open.decodedTo = end;
        return;
      case 'decode': {
        const decoded = await this.decode('partial', open, end);
        open.decodedTo = end;
        if (decoded === undefined) {
          // The gate was too busy for this partial to arrive in time: it gave way like a skipped one.
          this.partialsSkipped += 1;
          return;
        }
        const { text } = decoded;
        if (text.length === 0 || text === open.lastPartialText) return;
        open.lastPartialText = text;
        this.partialsEmitted += 1;
        events.push({ type: 'partial', utterance: open.index, text, start: seconds(open.start), end: seconds(end) });
        return;
      }
    }
  }

  private predictedDecodeMs(samples: number): number {
    return (this.decodeCostRatio * samples * 1000) / STREAM_SAMPLE_RATE;
  }

  /** What the next partial costs the session: its decode and the wait for the gate's turn (partials give way first). */
  private predictedPartialMs(samples: number): number {
    return this.predictedDecodeMs(samples) + (this.gate?.queueDelayMs() ?? 0);
  }

  /** Undefined when the gate dropped the partial (never a final). */
  private async decode(kind: 'partial' | 'final', open: OpenUtterance, end: number): Promise<{ text: string; words: Word[] } | undefined> {
    const audio = this.audio.copy(open.start, end);
    let started = 0;
    const recognize = () => {
      // Timed from the turn, not the queue: the cost ratio is the recogniser's, the wait is the gate's.
      started = this.clock.now();
      return this.recognizer.recognize({
        audio,
        ...(this.language === undefined ? {} : { language: this.language }),
        ...(this.signal === undefined ? {} : { signal: this.signal }),
      });
    };
    let result: RecognitionResult;
    let queuedMs = 0;
    if (this.gate === undefined) result = await recognize();
    else {
      const estimatedMs = this.predictedDecodeMs(audio.length);
      const outcome = await this.gate.run({ kind, estimatedMs, firstOfUtterance: kind === 'partial' && open.lastPartialText === '' }, recognize, this.signal);
      queuedMs = outcome.queuedMs;
      if (!outcome.ran) return undefined;
      result = outcome.value;
    }
    const decodeMs = Math.max(0, this.clock.now() - started);
    const audioMs = (audio.length * 1000) / STREAM_SAMPLE_RATE;
    if (kind === 'partial') {
      this.partialDecodes += 1;
      this.lastPartialDecodeMs = decodeMs;
    }
    if (audioMs > 0) this.decodeCostRatio = decodeMs / audioMs;
    this.onDecode?.({ kind, utterance: open.index, decodeMs, audioMs, queuedMs });
    const offset = seconds(open.start);
    const limit = seconds(end);
    const words = result.segments
      .flatMap((s) => s.words)
      .map((w) => ({ ...w, start: Math.min(limit, offset + w.start), end: Math.min(limit, offset + w.end) }));
    return { text: result.text.replace(/\s+/g, ' ').trim(), words };
  }
}

/** Builds a session's transcriber; options are validated here (InvalidInputError naming the option). */
export function createStreamingTranscriber(options: StreamingTranscriberOptions): StreamingTranscriber {
  return new StreamingTranscriber(options);
}
