/** Summary statistics shared by the benchmarks: nearest-rank percentiles over one run's samples. */

export interface Percentiles {
  readonly n: number;
  readonly mean: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

/** Nearest-rank percentiles (NaN for an empty sample, so a missing figure is visible rather than zero). */
export function percentiles(values: readonly number[]): Percentiles {
  const s = [...values].filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? Number.NaN;
  const mean = s.length === 0 ? Number.NaN : s.reduce((a, b) => a + b, 0) / s.length;
  return { n: s.length, mean, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: s[s.length - 1] ?? Number.NaN };
}

/** `p50/p95/p99` rounded for a table cell. */
export function formatPercentiles(p: Percentiles, digits = 0): string {
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(digits) : '–');
  return `${f(p.p50)}/${f(p.p95)}/${f(p.p99)}`;
}
