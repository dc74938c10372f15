/**
 * Estimated word times for recognisers without native ones (Moonshine): each word gets a share of the
 * segment's speech time (VAD regions, silences excluded) proportional to its length in characters plus one,
 * laid out in order. Accurate to a few hundred milliseconds on read speech; results say `wordTiming:
 * 'estimated'` so callers never mistake them for aligned times. Times always fall inside the speech.
 */
import type { Word } from './recognizer.js';
import type { SpeechRegion } from '../vad/speech-regions.js';

export interface UntimedWord {
  readonly text: string;
  readonly confidence?: number;
}

export function estimateWordTimes(words: readonly UntimedWord[], speech: readonly SpeechRegion[]): Word[] {
  const total = speech.reduce((s, r) => s + Math.max(0, r.end - r.start), 0);
  if (words.length === 0 || total <= 0) return [];
  const weights = words.map((w) => w.text.length + 1);
  const weightSum = weights.reduce((a, b) => a + b, 0);
  /** Maps a position in [0, total] of concatenated speech time to an audio time. */
  const at = (pos: number, preferNext: boolean): number => {
    let acc = 0;
    for (const [i, r] of speech.entries()) {
      const len = Math.max(0, r.end - r.start);
      const isLast = i === speech.length - 1;
      if (pos < acc + len || (pos === acc + len && (!preferNext || isLast))) return r.start + (pos - acc);
      acc += len;
    }
    return speech[speech.length - 1]?.end ?? 0;
  };
  const out: Word[] = [];
  let cum = 0;
  for (const [i, w] of words.entries()) {
    const from = (cum / weightSum) * total;
    cum += weights[i] ?? 0;
    const to = (cum / weightSum) * total;
    const start = at(from, true);
    // A word never spans a silence: clip it to the region it starts in.
    const region = speech.find((r) => start >= r.start && start < r.end) ?? speech[speech.length - 1];
    const end = Math.min(at(to, false), region?.end ?? start);
    const word: Word = w.confidence === undefined ? { text: w.text, start, end: Math.max(start, end) } : { text: w.text, start, end: Math.max(start, end), confidence: w.confidence };
    out.push(word);
  }
  return out;
}
