/**
 * Whisper (tiny.en, or multilingual base; converted from CTranslate2 at set-up) behind the Recognizer
 * interface. Multilingual models detect the language from the first window with speech unless one is given. Audio is cut into
 * ≤ 29 s windows at Silero VAD boundaries; each window gets a log-mel front end, one encoder run, and a
 * greedy decode with Whisper's timestamp rules and a temperature fallback (compression ratio, mean
 * log-probability); windows Whisper judges silent (no-speech probability > 0.6 with a poor decode) are
 * dropped. Segment times come from the timestamp tokens; word times from cross-attention alignment (DTW over
 * the model's alignment heads, as openai-whisper's word_timestamps, but on the attention of the decode itself
 * rather than a second teacher-forced pass without timestamps), clamped into their segment
 * (result.wordTiming = 'native'). A word whose tokens cannot be matched falls back to the estimate.
 */
import { readFile } from 'node:fs/promises';
import { CancelledError, IllegalStateError, InvalidInputError } from '../../../core/errors.js';
import type { Logger } from '../../../core/logger.js';
import { silentLogger } from '../../../core/logger.js';
import { WHISPER_TINY_EN, type ModelSpec } from '../../models/catalogue.js';
import { ModelError } from '../../models/model-error.js';
import { modelPath, verifyModel } from '../../models/verify.js';
import { SileroVad, VAD_FRAME_SECONDS } from '../../vad/silero-vad.js';
import type { SpeechRegion, VadOptions } from '../../vad/speech-regions.js';
import { compressionRatio, meanLogProb, needsFallback, seededRandom, type FallbackOptions } from '../decode-fallback.js';
import { LazyModel } from '../lazy-model.js';
import { SAMPLE_RATE, type RecognitionRequest, type RecognitionResult, type Recognizer, type Segment, type Word } from '../recognizer.js';
import { planWindows, type AudioWindow, type WindowOptions } from '../windows.js';
import { estimateWordTimes, type UntimedWord } from '../word-timing.js';
import { logMelSpectrogram } from './log-mel.js';
import { FRAMES_PER_SECOND, alignWords, alignmentMatrix } from './word-alignment.js';
import { splitByTimestamps, type RuleOptions } from './timestamp-rules.js';
import { WhisperModel, type WhisperDecoded } from './whisper-model.js';
import { WhisperTokenizer } from './whisper-tokenizer.js';

export interface WhisperRecognizerOptions {
  readonly homeDir: string;
  /** A catalogue Whisper model (English-only or multilingual). @default WHISPER_TINY_EN */
  readonly model?: ModelSpec;
  /** @default silentLogger */
  readonly log?: Logger;
  /** onnxruntime intra-op threads; one measured 2.3x faster than two on the shared 2-core machine. @default 1 */
  readonly threads?: number;
  /** @default targetSeconds 24, maxSeconds 29 (Whisper sees 30 s) */
  readonly windows?: WindowOptions;
  readonly vad?: VadOptions;
  readonly fallback?: FallbackOptions;
  /** Drop a window when P(no speech) exceeds this and the decode is poor. @default 0.6 */
  readonly noSpeechThreshold?: number;
  /** See MoonshineRecognizerOptions.measureModelLoad. */
  readonly measureModelLoad?: <T>(model: string, load: () => Promise<T>) => Promise<T>;
}

/** A timed piece of a window before word times are attached (times relative to the window). */
interface Draft {
  readonly start: number;
  readonly end: number;
  readonly text: string;
  readonly words: readonly (UntimedWord & { readonly tokens: number })[];
}

interface Loaded {
  readonly model: WhisperModel;
  readonly tokenizer: WhisperTokenizer;
  readonly rules: RuleOptions;
  readonly alignmentHeads: readonly (readonly [number, number])[];
  readonly vad: SileroVad;
}

interface CtConfig {
  readonly suppress_ids?: readonly number[];
  readonly suppress_ids_begin?: readonly number[];
  readonly alignment_heads?: readonly (readonly [number, number])[];
}

export class WhisperRecognizer implements Recognizer {
  readonly modelId: string;
  private readonly spec: ModelSpec;
  loadSeconds = 0;
  private readonly model = new LazyModel<Loaded>(() => this.doLoad());
  private readonly log: Logger;

