/**
 * The end-pointer's options: what counts as speech, how long a pause ends an utterance, how much audio is kept
 * around it, and when a monologue is cut. One interface with documented defaults, one function that validates
 * it and converts milliseconds to samples, so a bad value fails when the session opens, not mid-stream.
 */
import { InvalidInputError } from '../../core/errors.js';

export interface EndpointerOptions {
  /** Silero speech probability at which speech starts. @default 0.5 */
  readonly threshold?: number;
  /** Probability below which speech may end (hysteresis; must not exceed threshold). @default threshold - 0.15, at least 0.01 */
  readonly negThreshold?: number;
  /** Speech shorter than this never opens an utterance (clicks, breaths, coughs). @default 250 */
  readonly minSpeechMs?: number;
  /** Pause that ends an utterance: shorter feels snappier but splits sentences at commas. @default 500 */
  readonly minSilenceMs?: number;
  /** Audio kept before the speech onset and after its end, so first and last phonemes are not clipped. @default 200 */
  readonly speechPadMs?: number;
  /** An utterance this long is finalised even while the speaker goes on (bounds latency and memory). @default 15000 */
  readonly maxUtteranceMs?: number;
  /**
   * Manual commit: a pause does not close the utterance, only commit (flush), the end of the stream or
   * maxUtterance do; pauses of minSilence and the speech after them are still reported (voice events). @default false
   */
  readonly manualCommit?: boolean;
}

export interface CompiledEndpointerOptions {
  readonly sampleRate: number;
  readonly threshold: number;
  readonly negThreshold: number;
  readonly minSpeechSamples: number;
  readonly minSilenceSamples: number;
  readonly speechPadSamples: number;
  readonly maxUtteranceSamples: number;
  readonly manualCommit: boolean;
}

export const ENDPOINTER_DEFAULTS = {
  threshold: 0.5,
  minSpeechMs: 250,
  minSilenceMs: 500,
  speechPadMs: 200,
  maxUtteranceMs: 15000,
} as const;

/** Recognisers are trained on at most 30 s windows; a longer utterance would be cut inside the recogniser. */
export const MAX_UTTERANCE_LIMIT_MS = 30000;
/** Shorter forced utterances would mostly cut words. */
export const MIN_UTTERANCE_LIMIT_MS = 1000;

function bad(option: keyof EndpointerOptions, value: number, rule: string): InvalidInputError {
  return new InvalidInputError(`end-pointer option ${option} must be ${rule}, got ${value}`);
}

function ms(option: keyof EndpointerOptions, value: number, min: number, max: number): number {
  if (!Number.isFinite(value) || value < min || value > max) throw bad(option, value, `a number of milliseconds from ${min} to ${max}`);
  return value;
}

export function compileEndpointerOptions(options: EndpointerOptions = {}, sampleRate = 16000): CompiledEndpointerOptions {
  const threshold = options.threshold ?? ENDPOINTER_DEFAULTS.threshold;
  if (!(threshold > 0 && threshold < 1)) throw bad('threshold', threshold, 'a probability strictly between 0 and 1');
  const negThreshold = options.negThreshold ?? Math.max(0.01, threshold - 0.15);
  if (!(negThreshold > 0 && negThreshold <= threshold)) throw bad('negThreshold', negThreshold, `a probability above 0 and at most threshold (${threshold})`);
  const minSpeechMs = ms('minSpeechMs', options.minSpeechMs ?? ENDPOINTER_DEFAULTS.minSpeechMs, 0, 5000);
  const minSilenceMs = ms('minSilenceMs', options.minSilenceMs ?? ENDPOINTER_DEFAULTS.minSilenceMs, 32, 10000);
  const speechPadMs = ms('speechPadMs', options.speechPadMs ?? ENDPOINTER_DEFAULTS.speechPadMs, 0, 2000);
  const maxUtteranceMs = ms('maxUtteranceMs', options.maxUtteranceMs ?? ENDPOINTER_DEFAULTS.maxUtteranceMs, MIN_UTTERANCE_LIMIT_MS, MAX_UTTERANCE_LIMIT_MS);
  if (maxUtteranceMs < minSpeechMs + 2 * speechPadMs) {
    throw bad('maxUtteranceMs', maxUtteranceMs, `at least minSpeechMs + 2 × speechPadMs (${minSpeechMs + 2 * speechPadMs})`);
  }
  const samples = (v: number): number => Math.round((v * sampleRate) / 1000);
  return {
    sampleRate,
    threshold,
    negThreshold,
    minSpeechSamples: samples(minSpeechMs),
    minSilenceSamples: samples(minSilenceMs),
    speechPadSamples: samples(speechPadMs),
    maxUtteranceSamples: samples(maxUtteranceMs),
    manualCommit: options.manualCommit ?? false,
  };
}
