/**
 * Pure renderers of a transcript to plain text, SubRip (SRT) and WebVTT. Subtitle cues follow common broadcast
 * practice: at most `maxLines` lines of at most `maxLineLength` characters, at most `maxCueSeconds` on screen.
 * Cues are cut at word boundaries using word times when the segment has them, else times are shared out over
 * the segment in proportion to characters. A word longer than a line gets a line of its own, never broken.
 */

export interface RenderableWord {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

export interface RenderableSegment {
  readonly start: number;
  readonly end: number;
  readonly text: string;
  /** Input channel, for per-channel transcripts: shown as a [ch<N>] label when the transcript has several. */
  readonly channel?: number;
  readonly words?: readonly RenderableWord[];
}

export interface RenderableTranscript {
  readonly text: string;
  readonly segments: readonly RenderableSegment[];
}

export interface RenderOptions {
  /** Characters per subtitle line. @default 42 */
  readonly maxLineLength?: number;
  /** Lines per cue. @default 2 */
  readonly maxLines?: number;
  /** Longest time a cue stays on screen, seconds. @default 7 */
  readonly maxCueSeconds?: number;
}

export interface Cue {
  readonly start: number;
  readonly end: number;
  readonly lines: readonly string[];
}

interface Token {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

/** `HH:MM:SS<sep>mmm`; hours grow past two digits when needed; negative times clamp to zero. */
export function formatTimestamp(seconds: number, separator: ',' | '.'): string {
  const totalMs = Math.max(0, Math.round(seconds * 1000));
  const ms = totalMs % 1000;
  const totalS = Math.floor(totalMs / 1000);
  const s = totalS % 60;
  const m = Math.floor(totalS / 60) % 60;
  const h = Math.floor(totalS / 3600);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(h)}:${two(m)}:${two(s)}${separator}${String(ms).padStart(3, '0')}`;
}

/** Greedy word wrap; `firstLineReserve` characters of the first line are taken by a label. */
export function wrapWords(words: readonly string[], maxLineLength: number, firstLineReserve = 0): string[] {
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    const budget = lines.length === 0 ? maxLineLength - firstLineReserve : maxLineLength;
    if (line === '') line = w;
    else if (line.length + 1 + w.length <= budget) line = `${line} ${w}`;
    else {
      lines.push(line);
      line = w;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

function tokensOf(segment: RenderableSegment): Token[] {
  const words = (segment.words ?? []).filter((w) => w.text.trim() !== '');
  if (words.length > 0) return words.map((w) => ({ text: w.text.trim(), start: w.start, end: w.end }));
  const parts = segment.text.split(/\s+/).filter((p) => p !== '');
  const chars = parts.reduce((n, p) => n + p.length, 0);
  const span = Math.max(0, segment.end - segment.start);
  let t = segment.start;
  return parts.map((p) => {
    const d = chars === 0 ? 0 : (span * p.length) / chars;
    const token = { text: p, start: t, end: t + d };
    t += d;
    return token;
  });
}

function labelOf(segment: RenderableSegment, labelled: boolean): string {
  return labelled && segment.channel !== undefined ? `[ch${segment.channel}] ` : '';
}

function isLabelled(transcript: RenderableTranscript): boolean {
  return new Set(transcript.segments.map((s) => s.channel).filter((c) => c !== undefined)).size > 1;
}

/** Cuts the transcript into subtitle cues (see the module comment). */
export function buildCues(transcript: RenderableTranscript, options: RenderOptions = {}): Cue[] {
  const maxLineLength = options.maxLineLength ?? 42;
  const maxLines = options.maxLines ?? 2;
  const maxCueSeconds = options.maxCueSeconds ?? 7;
  const labelled = isLabelled(transcript);
  const cues: Cue[] = [];
  for (const segment of transcript.segments) {
    const label = labelOf(segment, labelled);
    let pending: Token[] = [];
    const emit = (): void => {
      const first = pending[0];
      const last = pending[pending.length - 1];
      if (!first || !last) return;
      const lines = wrapWords(pending.map((t) => t.text), maxLineLength, label.length);
      if (label && lines[0] !== undefined) lines[0] = `${label}${lines[0]}`;
      cues.push({ start: first.start, end: Math.max(last.end, first.start + 0.001), lines });
      pending = [];
    };
    for (const token of tokensOf(segment)) {
      const first = pending[0];
      if (first) {
        const fits = wrapWords([...pending, token].map((t) => t.text), maxLineLength, label.length).length <= maxLines;
        if (!fits || token.end - first.start > maxCueSeconds) emit();
      }
      pending.push(token);
    }
    emit();
  }
  return cues;
}

/** Plain text: one segment per line ([ch<N>] labels when the transcript has several channels). */
export function renderTxt(transcript: RenderableTranscript): string {
  if (transcript.segments.length === 0) return transcript.text.trim() === '' ? '' : `${transcript.text.trim()}\n`;
  const labelled = isLabelled(transcript);
  return transcript.segments
    .map((s) => `${labelOf(s, labelled)}${s.text.trim()}`)
    .filter((l) => l !== '')
    .map((l) => `${l}\n`)
    .join('');
}

/** SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, a blank line between cues. */
export function renderSrt(transcript: RenderableTranscript, options: RenderOptions = {}): string {
  return buildCues(transcript, options)
    .map((c, i) => `${i + 1}\n${formatTimestamp(c.start, ',')} --> ${formatTimestamp(c.end, ',')}\n${c.lines.join('\n')}\n`)
    .join('\n');
}

/** WebVTT: the `WEBVTT` header, then cues with `HH:MM:SS.mmm --> HH:MM:SS.mmm`. */
export function renderVtt(transcript: RenderableTranscript, options: RenderOptions = {}): string {
  const cues = buildCues(transcript, options).map(
    // "-->" may not appear inside a cue's text; escape the characters WebVTT reserves.
    (c) => `${formatTimestamp(c.start, '.')} --> ${formatTimestamp(c.end, '.')}\n${c.lines.map(escapeVtt).join('\n')}\n`,
  );
  return ['WEBVTT\n', ...cues].join('\n');
}

function escapeVtt(line: string): string {
  return line.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
