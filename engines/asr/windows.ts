/**
 * Long audio → decode windows cut at VAD boundaries. Neighbouring speech regions are merged while the gap is
 * short and the window stays under the target length; a single region longer than the hard maximum is cut
 * at its least speech-like frame in the second half of the allowed span, so a cut rarely falls in a word.
 */
import type { SpeechRegion } from '../vad/speech-regions.js';

export interface AudioWindow {
  /** Seconds; the audio decoded for this window is [start, end). */
  readonly start: number;
  readonly end: number;
  /** The speech regions inside the window (for word-time estimation). */
  readonly speech: readonly SpeechRegion[];
}

export interface WindowOptions {
  /** Windows grow by merging regions up to this length. @default 15 */
  readonly targetSeconds?: number;
  /** Hard maximum; longer regions are cut. Must not exceed what the model was trained on (30 s). @default 25 */
  readonly maxSeconds?: number;
  /** Regions further apart than this are never merged. @default 1.0 */
  readonly maxGapSeconds?: number;
}

export function splitLongRegion(region: SpeechRegion, probabilities: ArrayLike<number>, frameSeconds: number, maxSeconds: number): SpeechRegion[] {
  const out: SpeechRegion[] = [];
  let start = region.start;
  while (region.end - start > maxSeconds) {
    const from = Math.ceil((start + maxSeconds / 2) / frameSeconds);
    const to = Math.floor((start + maxSeconds) / frameSeconds) - 1;
    let cut = to;
    let lowest = Infinity;
    for (let f = from; f <= to && f < probabilities.length; f++) {
      const p = probabilities[f] ?? 1;
      if (p < lowest) {
        lowest = p;
        cut = f;
      }
    }
    const at = Math.min(start + maxSeconds, Math.max(start + frameSeconds, (cut + 0.5) * frameSeconds));
    out.push({ start, end: at });
    start = at;
  }
  out.push({ start, end: region.end });
  return out;
}

export function planWindows(regions: readonly SpeechRegion[], probabilities: ArrayLike<number>, frameSeconds: number, options: WindowOptions = {}): AudioWindow[] {
  const target = options.targetSeconds ?? 15;
  const max = options.maxSeconds ?? 25;
  const maxGap = options.maxGapSeconds ?? 1.0;
  if (!(target > 0 && max >= target)) throw new RangeError(`window target ${target} s must be > 0 and <= max ${max} s`);
  const pieces = regions.flatMap((r) => splitLongRegion(r, probabilities, frameSeconds, max));
  const windows: AudioWindow[] = [];
  let current: SpeechRegion[] = [];
  const flush = (): void => {
    const first = current[0];
    const last = current[current.length - 1];
    if (first !== undefined && last !== undefined) windows.push({ start: first.start, end: last.end, speech: current });
    current = [];
  };
  for (const piece of pieces) {
    const first = current[0];
    const last = current[current.length - 1];
    if (first !== undefined && last !== undefined && (piece.start - last.end > maxGap || piece.end - first.start > target)) flush();
    current.push(piece);
  }
  flush();
  return windows;
}
