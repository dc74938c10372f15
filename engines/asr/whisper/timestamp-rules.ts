/**
 * The logit rules of openai-whisper's decoder (SuppressBlank, SuppressTokens, ApplyTimestampRules), applied in
 * place before each greedy/sampled pick: non-speech symbols and specials never appear; the first token is a
 * timestamp no later than 1 s; timestamps come in pairs and never go backwards; and when the timestamp tokens
 * together are more likely than any text token, a timestamp is forced.
 */
import type { WhisperSpecialTokens } from './whisper-tokenizer.js';

export interface RuleOptions {
  readonly tokens: WhisperSpecialTokens;
  /** Token ids never sampled (config.json suppress_ids: symbols, specials). */
  readonly suppress: readonly number[];
  /** Ids suppressed at the first step only (config.json suppress_ids_begin: blank and end-of-text). */
  readonly suppressAtBegin: readonly number[];
  /** Latest first timestamp, in 20 ms steps. @default 50 (1.0 s) */
  readonly maxInitialTimestampIndex?: number;
}

function fill(logits: Float32Array, from: number, to: number): void {
  for (let i = Math.max(0, from); i < Math.min(to, logits.length); i++) logits[i] = -Infinity;
}

/** `sampled` are the tokens chosen so far after the prompt. */
export function applyTimestampRules(logits: Float32Array, sampled: readonly number[], options: RuleOptions): void {
  const T = options.tokens;
  const begin = T.timestampBegin;
  for (const id of options.suppress) logits[id] = -Infinity;
  logits[T.noTimestamps] = -Infinity;
  if (sampled.length === 0) for (const id of options.suppressAtBegin) logits[id] = -Infinity;

  const last = sampled[sampled.length - 1];
  const penultimate = sampled[sampled.length - 2];
  const lastWasTimestamp = last !== undefined && last >= begin;
  const penultimateWasTimestamp = sampled.length < 2 || (penultimate !== undefined && penultimate >= begin);
  if (lastWasTimestamp) {
    if (penultimateWasTimestamp) fill(logits, begin, logits.length); // a pair just closed: text (or eot) next
    else fill(logits, 0, T.eot); // a segment just ended: its partner timestamp or eot next
  }

  const timestamps = sampled.filter((id) => id >= begin);
  const lastTs = timestamps[timestamps.length - 1];
  if (lastTs !== undefined) {
    // Never backwards; strictly forwards unless completing a pair.
    const floor = lastWasTimestamp && !penultimateWasTimestamp ? lastTs : lastTs + 1;
    fill(logits, begin, floor);
  }

  if (sampled.length === 0) {
    fill(logits, 0, begin);
    fill(logits, begin + (options.maxInitialTimestampIndex ?? 50) + 1, logits.length);
  }

  // Sum of timestamp probabilities vs the best text token (log-space).
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if ((logits[i] ?? -Infinity) > max) max = logits[i] ?? -Infinity;
  if (max === -Infinity) return;
  let total = 0;
  let tsSum = 0;
  let bestText = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] ?? -Infinity;
    const e = Math.exp(v - max);
    total += e;
    if (i >= begin) tsSum += e;
    else if (v > bestText) bestText = v;
  }
  const tsLogProb = Math.log(tsSum / total);
  const bestTextLogProb = bestText - max - Math.log(total);
  if (tsSum > 0 && tsLogProb > bestTextLogProb) fill(logits, 0, begin);
}

export interface TimedPiece {
  /** Seconds from the start of the window. */
  readonly start: number;
  readonly end: number;
  readonly tokens: readonly number[];
}

/**
 * Splits `<|t0|> text <|t1|><|t1|> text <|t2|>` into timed pieces. A piece left open at the end of decoding
 * ends at `windowSeconds`.
 */
export function splitByTimestamps(ids: readonly number[], windowSeconds: number, T: WhisperSpecialTokens, step = 0.02): TimedPiece[] {
  const out: TimedPiece[] = [];
  let start: number | undefined;
  let tokens: number[] = [];
  for (const id of ids) {
    if (id >= T.timestampBegin) {
      const t = (id - T.timestampBegin) * step;
      if (start !== undefined && tokens.length > 0) {
        out.push({ start, end: Math.max(start, t), tokens });
        start = undefined;
        tokens = [];
      } else {
        start = t;
      }
    } else if (id < T.eot) {
      start ??= out[out.length - 1]?.end ?? 0;
      tokens.push(id);
    }
  }
  if (tokens.length > 0) out.push({ start: start ?? 0, end: Math.max(start ?? 0, windowSeconds), tokens });
  return out;
}
