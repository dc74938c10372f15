/**
 * Streaming end-pointer: one Silero speech probability per VAD frame in, utterance boundaries out, in
 * absolute sample positions with the padding already applied. Pure (no model, no clock), so every rule is
 * tested on made-up probabilities.
 *
 * Rules (Silero's get_speech_timestamps, made causal):
 *  - speech begins at a frame with p >= threshold, but the utterance only *opens* once it has lasted
 *    minSpeech (so a click never opens one); its start is padded back by speechPad, never before the end of
 *    the previous utterance;
 *  - a pause is frames below negThreshold; frames between the two thresholds neither start nor end one;
 *  - a pause of minSilence closes the utterance at pause start + speechPad;
 *  - an utterance reaching maxUtterance is cut at its least speech-like frame in the second half, and what
 *    follows the cut is replayed as the start of the next one, so a cut rarely splits a word.
 * Manual commit (`manualCommit`): a pause of minSilence does not close the utterance; it is reported as
 * 'voice_end' and speech lasting minSpeech after it as 'voice_start' (padded as an onset), while the utterance stays
 * open until commit(), finish() or maxUtterance.
 * Memory is bounded by maxUtterance frames of probabilities.
 */
import type { CompiledEndpointerOptions } from './endpointer-options.js';

export type EndReason =
  /** A pause of minSilence. */
  | 'silence'
  /** maxUtterance reached while speech went on. */
  | 'max_duration'
  /** The caller committed the utterance (manual flush). */
  | 'flush'
  /** The audio stream ended. */
  | 'end';

export type EndpointerEvent =
  | { readonly type: 'start'; readonly at: number }
  | { readonly type: 'end'; readonly start: number; readonly at: number; readonly reason: EndReason }
  /** Manual commit only: the speaker paused for minSilence inside the open utterance, which stays open. */
  | { readonly type: 'voice_end'; readonly start: number; readonly at: number }
  /** Manual commit only: speech resumed inside the open utterance after a reported pause. */
  | { readonly type: 'voice_start'; readonly at: number };

/**
 * Lifecycle of the current region:
 *  idle — no speech since the last utterance;
 *  pending — speech began but has not lasted minSpeech yet (not reported);
 *  open — an utterance is open (its 'start' was reported).
 */
type Phase = 'idle' | 'pending' | 'open';

export class StreamingEndpointer {
  private phase: Phase = 'idle';
  /** Frames seen; frame f covers [origin + f·frame, origin + (f+1)·frame). */
  private frames = 0;
  /** No utterance may start before this sample: the end of the previous one. */
  private floor: number;
  /** First sample of the first frame at or above threshold (pending/open). */
  private onset = 0;
  /** Padded start of the open utterance. */
  private start = 0;
  /** First sample of the current pause, if in one. */
  private pauseStart: number | undefined;
  /** Probabilities of the frames since `historyFrom` (the open or pending region), for max-duration cuts. */
  private history: number[] = [];
  private historyFrom = 0;
  /** Manual commit: the open utterance is in a reported pause (voice_end sent, no voice_start since). */
  private paused = false;
  /** Manual commit: start of the current stretch of speech in the open utterance (for voice_end). */
  private voiceFrom = 0;
  /** Manual commit: end of the last reported pause's speech, the floor of the next voice_start. */
  private voiceFloor = 0;
  /** Manual commit, while paused: first sample of speech that may resume the voice once it lasts minSpeech. */
  private resumeOnset: number | undefined;

  constructor(
    private readonly opts: CompiledEndpointerOptions,
    readonly frameSamples: number,
    /** Absolute sample position of the first frame (non-zero when resuming from a checkpoint). */
    private readonly origin = 0,
    /** No utterance starts before this (the end of the last one before a resume). @default origin */
    floor = origin,
  ) {
    this.floor = floor;
  }

  /** End of the last frame seen, in absolute samples. */
  get position(): number {
    return this.origin + this.frames * this.frameSamples;
  }

  get isOpen(): boolean {
    return this.phase === 'open';
  }

  /** Start of the open utterance, or undefined. */
  get openStart(): number | undefined {
    return this.phase === 'open' ? this.start : undefined;
  }

  /**
   * The earliest sample a future or current utterance can include: the audio before it may be discarded.
   * While idle, that is the pre-speech padding behind the current position.
   */
  get keepFrom(): number {
    switch (this.phase) {
      case 'open':
        return this.start;
      case 'pending':
        return Math.max(this.floor, this.onset - this.opts.speechPadSamples);
      case 'idle':
        return Math.max(this.floor, this.position - this.opts.speechPadSamples);
    }
  }

  push(probability: number): EndpointerEvent[] {
    const events: EndpointerEvent[] = [];
    this.step(probability, events);
    if (this.phase === 'open' && this.position - this.start >= this.opts.maxUtteranceSamples) this.cutLongUtterance(events);
    return events;
  }

  /** Ends the open utterance here (manual commit); speech that goes on opens the next one from this point. */
  commit(at = this.position): EndpointerEvent | undefined {
    if (this.phase !== 'open') return undefined;
    const end = Math.max(at, this.position);
    const event = { type: 'end', start: this.start, at: end, reason: 'flush' } as const;
    this.reset(end);
    return event;
  }

  /** Forgets the open or pending utterance without reporting it (the caller drops its audio). */
  discard(at = this.position): void {
    this.reset(Math.max(at, this.position));
  }

