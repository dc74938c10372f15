/**
 * Where a job's wall time goes, read from its trace waterfall (`GET …/{id}/trace`): how long each kind of span took,
 * and the gaps no span covers (Kafka transit, fetch waits, anything uninstrumented), named by the span that ended
 * before the gap and the one that began after it. Pure; `npm run bench:batch -- --trace` prints it.
 */
import { percentiles, type Percentiles } from '../stats.js';

export interface TraceSpan {
  readonly name: string;
  readonly service: string;
  readonly offset_ms: number;
  readonly duration_ms: number;
}

export interface TraceBreakdown {
  readonly jobs: number;
  /** Per `service: span name`, its duration. */
  readonly spans: Readonly<Record<string, Percentiles>>;
  /** Per `a → b`, the time between the end of the spans before and the start of b, when no span covered it. */
  readonly gaps: Readonly<Record<string, Percentiles>>;
  /** Per job, the sum of its gaps. */
  readonly uncoveredMs: Percentiles;
  /** Per job, from the first span's start to the last span's end. */
  readonly traceMs: Percentiles;
}

const key = (s: TraceSpan): string => `${s.service}: ${s.name}`;

/** The gaps of one trace: walking spans by start time, any stretch after the latest end so far and before the next start. */
export function traceGaps(spans: readonly TraceSpan[]): { readonly from: string; readonly to: string; readonly ms: number }[] {
  const sorted = [...spans].sort((a, b) => a.offset_ms - b.offset_ms);
  const gaps: { from: string; to: string; ms: number }[] = [];
  let frontier = Number.NEGATIVE_INFINITY;
  let last: TraceSpan | undefined;
  for (const s of sorted) {
    if (last !== undefined && s.offset_ms > frontier) gaps.push({ from: key(last), to: key(s), ms: s.offset_ms - frontier });
    const end = s.offset_ms + s.duration_ms;
    if (end >= frontier) {
      frontier = end;
      last = s;
    }
  }
  return gaps;
}

export function traceBreakdown(traces: readonly (readonly TraceSpan[])[]): TraceBreakdown {
  const durations = new Map<string, number[]>();
  const gapSamples = new Map<string, number[]>();
  const uncovered: number[] = [];
  const total: number[] = [];
  const push = (m: Map<string, number[]>, k: string, v: number): void => {
    const list = m.get(k);
    if (list) list.push(v);
    else m.set(k, [v]);
  };
  for (const spans of traces) {
    if (spans.length === 0) continue;
    for (const s of spans) push(durations, key(s), s.duration_ms);
    const gaps = traceGaps(spans);
    for (const g of gaps) push(gapSamples, `${g.from} → ${g.to}`, g.ms);
    uncovered.push(gaps.reduce((sum, g) => sum + g.ms, 0));
    const start = Math.min(...spans.map((s) => s.offset_ms));
    const end = Math.max(...spans.map((s) => s.offset_ms + s.duration_ms));
    total.push(end - start);
  }
  const summarise = (m: Map<string, number[]>) => Object.fromEntries([...m].map(([k, v]) => [k, percentiles(v)]));
  return { jobs: total.length, spans: summarise(durations), gaps: summarise(gapSamples), uncoveredMs: percentiles(uncovered), traceMs: percentiles(total) };
}
