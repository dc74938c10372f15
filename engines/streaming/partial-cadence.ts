/**
 * How often the open utterance is re-decoded for partial text, and when partials give way under load.
 * Finals are never subject to this: only partials are stretched or skipped. Pure: the inputs are the
 * predicted cost of the next partial decode (the caller scales its measured cost per second of audio to the
 * open utterance's length, since every partial re-decodes the utterance from its start) and how far behind
 * real time the host says it is.
 */
import { InvalidInputError } from '../../core/errors.js';

export interface PartialCadenceOptions {
  /** Emit partials at all. @default true */
  readonly enabled?: boolean;
  /** New audio between two partial decodes when nothing is behind. @default 300 */
  readonly intervalMs?: number;
  /**
   * Share of real time partial decoding may take: a decode predicted to take d ms stretches the interval to at
   * least d / share, so a slow model or a long utterance cannot starve the session. @default 0.5
   */
  readonly maxDecodeShare?: number;
  /** The stretched interval never exceeds this. @default 3000 */
  readonly maxIntervalMs?: number;
  /** When the host is this far behind real time, partials are skipped until it catches up. @default 1000 */
  readonly skipWhenBehindMs?: number;
}

export interface CompiledPartialCadence {
  readonly enabled: boolean;
  readonly intervalMs: number;
  readonly maxDecodeShare: number;
  readonly maxIntervalMs: number;
  readonly skipWhenBehindMs: number;
}

function bad(option: keyof PartialCadenceOptions, value: unknown, rule: string): InvalidInputError {
  return new InvalidInputError(`partial cadence option ${option} must be ${rule}, got ${String(value)}`);
}

export function compilePartialCadence(options: PartialCadenceOptions = {}): CompiledPartialCadence {
  const intervalMs = options.intervalMs ?? 300;
  if (!(Number.isFinite(intervalMs) && intervalMs >= 50 && intervalMs <= 10000)) throw bad('intervalMs', intervalMs, 'from 50 to 10000 ms');
  const maxDecodeShare = options.maxDecodeShare ?? 0.5;
  if (!(maxDecodeShare > 0 && maxDecodeShare <= 1)) throw bad('maxDecodeShare', maxDecodeShare, 'in (0, 1]');
  const maxIntervalMs = options.maxIntervalMs ?? Math.max(3000, intervalMs);
  if (!(Number.isFinite(maxIntervalMs) && maxIntervalMs >= intervalMs)) throw bad('maxIntervalMs', maxIntervalMs, `a number of ms at least intervalMs (${intervalMs})`);
  const skipWhenBehindMs = options.skipWhenBehindMs ?? 1000;
  if (!(skipWhenBehindMs > 0)) throw bad('skipWhenBehindMs', skipWhenBehindMs, 'a positive number of ms');
  return { enabled: options.enabled ?? true, intervalMs, maxDecodeShare, maxIntervalMs, skipWhenBehindMs };
}

export type CadenceDecision =
  | { readonly kind: 'decode' }
  /** Not enough new audio yet for the current interval. */
  | { readonly kind: 'wait'; readonly intervalMs: number }
  /** Behind real time: the partial gives way. */
  | { readonly kind: 'skip' };

/**
 * Interval in ms of new audio before the next partial: the base interval, stretched by the next decode's cost
 * and by lag beyond one base interval (so a host that fell behind decodes less often while it catches up; the
 * few ms any chunk waits are not lag), capped.
 */
export function partialInterval(c: CompiledPartialCadence, predictedDecodeMs: number, behindMs: number): number {
  const byCost = predictedDecodeMs / c.maxDecodeShare;
  return Math.min(c.maxIntervalMs, Math.max(c.intervalMs, byCost) + Math.max(0, behindMs - c.intervalMs));
}

export function decidePartial(c: CompiledPartialCadence, newAudioMs: number, predictedDecodeMs: number, behindMs: number): CadenceDecision {
  const interval = partialInterval(c, predictedDecodeMs, behindMs);
  if (newAudioMs < interval) return { kind: 'wait', intervalMs: interval };
  if (behindMs >= c.skipWhenBehindMs) return { kind: 'skip' };
  return { kind: 'decode' };
}
