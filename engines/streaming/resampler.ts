/**
 * Streaming band-limited resampler (windowed sinc, Blackman window) from any input rate to a fixed output
 * rate. Output sample n is computed from the input around the exact rational position n·in/out, from integer
 * indices only, so the result does not depend on how the input was split into chunks: feeding a signal in
 * pieces gives the same samples as feeding it whole. The kernel is zero-phase (no delay in the output's
 * time base); the cost is a look-ahead of `halfWidth` input samples (about 1 ms), held back until more input
 * or `flush()` arrives.
 */
import { IllegalStateError, InvalidInputError } from '../../core/errors.js';

/** Zero crossings of the sinc on each side: 16 gives > 70 dB stop-band with the Blackman window. */
const ZERO_CROSSINGS = 16;
/** Pass-band edge as a fraction of the lower Nyquist frequency; the transition band sits above it. */
const ROLLOFF = 0.92;
/** Kernel table points per unit of the sinc argument; linear interpolation between them is ~1e-6 exact. */
const TABLE_RESOLUTION = 512;

interface Kernel {
  /** Samples of sinc(x)·blackman(x / ZERO_CROSSINGS) for x = i / TABLE_RESOLUTION, i = 0 … ZERO_CROSSINGS·TABLE_RESOLUTION. */
  readonly table: Float64Array;
}

let sharedKernel: Kernel | undefined;

function kernel(): Kernel {
  if (sharedKernel !== undefined) return sharedKernel;
  const n = ZERO_CROSSINGS * TABLE_RESOLUTION;
  const table = new Float64Array(n + 2); // one spare point so interpolation at the edge reads a zero
  for (let i = 0; i <= n; i++) {
    const x = i / TABLE_RESOLUTION;
    const sinc = i === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
    const w = 0.42 + 0.5 * Math.cos((Math.PI * x) / ZERO_CROSSINGS) + 0.08 * Math.cos((2 * Math.PI * x) / ZERO_CROSSINGS);
    table[i] = sinc * w;
  }
  sharedKernel = { table };
  return sharedKernel;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

export class StreamingResampler {
  readonly inputRate: number;
  readonly outputRate: number;
  private readonly step: number; // input samples per output sample, as the rational up/down below
  private readonly up: number;
  private readonly down: number;
  /** Cut-off in cycles per input sample ×2 (1 = the input's Nyquist). */
  private readonly cutoff: number;
  /** Kernel half-width in input samples. */
  private readonly halfWidth: number;
  private readonly table: Float64Array;
  /** Input samples still needed, starting at absolute input index `bufferStart`. */
  private buffer = new Float32Array(0);
  private bufferStart = 0;
  private bufferLength = 0;
  /** Absolute count of input samples received. */
  private received = 0;
  /** Index of the next output sample. */
  private nextOutput = 0;
  private flushed = false;

  constructor(inputRate: number, outputRate: number) {
    if (!Number.isInteger(inputRate) || inputRate <= 0) throw new InvalidInputError(`resampler input rate must be a positive integer, got ${inputRate}`);
    if (!Number.isInteger(outputRate) || outputRate <= 0) throw new InvalidInputError(`resampler output rate must be a positive integer, got ${outputRate}`);
    this.inputRate = inputRate;
    this.outputRate = outputRate;
    const g = gcd(inputRate, outputRate);
    this.up = outputRate / g;
    this.down = inputRate / g;
    this.step = this.down / this.up;
    this.cutoff = (ROLLOFF * Math.min(inputRate, outputRate)) / inputRate;
    this.halfWidth = Math.ceil(ZERO_CROSSINGS / this.cutoff);
    this.table = kernel().table;
  }

  /** True when the rates are equal: input is passed through unchanged. */
  get passthrough(): boolean {
    return this.up === this.down;
  }

  /** Input samples held back for the kernel's look-ahead and history (bounded by ~2 half-widths + the last chunk). */
  get bufferedSamples(): number {
    return this.bufferLength;
  }

  /** Resamples the next piece of input; returns every output sample whose input neighbourhood is now known. */
  push(input: Float32Array): Float32Array {
    if (this.flushed) throw new IllegalStateError('resampler was flushed: the stream has ended');
    if (this.passthrough) {
      this.received += input.length;
      this.nextOutput += input.length;
      return input.slice();
    }
    this.append(input);
    return this.produce(this.received);
  }

  /** Ends the stream: the look-ahead is filled with silence and the remaining output is returned; no push after it. */
  flush(): Float32Array {
    if (this.flushed) throw new IllegalStateError('resampler was already flushed');
    this.flushed = true;
    if (this.passthrough || this.received === 0) return new Float32Array(0);
    // Outputs up to the one whose position is the last input sample; later ones would be pure ringing.
    const endOutput = Math.floor(((this.received - 1) * this.up) / this.down) + 1;
    const out = this.produce(Number.POSITIVE_INFINITY, endOutput);
    return out;
  }

  private append(input: Float32Array): void {
    const needed = this.bufferLength + input.length;
    if (needed > this.buffer.length) {
      const grown = new Float32Array(Math.max(needed, this.buffer.length * 2, 1024));
      grown.set(this.buffer.subarray(0, this.bufferLength));
      this.buffer = grown;
    }
    this.buffer.set(input, this.bufferLength);
    this.bufferLength += input.length;
    this.received += input.length;
  }

  /**
   * Computes outputs while their right-hand neighbourhood lies below `available` (input samples known; beyond
   * `received` they are zeros) and, when given, below `limit` outputs.
   */
  private produce(available: number, limit = Number.POSITIVE_INFINITY): Float32Array {
    const hw = this.halfWidth;
    const out: number[] = [];
    const scale = this.cutoff; // keeps unit gain at DC whatever the ratio
    const res = TABLE_RESOLUTION;
    const tableMax = ZERO_CROSSINGS * res;
    for (;;) {
      const n = this.nextOutput;
      if (n >= limit) break;
      // Exact position n·down/up as integer part + remainder, so no rounding accumulates over hours.
      const num = n * this.down;
      const centre = Math.floor(num / this.up);
      const frac = (num - centre * this.up) / this.up;
      if (centre + hw >= available) break;
      let acc = 0;
      const from = Math.max(0, centre - hw + 1);
      const to = Math.min(this.received - 1, centre + hw);
      for (let k = from; k <= to; k++) {
        const x = Math.abs(centre + frac - k) * this.cutoff * res;
        if (x >= tableMax) continue;
        const i = Math.floor(x);
        const t = x - i;
        const h = (this.table[i] ?? 0) * (1 - t) + (this.table[i + 1] ?? 0) * t;
        acc += (this.buffer[k - this.bufferStart] ?? 0) * h;
      }
      out.push(acc * scale);
      this.nextOutput = n + 1;
    }
    this.discardHistory();
    return Float32Array.from(out);
  }

  /** Drops input no future output can reach (older than the next output's left neighbourhood). */
  private discardHistory(): void {
    const centre = Math.floor((this.nextOutput * this.down) / this.up);
    const keepFrom = Math.max(0, centre - this.halfWidth + 1);
    const drop = Math.min(this.bufferLength, keepFrom - this.bufferStart);
    if (drop <= 0) return;
    this.buffer.copyWithin(0, drop, this.bufferLength);
    this.bufferLength -= drop;
    this.bufferStart += drop;
  }

  /** Input samples per output sample. */
  get ratio(): number {
    return this.step;
  }
}
