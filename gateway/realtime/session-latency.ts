/**
 * The latency a gateway measured over one session, summarised for the `realtime_sessions` row (`rt.session.closed`
 * `latency`): the same two figures as `dalston_realtime_latency_seconds{kind}`, one sample per utterance.
 */

/** Per-utterance samples of one session, in ms. */
export interface SessionLatencySamples {
  /** Audio received by the gateway → the utterance's first partial read back. */
  readonly firstPartialMs: number[];
  /** End of speech → the utterance's final read back. */
  readonly finalMs: number[];
}

export interface SessionLatencySummary {
  readonly firstPartialP50Ms: number;
  readonly firstPartialP95Ms: number;
  readonly finalP50Ms: number;
  readonly finalP95Ms: number;
}

export const newLatencySamples = (): SessionLatencySamples => ({ firstPartialMs: [], finalMs: [] });

/** Nearest-rank percentile (`p` in 0..100) of `values`; 0 for none (the row's "not measured"). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? 0;
}

/** p50/p95 of each kind, rounded to whole ms; undefined when the session measured nothing (no utterance). */
export function summarizeLatency(s: SessionLatencySamples): SessionLatencySummary | undefined {
  if (s.firstPartialMs.length === 0 && s.finalMs.length === 0) return undefined;
  const at = (v: readonly number[], p: number) => Math.round(percentile(v, p));
  return {
    firstPartialP50Ms: at(s.firstPartialMs, 50), firstPartialP95Ms: at(s.firstPartialMs, 95),
    finalP50Ms: at(s.finalMs, 50), finalP95Ms: at(s.finalMs, 95),
  };
}
