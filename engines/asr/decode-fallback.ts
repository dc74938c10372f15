/**
 * When a greedy decode is degenerate, retry with temperature (the Whisper recipe): a decode fails the checks
 * when it hit the token limit (looping), when its text compresses too well (repetition), or when its mean
 * token log-probability is very low (the model is guessing).
 */
import { deflateRawSync } from 'node:zlib';

export interface FallbackOptions {
  /** Temperatures tried after greedy. @default [0.2, 0.4, 0.6] */
  readonly temperatures?: readonly number[];
  /** @default 2.4 (Whisper's) */
  readonly compressionRatioThreshold?: number;
  /** @default -1.0 (Whisper's) */
  readonly logProbThreshold?: number;
}

export interface DecodeQuality {
  readonly truncated: boolean;
  readonly compressionRatio: number;
  readonly meanLogProb: number;
}

export function compressionRatio(text: string): number {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length === 0) return 0;
  return bytes.length / deflateRawSync(bytes).length;
}

export function meanLogProb(probs: readonly number[]): number {
  if (probs.length === 0) return 0;
  return probs.reduce((s, p) => s + Math.log(Math.max(p, 1e-12)), 0) / probs.length;
}

export function needsFallback(q: DecodeQuality, options: FallbackOptions = {}): boolean {
  return q.truncated || q.compressionRatio > (options.compressionRatioThreshold ?? 2.4) || q.meanLogProb < (options.logProbThreshold ?? -1.0);
}

/** Sampled fallbacks are reproducible run to run. */
export { seededRandom } from '../../core/seeded-random.js';
