/**
 * Parsing `pocketsphinx_continuous -time yes` output into segments. For each utterance it prints the hypothesis
 * line, then one `word start end posterior` line per token with times in seconds from the start of the file:
 *
 *   he was not an illness those young man
 *   <s> 0.000 0.060 0.999500
 *   he 0.210 0.320 0.998701
 *   was(2) 0.330 0.540 0.999800
 *   [SPEECH] 0.980 1.100 0.535598
 *   </s> 2.800 2.970 1.000000
 *
 * Sentence markers, silence and fillers (`<s>`, `</s>`, `<sil>`, `[NOISE]`, `[SPEECH]`, `++…++`) are dropped and
 * pronunciation variants (`was(2)`) lose their suffix. Words are grouped into segments at utterance boundaries,
 * at pauses longer than `segmentGapSeconds`, and before a segment would exceed `maxSegmentSeconds`.
 */
import type { Segment, Word } from '../recognizer.js';

export interface SegmentationOptions {
  /** A pause between words longer than this starts a new segment. @default 0.5 */
  readonly segmentGapSeconds?: number;
  /** No segment is longer than this. @default 30 */
  readonly maxSegmentSeconds?: number;
  /** Times are clamped to [0, durationSeconds] when given. */
  readonly durationSeconds?: number;
}

const WORD_LINE = /^(\S+)\s+(-?\d+(?:\.\d+)?)\s+(-?\d+(?:\.\d+)?)\s+(-?\d+(?:\.\d+)?(?:e-?\d+)?)$/;

function isFiller(token: string): boolean {
  return /^<.*>$/.test(token) || /^\[.*\]$/.test(token) || /^\+\+.*\+\+$/.test(token);
}

export interface ParsedToken {
  readonly word: Word;
  /** True for the first real word after an `<s>` marker. */
  readonly utteranceStart: boolean;
}

/** The recognised words, in order, with a flag on each utterance's first word. */
export function parseWordLines(stdout: string, durationSeconds?: number): ParsedToken[] {
  const tokens: ParsedToken[] = [];
  let newUtterance = true;
  const clamp = (t: number): number => Math.max(0, durationSeconds === undefined ? t : Math.min(durationSeconds, t));
  for (const raw of stdout.split('\n')) {
    const m = WORD_LINE.exec(raw.trim());
    if (!m) continue;
    const [, token = '', startRaw = '0', endRaw = '0', postRaw = '0'] = m;
    if (token === '<s>') {
      newUtterance = true;
      continue;
    }
    if (isFiller(token)) continue;
    const text = token.replace(/\(\d+\)$/, '');
    if (text.length === 0) continue;
    const start = clamp(Number(startRaw));
    const end = Math.max(start, clamp(Number(endRaw)));
    const confidence = Math.max(0, Math.min(1, Number(postRaw)));
    tokens.push({ word: { text, start, end, confidence }, utteranceStart: newUtterance });
    newUtterance = false;
  }
  return tokens;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Groups parsed words into segments (see the module comment). */
export function segmentWords(tokens: readonly ParsedToken[], options: SegmentationOptions = {}): Segment[] {
  const gap = options.segmentGapSeconds ?? 0.5;
  const maxLen = options.maxSegmentSeconds ?? 30;
  const segments: Segment[] = [];
  let current: Word[] = [];
  const flush = (): void => {
    const first = current[0];
    const last = current[current.length - 1];
    if (first && last) {
      segments.push({
        start: round3(first.start),
        end: round3(last.end),
        text: current.map((w) => w.text).join(' '),
        words: current.map((w) => ({ ...w, start: round3(w.start), end: round3(w.end) })),
      });
    }
    current = [];
  };
  for (const { word, utteranceStart } of tokens) {
    const first = current[0];
    const last = current[current.length - 1];
    if (first && last && (utteranceStart || word.start - last.end > gap || word.end - first.start > maxLen)) flush();
    current.push(word);
  }
  flush();
  return segments;
}

/** Parses pocketsphinx_continuous output into segments. */
export function parsePocketsphinxOutput(stdout: string, options: SegmentationOptions = {}): Segment[] {
  return segmentWords(parseWordLines(stdout, options.durationSeconds), options);
}
