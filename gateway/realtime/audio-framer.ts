/**
 * 16 kHz mono float samples → ~100 ms frames of s16le for realtime.input, each stamped with the session sample
 * offset of its first sample. Holds at most one frame; allocated when the first audio arrives.
 */
export const FRAME_SAMPLES = 1600;

export interface PcmFrame {
  readonly offset: number;
  readonly pcm: Buffer;
}

export class AudioFramer {
  #buf = new Int16Array(FRAME_SAMPLES);
  #fill = 0;
  /** Session sample position of the next sample pushed. */
  #next: number;

  constructor(startOffset: number) {
    this.#next = startOffset;
  }

  /** Samples framed or held so far (the session audio position). */
  get position(): number {
    return this.#next;
  }

  /** Adds samples; answers the frames completed by them. */
  push(samples: Float32Array): PcmFrame[] {
    const out: PcmFrame[] = [];
    for (let i = 0; i < samples.length; i++) {
      const x = samples[i] ?? 0;
      this.#buf[this.#fill++] = x >= 1 ? 32767 : x <= -1 ? -32768 : Math.round(x * 32767);
      this.#next++;
      if (this.#fill === FRAME_SAMPLES) out.push(this.#take());
    }
    return out;
  }

  /** The partial frame held, if any (before a flush, clear or end, so the engine has all audio). */
  drain(): PcmFrame | undefined {
    return this.#fill === 0 ? undefined : this.#take();
  }

  #take(): PcmFrame {
    const pcm = Buffer.from(this.#buf.buffer, 0, this.#fill * 2);
    const frame = { offset: this.#next - this.#fill, pcm: Buffer.from(pcm) };
    this.#fill = 0;
    return frame;
  }
}
