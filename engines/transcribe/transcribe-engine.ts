/**
 * The `transcribe` stage around any Recognizer. It loads the model lazily on the first task (inside the runner's
 * engine.model_load span), reads the prepared 16 kHz mono WAV (or decodes whatever audio it is given, taking the
 * task's channel), and returns segments with word times. A model that fails to load fails the task with a
 * non-retryable error: a transcript with empty text must mean silence, never a broken engine.
 */
import { join } from 'node:path';
import { DalstonError, IllegalStateError } from '../../core/errors.js';
import type { Recognizer } from '../asr/recognizer.js';
import {
  PIPELINE_SAMPLE_RATE, decodeToWav, isPcm16Mono, quietestPointInFile, readPcm16MonoRange, readWavFormat, throwIfAborted,
} from '../audio/index.js';
import { ModelError } from '../models/index.js';
import type { Engine, EngineResult, EngineTaskContext } from '../sdk/engine.js';

export interface TranscriptWord {
  readonly text: string;
  readonly start: number;
  readonly end: number;
  readonly confidence?: number;
}

export interface TranscriptSegment {
  readonly start: number;
  readonly end: number;
  readonly text: string;
  readonly words: readonly TranscriptWord[];
}

/** output.json of a transcribe (or transcribe_ch<N>) stage. */
export interface TranscribeOutput {
  /** ISO 639-1 code, or 'und'. */
  readonly language: string;
  readonly text: string;
  readonly segments: readonly TranscriptSegment[];
  /** Catalogue model id that produced it. */
  readonly model: string;
  readonly audio_duration_seconds: number;
  /** The input channel transcribed, for per-channel tasks. */
  readonly channel?: number;
  /** For a part of a long file: the span of the file it transcribed, seconds (word times are on the file's clock). */
  readonly span?: { readonly start: number; readonly end: number };
}

export interface TranscribeEngineOptions {
  /** e.g. stt-batch-transcribe-pocketsphinx-en-us */
  readonly engineId: string;
  readonly recognizer: Recognizer;
}

export class TranscribeEngine implements Engine {
  readonly engineId: string;
  readonly stage = 'transcribe';
  readonly #recognizer: Recognizer;
  /** The load in progress, shared by tasks that arrive while it runs. */
  #loading: Promise<void> | undefined;

  constructor(options: TranscribeEngineOptions) {
    this.engineId = options.engineId;
    this.#recognizer = options.recognizer;
  }

  get recognizer(): Recognizer {
    return this.#recognizer;
  }

  async process(ctx: EngineTaskContext): Promise<EngineResult> {
    const recognizer = this.#recognizer;
    throwIfAborted(ctx.signal, 'transcribe');
    await this.#ensureLoaded(ctx);

    const audioPath = await this.#workingAudio(ctx);
    throwIfAborted(ctx.signal, 'transcribe');
    const { samples, offsetSeconds, span } = await partAudio(audioPath, ctx.config);
    const durationSeconds = samples.length / PIPELINE_SAMPLE_RATE;
    const at = (t: number): number => Math.round((t + offsetSeconds) * 1000) / 1000;
    const language = ctx.config.language;
    const result = await recognizer.recognize({
      audio: samples, signal: ctx.signal, ...(language !== undefined ? { language } : {}),
      ...(ctx.config.task === 'translate' ? { task: 'translate' as const } : {}),
      onWindow: (segments) => ctx.progress?.(segments.map((x) => ({ start: at(x.start), end: at(x.end), text: x.text }))),
    });
    throwIfAborted(ctx.signal, 'transcribe');

    const output: TranscribeOutput = {
      language: result.language,
      text: result.text,
      segments: result.segments.map((s) => ({
        start: at(s.start), end: at(s.end), text: s.text,
        words: s.words.map((w) => ({ text: w.text, start: at(w.start), end: at(w.end), ...(w.confidence !== undefined ? { confidence: w.confidence } : {}) })),
      })),
      model: recognizer.modelId,
      audio_duration_seconds: Math.round(durationSeconds * 1000) / 1000,
      ...(ctx.config.channel !== undefined ? { channel: ctx.config.channel } : {}),
      ...(span ? { span } : {}),
    };
    ctx.log.info({ segments: output.segments.length, words: output.segments.reduce((n, s) => n + s.words.length, 0), audio_duration_seconds: output.audio_duration_seconds }, 'transcribed');
    if (output.text.trim() === '') ctx.log.warn({ audio_duration_seconds: output.audio_duration_seconds }, 'recogniser returned no words');
    return { data: output, audioDurationSeconds: output.audio_duration_seconds, language: output.language, model: recognizer.modelId };
  }

