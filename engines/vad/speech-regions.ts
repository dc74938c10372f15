/**
 * Turns per-frame speech probabilities into speech regions, the rules of Silero's own get_speech_timestamps:
 * hysteresis (start at `threshold`, end only below `negThreshold`), a region ends after `minSilenceMs` of
 * quiet, regions shorter than `minSpeechMs` are dropped, and each region is padded by `speechPadMs` (a gap
 * too small for both pads is split in the middle). Pure, so it is tested without the model, and shared by
 * the batch detector and the streaming end-pointer.
 */

export interface SpeechRegion {
  /** Seconds from the start of the audio. */
  readonly start: number;
  readonly end: number;
}

export interface VadOptions {
  /** Probability at which speech starts. @default 0.5 */
  readonly threshold?: number;
  /** Probability below which speech may end. @default threshold - 0.15 */
  readonly negThreshold?: number;
  /** Shorter regions are dropped (clicks, breaths). @default 250 */
  readonly minSpeechMs?: number;
  /** Quiet needed to close a region; longer keeps sentences together for chunking. @default 300 */
  readonly minSilenceMs?: number;
  /** Added on each side so word onsets and tails are not clipped. @default 100 */
  readonly speechPadMs?: number;
}

export interface ResolvedVadOptions {
  readonly threshold: number;
  readonly negThreshold: number;
  readonly minSpeechSeconds: number;
  readonly minSilenceSeconds: number;
  readonly speechPadSeconds: number;
}

export function resolveVadOptions(options: VadOptions = {}): ResolvedVadOptions {
  const threshold = options.threshold ?? 0.5;
  if (!(threshold > 0 && threshold < 1)) throw new RangeError(`VAD threshold must be in (0, 1), got ${threshold}`);
  const negThreshold = options.negThreshold ?? Math.max(0.01, threshold - 0.15);
  return {
    threshold,
    negThreshold,
    minSpeechSeconds: (options.minSpeechMs ?? 250) / 1000,
    minSilenceSeconds: (options.minSilenceMs ?? 300) / 1000,
    speechPadSeconds: (options.speechPadMs ?? 100) / 1000,
  };
}

export type EndpointEvent =
  | { readonly type: 'speech-start'; readonly time: number }
  | { readonly type: 'speech-end'; readonly region: SpeechRegion };

/**
 * Streaming end-pointer: feed one probability per frame, get speech-start / speech-end events (unpadded
 * times). Memory is constant, so it can run on live audio forever.
 */
export class Endpointer {
  private readonly opts: ResolvedVadOptions;
  private readonly frameSeconds: number;
  private frames = 0;
  private speechStart: number | undefined;
  private silenceStart: number | undefined;

  constructor(frameSeconds: number, options: VadOptions = {}) {
    this.opts = resolveVadOptions(options);
    this.frameSeconds = frameSeconds;
  }

  get inSpeech(): boolean {
    return this.speechStart !== undefined;
  }

  push(probability: number): EndpointEvent | undefined {
    const t = this.frames * this.frameSeconds;
    this.frames += 1;
    if (this.speechStart === undefined) {
      if (probability >= this.opts.threshold) {
        this.speechStart = t;
        this.silenceStart = undefined;
        return { type: 'speech-start', time: t };
      }
      return undefined;
    }
    if (probability >= this.opts.threshold) {
      this.silenceStart = undefined;
      return undefined;
    }
    if (probability < this.opts.negThreshold) {
      this.silenceStart ??= t;
      if (t + this.frameSeconds - this.silenceStart >= this.opts.minSilenceSeconds) return this.close(this.silenceStart);
    }
    return undefined;
  }

  /** Ends an open region at the end of the audio. */
  flush(): EndpointEvent | undefined {
    if (this.speechStart === undefined) return undefined;
    return this.close(this.silenceStart ?? this.frames * this.frameSeconds);
  }

  private close(end: number): EndpointEvent {
    const region = { start: this.speechStart ?? 0, end };
    this.speechStart = undefined;
    this.silenceStart = undefined;
    return { type: 'speech-end', region };
  }
}

/** Batch form: probabilities of consecutive frames → padded regions within [0, durationSeconds]. */
export function speechRegions(probabilities: ArrayLike<number>, frameSeconds: number, durationSeconds: number, options: VadOptions = {}): SpeechRegion[] {
  const opts = resolveVadOptions(options);
  const endpointer = new Endpointer(frameSeconds, options);
  const raw: SpeechRegion[] = [];
  const take = (e: EndpointEvent | undefined): void => {
    if (e?.type === 'speech-end' && e.region.end - e.region.start >= opts.minSpeechSeconds) raw.push(e.region);
  };
  for (let i = 0; i < probabilities.length; i++) take(endpointer.push(probabilities[i] ?? 0));
  take(endpointer.flush());
  return pad(raw, opts.speechPadSeconds, durationSeconds);
}

function pad(regions: readonly SpeechRegion[], padSeconds: number, duration: number): SpeechRegion[] {
  const out = regions.map((r) => ({ start: r.start, end: r.end }));
  for (let i = 0; i < out.length; i++) {
    const r = out[i];
    if (r === undefined) continue;
    const prev = out[i - 1];
    const next = out[i + 1];
    r.start = i === 0 ? Math.max(0, r.start - padSeconds) : r.start;
    if (next !== undefined) {
      const gap = next.start - r.end;
      if (gap < 2 * padSeconds) {
        r.end += gap / 2;
        next.start -= gap / 2;
      } else {
        r.end += padSeconds;
        next.start -= padSeconds;
      }
    } else {
      r.end = Math.min(duration, r.end + padSeconds);
    }
    if (prev !== undefined && r.start < prev.end) r.start = prev.end;
  }
  return out;
}
