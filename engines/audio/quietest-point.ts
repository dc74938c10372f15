/**
 * Where to cut a long recording: the middle of its quietest stretch near a nominal time. Two tasks that cut the same
 * file at the same nominal time find the same sample (same bytes, same arithmetic), so neighbouring parts of a long
 * file meet exactly, with no sample lost or read twice, and in a pause rather than inside a word.
 */
import { readPcm16MonoRange, readWavFormat } from './wav.js';

export interface QuietPointOptions {
  /** How far either side of the nominal time to look, seconds. @default 5 */
  readonly searchSeconds?: number;
  /** Length of the stretch whose mean energy is compared, seconds: about a short pause between words. @default 0.3 */
  readonly windowSeconds?: number;
}

const FRAME_SECONDS = 0.01;

/**
 * Sample index of the quietest point of `samples` (rate `sampleRate`) near sample `around`: frames of 10 ms, the
 * mean energy of `windowSeconds` of frames around each, the lowest wins; a tie goes to the frame nearest `around`,
 * then the earlier one. Pure, for the engine and for tests.
 */
export function quietestSample(samples: Float32Array, sampleRate: number, around: number, windowSeconds = 0.3): number {
  const frame = Math.max(1, Math.round(FRAME_SECONDS * sampleRate));
  const frames = Math.floor(samples.length / frame);
  if (frames === 0) return Math.max(0, Math.min(samples.length, around));
  const energy = new Float64Array(frames);
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    for (let i = f * frame; i < (f + 1) * frame; i++) sum += (samples[i] ?? 0) ** 2;
    energy[f] = sum / frame;
  }
  const half = Math.max(0, Math.floor(windowSeconds / FRAME_SECONDS / 2));
  // Prefix sums make every window's mean O(1).
  const prefix = new Float64Array(frames + 1);
  for (let f = 0; f < frames; f++) prefix[f + 1] = (prefix[f] ?? 0) + (energy[f] ?? 0);
  let best = -1;
  let bestEnergy = Number.POSITIVE_INFINITY;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (let f = 0; f < frames; f++) {
    const lo = Math.max(0, f - half);
    const hi = Math.min(frames, f + half + 1);
    const mean = ((prefix[hi] ?? 0) - (prefix[lo] ?? 0)) / (hi - lo);
    const center = f * frame + Math.floor(frame / 2);
    const distance = Math.abs(center - around);
    if (mean < bestEnergy || (mean === bestEnergy && distance < bestDistance)) {
      best = center;
      bestEnergy = mean;
      bestDistance = distance;
    }
  }
  return best;
}

/** The quietest point of a 16-bit mono WAV file within ±searchSeconds of `aroundSeconds`, as a sample index of the file. */
export async function quietestPointInFile(path: string, aroundSeconds: number, options: QuietPointOptions = {}): Promise<number> {
  const f = await readWavFormat(path);
  const total = Math.floor(f.dataBytes / 2);
  const around = Math.round(aroundSeconds * f.sampleRate);
  const reach = Math.round((options.searchSeconds ?? 5) * f.sampleRate);
  const from = Math.max(0, around - reach);
  const to = Math.min(total, around + reach);
  const samples = await readPcm16MonoRange(path, from, to);
  return from + quietestSample(samples, f.sampleRate, around - from, options.windowSeconds ?? 0.3);
}
