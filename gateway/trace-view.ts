/**
 * The waterfall of one trace as `GET /v1/audio/transcriptions/{id}/trace` answers it: spans in depth-first order
 * (children by start time), each with its depth and its offset from the trace start, so a client can draw what
 * Jaeger would show without Jaeger. Pure.
 */
import type { StoredSpan } from './ports.js';

export interface WaterfallSpan {
  readonly span_id: string;
  readonly parent_span_id: string | null;
  readonly name: string;
  readonly service: string;
  readonly kind: string;
  /** 0 for a root; a span whose parent is not stored counts as a root. */
  readonly depth: number;
  readonly started_at: string;
  readonly offset_ms: number;
  readonly duration_ms: number;
  readonly status: string;
  readonly status_message: string;
  readonly attributes: Readonly<Record<string, string>>;
}

export interface TraceWaterfall {
  readonly job_id: string;
  readonly trace_id: string;
  readonly started_at: string;
  /** From the first span's start to the last span's end. */
  readonly duration_ms: number;
  readonly span_count: number;
  /** True when the trace had more spans than were read. */
  readonly truncated: boolean;
  readonly services: readonly string[];
  readonly spans: readonly WaterfallSpan[];
}

const ms = (us: number): number => Math.round(us) / 1000;

export function traceWaterfall(jobId: string, traceId: string, spans: readonly StoredSpan[], limit: number): TraceWaterfall {
  const byStart = [...spans].sort((a, b) => a.startUs - b.startUs || a.spanId.localeCompare(b.spanId));
  const ids = new Set(byStart.map((s) => s.spanId));
  const children = new Map<string, StoredSpan[]>();
  const roots: StoredSpan[] = [];
  for (const s of byStart) {
    if (s.parentSpanId !== '' && s.parentSpanId !== s.spanId && ids.has(s.parentSpanId)) {
      const list = children.get(s.parentSpanId) ?? [];
      list.push(s);
      children.set(s.parentSpanId, list);
    } else roots.push(s);
  }
  const t0 = byStart[0]?.startUs ?? 0;
  const end = byStart.reduce((m, s) => Math.max(m, s.startUs + s.durationUs), t0);
  const out: WaterfallSpan[] = [];
  const seen = new Set<string>();
  // Iterative depth-first walk: a deep trace cannot overflow the stack, and a cycle in bad data is visited once.
  const stack: { span: StoredSpan; depth: number }[] = roots.map((span) => ({ span, depth: 0 })).reverse();
  while (stack.length > 0) {
    const next = stack.pop();
    if (!next || seen.has(next.span.spanId)) continue;
    const { span: s, depth } = next;
    seen.add(s.spanId);
    out.push({
      span_id: s.spanId, parent_span_id: s.parentSpanId === '' ? null : s.parentSpanId, name: s.name, service: s.service, kind: s.kind, depth,
      started_at: new Date(Math.floor(s.startUs / 1000)).toISOString(), offset_ms: ms(s.startUs - t0), duration_ms: ms(s.durationUs),
      status: s.statusCode, status_message: s.statusMessage, attributes: s.attributes,
    });
    for (const c of [...(children.get(s.spanId) ?? [])].reverse()) stack.push({ span: c, depth: depth + 1 });
  }
  return {
    job_id: jobId, trace_id: traceId, started_at: new Date(Math.floor(t0 / 1000)).toISOString(), duration_ms: ms(end - t0),
    span_count: out.length, truncated: spans.length >= limit, services: [...new Set(out.map((s) => s.service))].sort(), spans: out,
  };
}