  constructor(private readonly options: WhisperRecognizerOptions) {
    this.spec = options.model ?? WHISPER_TINY_EN;
    if (this.spec.family !== 'whisper') throw new IllegalStateError(`${this.spec.id} is not a Whisper model`);
    this.modelId = this.spec.id;
    this.log = (options.log ?? silentLogger).child({ model: this.spec.id });
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
    const id = this.spec.id;
    const value = await measure(id, async () => {
      const verified = await verifyModel(id, this.options.homeDir);
      const config = JSON.parse(await readFile(modelPath(verified, 'config.json'), 'utf8')) as CtConfig;
      let tokenizer: WhisperTokenizer;
      try {
        tokenizer = WhisperTokenizer.fromTokenizerJson(await readFile(modelPath(verified, 'tokenizer.json'), 'utf8'), this.spec.capabilities.languageDetection);
      } catch (err) {
        throw new ModelError(`model ${id}: file tokenizer.json is not a Whisper tokenizer`, { modelId: id, file: 'tokenizer.json' }, { cause: err });
      }
      const rules: RuleOptions = { tokens: tokenizer.tokens, suppress: config.suppress_ids ?? [], suppressAtBegin: config.suppress_ids_begin ?? [] };
      let model: WhisperModel;
      try {
        model = await WhisperModel.create(modelPath(verified, 'encoder.onnx'), modelPath(verified, 'decoder.onnx'), this.options.threads ?? 1);
      } catch (err) {
        throw new ModelError(`model ${id}: encoder.onnx or decoder.onnx could not be loaded by onnxruntime`, { modelId: id }, { cause: err });
      }
      const vad = await SileroVad.load(this.options.homeDir);
      return { model, tokenizer, rules, alignmentHeads: config.alignment_heads ?? [], vad };
    });
    this.loadSeconds = (performance.now() - started) / 1000;
    this.log.info({ load_seconds: this.loadSeconds }, 'model loaded');
    return value;
  }

  async recognize(request: RecognitionRequest): Promise<RecognitionResult> {
    const requested = request.language === undefined || request.language === '' || request.language === 'auto' ? undefined : request.language.toLowerCase().split(/[-_]/)[0];
    if (requested !== undefined && !this.spec.languages.includes(requested)) {
      throw new InvalidInputError(`${this.spec.id} does not transcribe "${request.language}" (it knows ${this.spec.languages.length > 3 ? `${this.spec.languages.length} languages` : this.spec.languages.join(', ')})`);
    }
    const task = request.task ?? 'transcribe';
    if (task === 'translate' && this.spec.languages.length <= 1) {
      throw new InvalidInputError(`${this.spec.id} is English-only and cannot translate; a multilingual Whisper model (whisper-base) can`);
    }
    const s = await this.model.get();
    const signal = request.signal;
    const check = (): void => {
      if (signal?.aborted === true) throw new CancelledError('transcription cancelled');
    };
    check();
    const analysis = await s.vad.analyse(request.audio, { minSilenceMs: 300, speechPadMs: 200, ...this.options.vad }, signal);
    // Whisper decodes a fixed 30 s window whatever its content, so windows are packed across pauses of up to 4 s:
    // on twelve ~24 s passages with 1.2–3.5 s pauses (npm run bench:asr) a 4 s gap limit instead of 1 s took WER from
    // 9.3 to 8.0 % clean and from 25.5 to 18.3 % at 10 dB SNR, and RTF from 0.108 to 0.078 (fewer encoder passes).
    const windows = planWindows(analysis.regions, analysis.probabilities, VAD_FRAME_SECONDS, { targetSeconds: 24, maxSeconds: 29, maxGapSeconds: 4, ...this.options.windows });
    const segments: Segment[] = [];
    // English-only models speak 'en'; a multilingual model detects the language on the first window with
    // speech unless one was requested, and keeps it for the whole recording.
    let language = s.tokenizer.multilingual ? requested : 'en';
    for (const window of windows) {
      check();
      const decoded = await this.decodeWindow(s, request.audio, window, language, task);
      language = decoded.language;
      segments.push(...decoded.segments);
      if (decoded.segments.length > 0) request.onWindow?.(decoded.segments);
    }
    return { language: language ?? 'und', text: segments.map((x) => x.text).join(' '), segments, wordTiming: s.alignmentHeads.length > 0 ? 'native' : 'estimated' };
  }

