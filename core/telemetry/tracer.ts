/**
 * Tracing port. Domain code sees Tracer; OpenTelemetry lives in the adapter below. When no SDK is registered
 * (DALSTON_OTEL_ENABLED=false, unit tests) the OTel API hands out non-recording spans, so the adapter costs a
 * function call and nothing is exported.
 */
import { SpanStatusCode, context, propagation, trace, type Attributes, type Context, type Span, type SpanKind } from '@opentelemetry/api';

export type SpanAttributeValue = string | number | boolean;
export type SpanAttributes = Readonly<Record<string, SpanAttributeValue | undefined>>;

/** What a running span lets domain code do. */
export interface ActiveSpan {
  setAttribute(key: string, value: SpanAttributeValue): void;
  setAttributes(attributes: SpanAttributes): void;
  /** Records the exception as a span event and sets status ERROR. */
  recordError(error: unknown): void;
  /** 32 hex characters, or undefined when tracing is off. */
  readonly traceId: string | undefined;
  readonly spanId: string | undefined;
}

export interface StartSpanOptions {
  /** Start time in epoch milliseconds (e.g. the enqueue timestamp for `queue_wait`). @default now */
  readonly startTimeMs?: number;
  /** @default SpanKind.INTERNAL */
  readonly kind?: SpanKind;
  /**
   * W3C trace-context headers (`traceparent`, `tracestate`) to continue a remote trace from, for transports no
   * instrumentation covers (uWS requests, hand-read Kafka headers). @default the active context
   */
  readonly parentCarrier?: Readonly<Record<string, string | undefined>>;
}

/** Header map trace context is written into and read from. */
export type TraceCarrier = Record<string, string>;

export interface Tracer {
  /**
   * Runs fn inside a new child span of the active one. The span ends when fn settles; a thrown or rejected
   * error is recorded with status ERROR and rethrown.
   */
  startSpan<T>(name: string, attributes: SpanAttributes, fn: (span: ActiveSpan) => Promise<T> | T, options?: StartSpanOptions): Promise<T>;
  /** A span covering a past interval (start and end in epoch ms), child of the active span: `queue_wait`. */
  recordSpan(name: string, attributes: SpanAttributes, startTimeMs: number, endTimeMs: number): void;
  /** Sets attributes on the active span, if any. */
  setAttributes(attributes: SpanAttributes): void;
  /** Records an error on the active span, if any, with status ERROR. */
  recordError(error: unknown): void;
  /** Trace id of the active span, or undefined when there is none or tracing is off. */
  currentTraceId(): string | undefined;
  /** Writes the active context's `traceparent`/`tracestate` into carrier (nothing when tracing is off). */
  inject(carrier: TraceCarrier): TraceCarrier;
}

function clean(attributes: SpanAttributes): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined) out[k] = v;
  return out;
}

function toException(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function markError(span: Span, error: unknown): void {
  const e = toException(error);
  span.recordException(e);
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
}

function ids(span: Span): { traceId: string | undefined; spanId: string | undefined } {
  const ctx = span.spanContext();
  return trace.isSpanContextValid(ctx) ? { traceId: ctx.traceId, spanId: ctx.spanId } : { traceId: undefined, spanId: undefined };
}

function wrap(span: Span): ActiveSpan {
  const { traceId, spanId } = ids(span);
  return {
    setAttribute: (key, value) => void span.setAttribute(key, value),
    setAttributes: (attributes) => void span.setAttributes(clean(attributes)),
    recordError: (error) => markError(span, error),
    traceId,
    spanId,
  };
}

/** The OpenTelemetry adapter. `name` is the instrumentation scope (e.g. 'dalston-gateway'). */
export function createOtelTracer(name: string, version?: string): Tracer {
  const tracer = () => trace.getTracer(name, version);
  return {
    async startSpan(spanName, attributes, fn, options = {}) {
      const parent = options.parentCarrier ? propagation.extract(context.active(), options.parentCarrier) : context.active();
      const span = tracer().startSpan(spanName, {
        attributes: clean(attributes),
        ...(options.startTimeMs !== undefined ? { startTime: options.startTimeMs } : {}),
        ...(options.kind !== undefined ? { kind: options.kind } : {}),
      }, parent);
      const ctx: Context = trace.setSpan(parent, span);
      try {
        return await context.with(ctx, () => fn(wrap(span)));
      } catch (error) {
        markError(span, error);
        throw error;
      } finally {
        span.end();
      }
    },
    recordSpan(spanName, attributes, startTimeMs, endTimeMs) {
      const span = tracer().startSpan(spanName, { attributes: clean(attributes), startTime: startTimeMs });
      span.end(Math.max(startTimeMs, endTimeMs));
    },
    setAttributes(attributes) {
      trace.getActiveSpan()?.setAttributes(clean(attributes));
    },
    recordError(error) {
      const span = trace.getActiveSpan();
      if (span) markError(span, error);
    },
    currentTraceId() {
      const span = trace.getActiveSpan();
      return span ? ids(span).traceId : undefined;
    },
    inject(carrier) {
      propagation.inject(context.active(), carrier);
      return carrier;
    },
  };
}

/** A tracer that does nothing and runs fn directly: the default for unit tests of domain code. */
export const noopTracer: Tracer = {
  startSpan: async (_name, _attributes, fn) =>
    fn({ setAttribute: () => undefined, setAttributes: () => undefined, recordError: () => undefined, traceId: undefined, spanId: undefined }),
  recordSpan: () => undefined,
  setAttributes: () => undefined,
  recordError: () => undefined,
  currentTraceId: () => undefined,
  inject: (carrier) => carrier,
};
