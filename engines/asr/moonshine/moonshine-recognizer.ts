/**
 * Moonshine tiny (English) behind the Recognizer interface. Audio is cut into windows at Silero VAD
 * boundaries (≤ 25 s, merged up to 15 s), each window is encoded and decoded greedily with a KV cache and a
 * temperature fallback, and becomes one segment spanning its VAD speech. Moonshine has no timestamp tokens:
 * word times are estimated inside the segment's speech regions (result.wordTiming = 'estimated'); word
 * confidence is the mean probability of the word's tokens.
 */
import { readFile } from 'node:fs/promises';
import { CancelledError, InvalidInputError } from '../../../core/errors.js';
import type { Logger } from '../../../core/logger.js';
import { silentLogger } from '../../../core/logger.js';
import { MOONSHINE_TINY } from '../../models/catalogue.js';
import { ModelError } from '../../models/model-error.js';
import { modelPath, verifyModel } from '../../models/verify.js';
import { SileroVad, VAD_FRAME_SECONDS } from '../../vad/silero-vad.js';
import type { VadOptions } from '../../vad/speech-regions.js';
import { LazyModel } from '../lazy-model.js';
import { SAMPLE_RATE, type RecognitionRequest, type RecognitionResult, type Recognizer, type Segment } from '../recognizer.js';
import { planWindows, type AudioWindow, type WindowOptions } from '../windows.js';
import { estimateWordTimes, type UntimedWord } from '../word-timing.js';
import { compressionRatio, meanLogProb, needsFallback, seededRandom, type FallbackOptions } from '../decode-fallback.js';
import { MoonshineModel, type DecodedTokens } from './moonshine-model.js';
import { MoonshineTokenizer } from './moonshine-tokenizer.js';

export interface MoonshineRecognizerOptions {
  /** Dalston data directory; models are read from `<homeDir>/models`. */
  readonly homeDir: string;
  /** @default silentLogger */
  readonly log?: Logger;
  /** onnxruntime intra-op threads; one measured faster than two on the 2-core machine. @default 1 */
  readonly threads?: number;
  readonly windows?: WindowOptions;
  /** VAD settings for chunking. @default minSilenceMs 300, speechPadMs 150 */
  readonly vad?: VadOptions;
  readonly fallback?: FallbackOptions;
  /**
   * Wraps the load (e.g. in an engine.model_load span) for hosts other than the engine runner, which wraps
   * recognizer.load() itself. @default no wrapping
   */
  readonly measureModelLoad?: <T>(model: string, load: () => Promise<T>) => Promise<T>;
}

const EDGE_PAD_SECONDS = 0.25;

interface Loaded {
  readonly model: MoonshineModel;
  readonly tokenizer: MoonshineTokenizer;
  readonly vad: SileroVad;
}

export class MoonshineRecognizer implements Recognizer {
  readonly modelId = MOONSHINE_TINY.id;
  /** Seconds the last load() took (verify + sessions), for the model-load metric. */
  loadSeconds = 0;
  private readonly model = new LazyModel<Loaded>(() => this.doLoad());
  private readonly log: Logger;

  constructor(private readonly options: MoonshineRecognizerOptions) {
    this.log = (options.log ?? silentLogger).child({ model: MOONSHINE_TINY.id });
  }

  get loaded(): boolean {
    return this.model.loaded;
  }

  async load(): Promise<void> {
    await this.model.get();
  }

  private async doLoad(): Promise<Loaded> {
    const started = performance.now();
    // The engine runner already wraps load() in the engine.model_load span; a standalone host may pass its own.
    const measure = this.options.measureModelLoad ?? (<T>(_model: string, load: () => Promise<T>): Promise<T> => load());
    const value = await measure(MOONSHINE_TINY.id, async () => {
      const verified = await verifyModel(MOONSHINE_TINY.id, this.options.homeDir);
      const tokenizer = MoonshineTokenizer.parse(await readFile(modelPath(verified, 'tokenizer.bin')));
      let model: MoonshineModel;
      try {
        model = await MoonshineModel.create(modelPath(verified, 'encoder_model.ort'), modelPath(verified, 'decoder_model_merged.ort'), this.options.threads ?? 1);
      } catch (err) {
        throw new ModelError(`model ${MOONSHINE_TINY.id}: encoder_model.ort or decoder_model_merged.ort could not be loaded by onnxruntime`, { modelId: MOONSHINE_TINY.id }, { cause: err });
      }
      const vad = await SileroVad.load(this.options.homeDir);
      return { model, tokenizer, vad };
    });
    this.loadSeconds = (performance.now() - started) / 1000;
    this.log.info({ load_seconds: this.loadSeconds }, 'model loaded');
    return value;
  }