  async close(): Promise<void> {
    await this.#recognizer.close();
  }

  async #ensureLoaded(ctx: EngineTaskContext): Promise<void> {
    const recognizer = this.#recognizer;
    if (recognizer.loaded) return;
    this.#loading ??= ctx.measureModelLoad(recognizer.modelId, () => recognizer.load()).finally(() => {
      this.#loading = undefined;
    });
    try {
      await this.#loading;
    } catch (err) {
      // Whatever went wrong, a model that cannot load must not be retried into empty transcripts.
      if (err instanceof DalstonError && !err.retryable) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      throw new ModelError(`model ${recognizer.modelId} failed to load: ${reason}`, { modelId: recognizer.modelId }, { cause: err });
    }
    if (!recognizer.loaded) throw new ModelError(`model ${recognizer.modelId} did not report itself loaded`, { modelId: recognizer.modelId });
  }

  /** The prepared WAV as is, or any other audio decoded to 16 kHz mono (the task's channel when it has one). */
  async #workingAudio(ctx: EngineTaskContext): Promise<string> {
    const audio = ctx.inputs['audio'];
    if (audio === undefined) throw new IllegalStateError('transcribe task has no "audio" input');
    if (await isPcm16Mono(audio, PIPELINE_SAMPLE_RATE)) return audio;
    const decoded = join(ctx.workDir, 'transcribe-input.wav');
    await decodeToWav(audio, decoded, { signal: ctx.signal, ...(ctx.config.channel !== undefined ? { channel: ctx.config.channel } : {}) });
    return decoded;
  }
}

/** How far from a part's nominal boundary the cut may move to find a pause (parts are at least 15 s long). */
const CUT_SEARCH_SECONDS = 5;

/**
 * The samples a task transcribes: the whole file, or for a part of a long file (config chunkStart/chunkEnd) only its
 * span, read from disk, with each inner end moved to the quietest point near it. The neighbouring part moves the same
 * boundary to the same sample, so the parts tile the file exactly. The file's ends stay where they are.
 */
async function partAudio(path: string, config: EngineTaskContext['config']): Promise<{ samples: Float32Array; offsetSeconds: number; span?: { start: number; end: number } }> {
  const f = await readWavFormat(path);
  const total = Math.floor(f.dataBytes / 2);
  if (config.chunkStart === undefined || config.chunkEnd === undefined) {
    return { samples: await readPcm16MonoRange(path, 0, total), offsetSeconds: 0 };
  }
  const rate = f.sampleRate;
  // Within 10 ms of the file's end counts as the end: prepare reports the duration rounded to the millisecond.
  const cut = async (seconds: number): Promise<number> => {
    if (seconds <= 0) return 0;
    if (seconds * rate >= total - rate / 100) return total;
    return quietestPointInFile(path, seconds, { searchSeconds: CUT_SEARCH_SECONDS });
  };
  const from = await cut(config.chunkStart);
  const to = Math.max(from, await cut(config.chunkEnd));
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return { samples: await readPcm16MonoRange(path, from, to), offsetSeconds: from / rate, span: { start: round(from / rate), end: round(to / rate) } };
}