  /** End of stream: closes an open utterance (trimmed to its pause plus padding when in one); a pending one is dropped. */
  finish(at = this.position): EndpointerEvent | undefined {
    const end = Math.max(at, this.position);
    if (this.phase !== 'open') {
      this.reset(end);
      return undefined;
    }
    const closeAt = this.pauseStart === undefined ? end : Math.min(end, this.pauseStart + this.opts.speechPadSamples);
    const event = { type: 'end', start: this.start, at: closeAt, reason: 'end' } as const;
    this.reset(end);
    return event;
  }

  private step(p: number, events: EndpointerEvent[]): void {
    const frameStart = this.position;
    this.frames += 1;
    const now = this.position;
    if (this.phase === 'idle') {
      if (p < this.opts.threshold) return;
      this.phase = 'pending';
      this.onset = frameStart;
      this.pauseStart = undefined;
      this.history = [];
      this.historyFrom = this.frames - 1;
    }
    this.history.push(p);
    if (p >= this.opts.threshold) this.pauseStart = undefined;
    else if (p < this.opts.negThreshold) this.pauseStart ??= frameStart;

    if (this.phase === 'pending') {
      const speechSoFar = (this.pauseStart ?? now) - this.onset;
      if (speechSoFar >= this.opts.minSpeechSamples) {
        this.phase = 'open';
        this.start = Math.max(this.floor, this.onset - this.opts.speechPadSamples);
        this.voiceFrom = this.start;
        // History is kept from the utterance's first frame for the max-duration cut.
        events.push({ type: 'start', at: this.start });
      } else if (this.pauseStart !== undefined && now - this.pauseStart >= this.opts.minSilenceSamples) {
        this.reset(this.floor); // too short to be speech: forget it, the floor does not move
        return;
      }
    }
    if (this.phase === 'open' && this.opts.manualCommit) {
      this.trackVoice(p, frameStart, now, events);
      return;
    }
    if (this.phase === 'open' && this.pauseStart !== undefined && now - this.pauseStart >= this.opts.minSilenceSamples) {
      const end = Math.min(now, this.pauseStart + this.opts.speechPadSamples);
      events.push({ type: 'end', start: this.start, at: end, reason: 'silence' });
      this.reset(end);
    }
  }

  /** Manual commit: the pause and resume rules of an open utterance, reported as voice events; it stays open. */
  private trackVoice(p: number, frameStart: number, now: number, events: EndpointerEvent[]): void {
    const pad = this.opts.speechPadSamples;
    if (!this.paused) {
      if (this.pauseStart !== undefined && now - this.pauseStart >= this.opts.minSilenceSamples) {
        const end = Math.min(now, this.pauseStart + pad);
        events.push({ type: 'voice_end', start: this.voiceFrom, at: end });
        this.paused = true;
        this.voiceFloor = end;
        this.resumeOnset = undefined;
      }
      return;
    }
    if (p >= this.opts.threshold) this.resumeOnset ??= frameStart;
    if (this.resumeOnset === undefined) return;
    if ((this.pauseStart ?? now) - this.resumeOnset >= this.opts.minSpeechSamples) {
      this.voiceFrom = Math.max(this.voiceFloor, this.resumeOnset - pad);
      events.push({ type: 'voice_start', at: this.voiceFrom });
      this.paused = false;
      this.resumeOnset = undefined;
    } else if (this.pauseStart !== undefined && now - this.pauseStart >= this.opts.minSilenceSamples) {
      this.resumeOnset = undefined; // a click in the pause: forgotten, as one before an utterance would be
    }
  }

  /** Cuts at the least speech-like frame of the second half and replays the frames after the cut. */
  private cutLongUtterance(events: EndpointerEvent[]): void {
    const firstFrame = this.historyFrom;
    const startFrame = Math.ceil((this.start - this.origin) / this.frameSamples);
    const half = startFrame + Math.ceil((this.opts.maxUtteranceSamples / this.frameSamples) / 2);
    // Frames whose middle lies within maxUtterance of the start: the cut never makes an utterance too long.
    const lastFrame = Math.min(this.frames - 1, Math.floor((this.start + this.opts.maxUtteranceSamples - this.origin - Math.floor(this.frameSamples / 2)) / this.frameSamples));
    let cutFrame = lastFrame;
    let lowest = Number.POSITIVE_INFINITY;
    for (let f = Math.max(half, firstFrame); f <= lastFrame; f++) {
      const p = this.history[f - firstFrame] ?? 1;
      // Ties go to the later frame: in uniform speech the cut then falls as late as allowed.
      if (p <= lowest) {
        lowest = p;
        cutFrame = f;
      }
    }
    // Cut in the middle of the quietest frame; the rest of it and what follows belong to the next utterance.
    const cut = this.origin + cutFrame * this.frameSamples + Math.floor(this.frameSamples / 2);
    const replay = this.history.slice(cutFrame + 1 - firstFrame);
    const endFrames = this.frames;
    events.push({ type: 'end', start: this.start, at: cut, reason: 'max_duration' });
    this.reset(cut);
    this.frames = cutFrame + 1;
    for (const p of replay) this.step(p, events);
    this.frames = endFrames;
  }

  private reset(floor: number): void {
    this.phase = 'idle';
    this.floor = floor;
    this.pauseStart = undefined;
    this.history = [];
    this.paused = false;
    this.resumeOnset = undefined;
  }
}
