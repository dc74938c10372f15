/**
 * Mixed-radix Cooley-Tukey FFT for any length whose factors are small (Whisper's 400 = 2^4 * 5^2), about ten
 * times fewer operations than the direct DFT it replaces in the log-mel front end.
 */
export class MixedRadixFft {
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  private readonly scratchRe: Float64Array;
  private readonly scratchIm: Float64Array;

  constructor(readonly n: number) {
    this.cos = new Float64Array(n);
    this.sin = new Float64Array(n);
    for (let t = 0; t < n; t++) {
      this.cos[t] = Math.cos((2 * Math.PI * t) / n);
      this.sin[t] = -Math.sin((2 * Math.PI * t) / n);
    }
    this.scratchRe = new Float64Array(n);
    this.scratchIm = new Float64Array(n);
  }

  /** Forward DFT of the real input `x` (length n) into outRe/outIm (length n). */
  transformReal(x: ArrayLike<number>, outRe: Float64Array, outIm: Float64Array): void {
    this.rec(x, 0, 1, this.n, outRe, outIm, 0);
  }

  private rec(x: ArrayLike<number>, offset: number, stride: number, n: number, outRe: Float64Array, outIm: Float64Array, outOffset: number, inIm?: Float64Array): void {
    if (n === 1) {
      outRe[outOffset] = x[offset] ?? 0;
      outIm[outOffset] = inIm ? (inIm[offset] ?? 0) : 0;
      return;
    }
    const p = smallestFactor(n);
    const m = n / p;
    // Sub-transforms of the p decimated sequences x[r + p*j], written contiguously at outOffset + r*m.
    for (let r = 0; r < p; r++) this.rec(x, offset + r * stride, stride * p, m, outRe, outIm, outOffset + r * m, inIm);
    const re = this.scratchRe;
    const im = this.scratchIm;
    const step = this.n / n;
    for (let k = 0; k < m; k++) {
      for (let q = 0; q < p; q++) {
        const kk = k + m * q;
        let sr = 0;
        let si = 0;
        for (let r = 0; r < p; r++) {
          const tw = ((r * kk) % n) * step;
          const c = this.cos[tw] ?? 0;
          const s = this.sin[tw] ?? 0;
          const yr = outRe[outOffset + r * m + k] ?? 0;
          const yi = outIm[outOffset + r * m + k] ?? 0;
          sr += yr * c - yi * s;
          si += yr * s + yi * c;
        }
        re[kk] = sr;
        im[kk] = si;
      }
    }
    for (let i = 0; i < n; i++) {
      outRe[outOffset + i] = re[i] ?? 0;
      outIm[outOffset + i] = im[i] ?? 0;
    }
  }
}

function smallestFactor(n: number): number {
  for (let f = 2; f * f <= n; f++) if (n % f === 0) return f;
  return n;
}