  async recognize(request: RecognitionRequest): Promise<RecognitionResult> {
    if (request.task === 'translate') throw new InvalidInputError(`${this.modelId} transcribes English only and cannot translate; a multilingual Whisper model (whisper-base) can`);
    const lang = request.language;
    if (lang !== undefined && lang !== 'auto' && lang !== 'en') {
      throw new InvalidInputError(`${MOONSHINE_TINY.id} transcribes English only, not "${lang}"`);
    }
    const s = await this.model.get();
    const signal = request.signal;
    const check = (): void => {
      if (signal?.aborted === true) throw new CancelledError('transcription cancelled');
    };
    check();
    const audio = request.audio;
    const analysis = await s.vad.analyse(audio, { minSilenceMs: 300, speechPadMs: 150, ...this.options.vad }, signal);
    // Moonshine keeps the default packing (15 s windows, never across a pause over 1 s): packing across pauses helped it
    // at 10 dB SNR (23.3 → 15.0 % WER with 24 s windows and 4 s gaps) but hurt clean speech (3.3 → 5.8 %), and every
    // packing tried hurt clean speech (npm run bench:asr passages, 2026-12-08).
    const windows = planWindows(analysis.regions, analysis.probabilities, VAD_FRAME_SECONDS, this.options.windows);
    const segments: Segment[] = [];
    for (const window of windows) {
      check();
      const segment = await this.decodeWindow(s, audio, window);
      if (segment !== undefined) {
        segments.push(segment);
        request.onWindow?.([segment]);
      }
    }
    return { language: 'en', text: segments.map((x) => x.text).join(' '), segments, wordTiming: 'estimated' };
  }

  private async decodeWindow(s: Loaded, audio: Float32Array, window: AudioWindow): Promise<Segment | undefined> {
    const from = Math.max(0, Math.floor(window.start * SAMPLE_RATE));
    const to = Math.min(audio.length, Math.ceil(window.end * SAMPLE_RATE));
    // The encoder's convolutions need at least ~0.1 s of input.
    if (to - from < SAMPLE_RATE / 10) return undefined;
    // Quarter-second of silence on each side: measured on espeak-ng sentences, decodes of audio that starts
    // right at the first phoneme dropped or garbled the first word ("please send" → "cleaned and").
    const pad = Math.round(EDGE_PAD_SECONDS * SAMPLE_RATE);
    const slice = new Float32Array(to - from + 2 * pad);
    slice.set(audio.subarray(from, to), pad);
    const hidden = await s.model.encode(slice);
    const maxTokens = MoonshineModel.maxTokens(slice.length / SAMPLE_RATE);
    let best = await s.model.decode(hidden, maxTokens, { temperature: 0 });
    const fb = this.options.fallback;
    if (needsFallback(quality(s.tokenizer, best), fb)) {
      const random = seededRandom(from);
      for (const temperature of fb?.temperatures ?? [0.2, 0.4, 0.6]) {
        const attempt = await s.model.decode(hidden, maxTokens, { temperature, random });
        const q = quality(s.tokenizer, attempt);
        this.log.debug({ temperature, truncated: q.truncated, compression: q.compressionRatio, logprob: q.meanLogProb }, 'temperature fallback');
        if (!needsFallback(q, fb)) {
          best = attempt;
          break;
        }
        if (q.meanLogProb > quality(s.tokenizer, best).meanLogProb && !q.truncated) best = attempt;
      }
    }
    const words = toWords(s.tokenizer, best);
    if (words.length === 0) return undefined;
    return {
      start: window.start,
      end: window.end,
      text: s.tokenizer.decode(best.ids),
      words: estimateWordTimes(words, window.speech),
    };
  }

  async close(): Promise<void> {
    const s = await this.model.close();
    if (s !== undefined) await Promise.all([s.model.release(), s.vad.close()]);
  }
}

function quality(tokenizer: MoonshineTokenizer, d: DecodedTokens): { truncated: boolean; compressionRatio: number; meanLogProb: number } {
  return { truncated: d.truncated, compressionRatio: compressionRatio(tokenizer.decode(d.ids)), meanLogProb: meanLogProb(d.probs) };
}

/** Groups tokens into words at ▁ boundaries; a word's confidence is the mean probability of its tokens. */
function toWords(tokenizer: MoonshineTokenizer, d: DecodedTokens): UntimedWord[] {
  const groups: { ids: number[]; probs: number[] }[] = [];
  d.ids.forEach((id, i) => {
    if (tokenizer.isSpecial(id)) return;
    const last = groups[groups.length - 1];
    if (last === undefined || tokenizer.startsWord(id)) groups.push({ ids: [id], probs: [d.probs[i] ?? 0] });
    else {
      last.ids.push(id);
      last.probs.push(d.probs[i] ?? 0);
    }
  });
  return groups
    .map((g) => ({ text: tokenizer.decode(g.ids), confidence: g.probs.reduce((a, b) => a + b, 0) / g.probs.length }))
    .filter((w) => w.text.length > 0);
}
