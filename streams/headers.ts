/**
 * The headers every Dalston message carries. Trace context uses the W3C names through @opentelemetry/api's
 * global propagator: with an SDK registered a consumer's spans join the producer's trace; without one the
 * propagator is a no-op and the trace headers are simply absent.
 */
import { randomUUID } from 'node:crypto';
import { context as otelContext, propagation, type Context, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { systemClock, type Clock } from '../core/clock.js';
import { HEADER } from '../core/observability-names.js';
import { MessageDecodeError } from './validate.js';

export interface MessageHeaders {
  /** Unique per message (a retried send keeps it, so consumers can de-duplicate). */
  readonly messageId: string;
  /** When the producer enqueued the message, ms since the epoch: the start of queue-wait time. */
  readonly enqueuedAt: number;
  readonly requestId?: string;
  readonly tenantId?: string;
  /** W3C trace context. */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/** Headers as they sit on a Kafka record (what kafkajs hands a consumer). */
export type RawHeaders = Readonly<Record<string, Buffer | string | readonly (Buffer | string)[] | undefined>>;

export interface NewHeadersOptions {
  readonly requestId?: string;
  readonly tenantId?: string;
  /** Context whose span becomes the parent of the consumer's work. @default the active context */
  readonly context?: Context;
  /** @default systemClock */
  readonly clock?: Clock;
}

type Carrier = Record<string, string>;
const setter: TextMapSetter<Carrier> = { set: (c, k, v) => void (c[k] = v) };
const getter: TextMapGetter<Carrier> = { get: (c, k) => c[k], keys: (c) => Object.keys(c) };

/** Headers for a new message: fresh message id, now as enqueued_at, trace context injected from `context`. */
export function newMessageHeaders(options: NewHeadersOptions = {}): MessageHeaders {
  const carrier: Carrier = {};
  propagation.inject(options.context ?? otelContext.active(), carrier, setter);
  return {
    messageId: randomUUID(),
    enqueuedAt: (options.clock ?? systemClock).now(),
    ...(options.requestId !== undefined && { requestId: options.requestId }),
    ...(options.tenantId !== undefined && { tenantId: options.tenantId }),
    ...(carrier[HEADER.traceparent] !== undefined && { traceparent: carrier[HEADER.traceparent] }),
    ...(carrier[HEADER.tracestate] !== undefined && { tracestate: carrier[HEADER.tracestate] }),
  };
}

/** Headers to put on a Kafka record. Absent optional fields are left off, never sent empty. */
export function encodeHeaders(h: MessageHeaders): Record<string, string> {
  const out: Record<string, string> = {
    [HEADER.messageId]: h.messageId,
    [HEADER.enqueuedAt]: String(h.enqueuedAt),
  };
  if (h.requestId !== undefined) out[HEADER.requestId] = h.requestId;
  if (h.tenantId !== undefined) out[HEADER.tenantId] = h.tenantId;
  if (h.traceparent !== undefined) out[HEADER.traceparent] = h.traceparent;
  if (h.tracestate !== undefined) out[HEADER.tracestate] = h.tracestate;
  return out;
}

/** Raw record headers as UTF-8 strings (the first value of a repeated header). */
export function rawHeadersToStrings(raw: RawHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw ?? {})) {
    const first: Buffer | string | undefined = Array.isArray(v) ? (v as (Buffer | string)[])[0] : (v as Buffer | string | undefined);
    if (first !== undefined) out[k] = typeof first === 'string' ? first : first.toString('utf8');
  }
  return out;
}

/**
 * Reads our headers from a record. A record without message_id or a valid enqueued_at was not produced by
 * Dalston's producer: MessageDecodeError (the consumer dead-letters it).
 */
export function decodeHeaders(raw: RawHeaders | undefined): MessageHeaders {
  const s = rawHeadersToStrings(raw);
  const messageId = s[HEADER.messageId];
  if (messageId === undefined || messageId === '') throw new MessageDecodeError(`missing header ${HEADER.messageId}`);
  const enqueuedRaw = s[HEADER.enqueuedAt];
  const enqueuedAt = enqueuedRaw === undefined ? NaN : Number(enqueuedRaw);
  if (!Number.isSafeInteger(enqueuedAt) || enqueuedAt < 0) {
    throw new MessageDecodeError(`header ${HEADER.enqueuedAt} must be ms since the epoch, got ${JSON.stringify(enqueuedRaw ?? null)}`);
  }
  const requestId = s[HEADER.requestId];
  const tenantId = s[HEADER.tenantId];
  const traceparent = s[HEADER.traceparent];
  const tracestate = s[HEADER.tracestate];
  return {
    messageId,
    enqueuedAt,
    ...(requestId !== undefined && { requestId }),
    ...(tenantId !== undefined && { tenantId }),
    ...(traceparent !== undefined && { traceparent }),
    ...(tracestate !== undefined && { tracestate }),
  };
}

/** Headers of a record from a producer outside Dalston: its own where present, else derived from the record. */
export function externalHeaders(raw: RawHeaders | undefined, recordId: string, timestamp: number): MessageHeaders {
  try {
    return decodeHeaders(raw);
  } catch {
    const s = rawHeadersToStrings(raw);
    const requestId = s[HEADER.requestId];
    return { messageId: recordId, enqueuedAt: Number.isSafeInteger(timestamp) ? timestamp : Date.now(), ...(requestId !== undefined && { requestId }) };
  }
}

/** The producer's trace context as an OTel Context (a child of `base`), for running consumer work under it. */
export function extractTraceContext(h: MessageHeaders, base: Context = otelContext.active()): Context {
  const carrier: Carrier = {};
  if (h.traceparent !== undefined) carrier[HEADER.traceparent] = h.traceparent;
  if (h.tracestate !== undefined) carrier[HEADER.tracestate] = h.tracestate;
  return propagation.extract(base, carrier, getter);
}