  private async decodeWindow(s: Loaded, audio: Float32Array, window: AudioWindow, known: string | undefined, task: 'transcribe' | 'translate'): Promise<{ language: string | undefined; segments: Segment[] }> {
    const from = Math.max(0, Math.floor(window.start * SAMPLE_RATE));
    const to = Math.min(audio.length, Math.ceil(window.end * SAMPLE_RATE));
    if (to - from < SAMPLE_RATE / 10) return { language: known, segments: [] };
    const cross = await s.model.encode(logMelSpectrogram(audio.subarray(from, to)));
    let language = known;
    if (language === undefined) {
      const detected = await s.model.detectLanguage(cross, s.tokenizer.tokens);
      this.log.debug({ language: detected.language, probability: detected.probability }, 'language detected');
      language = detected.language;
    }
    const prompt = s.tokenizer.prompt(language, task);
    const quality = (d: WhisperDecoded): { truncated: boolean; compressionRatio: number; meanLogProb: number } => ({
      truncated: d.truncated,
      compressionRatio: compressionRatio(s.tokenizer.decode(d.ids)),
      meanLogProb: meanLogProb(d.probs),
    });
    const alignmentHeads = s.alignmentHeads;
    let best = await s.model.decode(cross, { prompt, temperature: 0, rules: s.rules, alignmentHeads });
    const fb = this.options.fallback;
    if (needsFallback(quality(best), fb)) {
      const random = seededRandom(from);
      for (const temperature of fb?.temperatures ?? [0.2, 0.4, 0.6]) {
        const attempt = await s.model.decode(cross, { prompt, temperature, random, rules: s.rules, alignmentHeads });
        if (!needsFallback(quality(attempt), fb)) {
          best = attempt;
          break;
        }
        if (!attempt.truncated && quality(attempt).meanLogProb > quality(best).meanLogProb) best = attempt;
      }
    }
    const q = quality(best);
    if (best.noSpeechProb > (this.options.noSpeechThreshold ?? 0.6) && q.meanLogProb < -1) return { language, segments: [] };
    const windowSeconds = (to - from) / SAMPLE_RATE;
    const drafts: Draft[] = [];
    let cursor = 0;
    for (const piece of splitByTimestamps(best.ids, windowSeconds, s.tokenizer.tokens)) {
      const text = s.tokenizer.decode(piece.tokens).trim();
      // Token probabilities of this piece, found in order in the decoded ids.
      const pieceProbs: number[] = [];
      for (const tok of piece.tokens) {
        while (cursor < best.ids.length && best.ids[cursor] !== tok) cursor++;
        pieceProbs.push(best.probs[cursor] ?? 0);
        cursor++;
      }
      if (text.length === 0) continue;
      const start = Math.min(piece.start, windowSeconds);
      drafts.push({ start, end: Math.min(Math.max(piece.end, piece.start), windowSeconds), text, words: toWords(s.tokenizer, piece.tokens, pieceProbs) });
    }
    const allWords = drafts.flatMap((d) => d.words);
    const textTokens = best.ids.filter((id) => s.tokenizer.isText(id));
    const frames = Math.min(1500, Math.floor((to - from) / (SAMPLE_RATE / FRAMES_PER_SECOND)));
    let aligned: { start: number; end: number }[] | undefined;
    const counted = allWords.reduce((n, w) => n + w.tokens, 0);
    const attention = best.attention;
    if (attention !== undefined && !best.truncated && allWords.length > 0 && frames > 0 && counted === textTokens.length) {
      // Rows of the queries that chose each text token, then the one that chose end-of-text (as whisper's
      // find_alignment), taken from the decode itself instead of a second teacher-forced pass.
      const keep = best.ids.map((id, i) => (s.tokenizer.isText(id) ? i : -1)).filter((i) => i >= 0);
      keep.push(best.ids.length);
      const scores = attention.map((rows) => keep.map((i) => rows[i] ?? new Float32Array(frames)));
      aligned = alignWords(alignmentMatrix(scores, frames), allWords, allWords.map((w) => w.tokens));
    }
    const segments: Segment[] = [];
    let k = 0;
    for (const d of drafts) {
      const segStart = window.start + d.start;
      const segEnd = window.start + d.end;
      let words: Word[];
      if (aligned !== undefined) {
        words = d.words.map((w) => {
          const a = aligned?.[k++];
          const start = Math.min(segEnd, Math.max(segStart, window.start + (a?.start ?? d.start)));
          const end = Math.min(segEnd, Math.max(start, window.start + (a?.end ?? d.end)));
          return w.confidence === undefined ? { text: w.text, start, end } : { text: w.text, start, end, confidence: w.confidence };
        });
      } else {
        words = estimateWordTimes(d.words, clipSpeech(window.speech, segStart, segEnd));
      }
      segments.push({ start: segStart, end: segEnd, text: d.text, words });
    }
    return { language, segments };
  }

  async close(): Promise<void> {
    const s = await this.model.close();
    if (s !== undefined) await Promise.all([s.model.release(), s.vad.close()]);
  }
}

/** The VAD speech inside [start, end]; the whole span when VAD found none there. */
function clipSpeech(speech: readonly SpeechRegion[], start: number, end: number): SpeechRegion[] {
  const out = speech.map((r) => ({ start: Math.max(r.start, start), end: Math.min(r.end, end) })).filter((r) => r.end > r.start);
  return out.length > 0 ? out : [{ start, end: Math.max(start, end) }];
}

function toWords(tokenizer: WhisperTokenizer, tokens: readonly number[], probs: readonly number[]): (UntimedWord & { tokens: number })[] {
  const groups: { ids: number[]; probs: number[] }[] = [];
  tokens.forEach((id, i) => {
    const last = groups[groups.length - 1];
    if (last === undefined || tokenizer.startsWord(id)) groups.push({ ids: [id], probs: [probs[i] ?? 0] });
    else {
      last.ids.push(id);
      last.probs.push(probs[i] ?? 0);
    }
  });
  return groups
    .map((g) => ({ text: tokenizer.decode(g.ids).trim(), confidence: g.probs.reduce((a, b) => a + b, 0) / g.probs.length, tokens: g.ids.length }))
    .filter((w) => w.text.length > 0);
}
