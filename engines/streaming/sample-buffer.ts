/**
 * The session's recent audio, addressed by absolute sample position. The owner appends as audio arrives and
 * discards what no utterance can still use, so the buffer holds at most one utterance plus padding.
 */
import { IllegalStateError } from '../../core/errors.js';

export class SampleBuffer {
  private data: Float32Array;
  private length = 0;
  /** Absolute position of data[0]. */
  private first: number;

  constructor(origin = 0, initialCapacity = 16000) {
    this.first = origin;
    this.data = new Float32Array(initialCapacity);
  }

  /** Absolute position just after the last sample appended. */
  get end(): number {
    return this.first + this.length;
  }

  get start(): number {
    return this.first;
  }

  get size(): number {
    return this.length;
  }

  append(samples: Float32Array): void {
    if (this.length + samples.length > this.data.length) {
      const grown = new Float32Array(Math.max(this.length + samples.length, this.data.length * 2));
      grown.set(this.data.subarray(0, this.length));
      this.data = grown;
    }
    this.data.set(samples, this.length);
    this.length += samples.length;
  }

  /** Forgets everything before `position` (no-op for positions already gone). */
  discardBefore(position: number): void {
    const drop = Math.min(this.length, Math.max(0, position - this.first));
    if (drop === 0) return;
    this.data.copyWithin(0, drop, this.length);
    this.length -= drop;
    this.first += drop;
  }

  /** A copy of [from, to); the range must still be held. */
  copy(from: number, to: number): Float32Array {
    if (from < this.first || to > this.end || to < from) {
      throw new IllegalStateError(`audio [${from}, ${to}) is not held (buffer holds [${this.first}, ${this.end}))`);
    }
    return this.data.slice(from - this.first, to - this.first);
  }
}
