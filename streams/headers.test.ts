import assert from 'node:assert/strict';
import { test } from 'node:test';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { ROOT_CONTEXT, propagation, trace, TraceFlags } from '@opentelemetry/api';
import { ManualClock } from '../core/clock.js';
import { decodeHeaders, encodeHeaders, extractTraceContext, newMessageHeaders } from './headers.js';
import { MessageDecodeError } from './validate.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

void test('without a registered propagator no trace headers are written, and encode/decode round-trips', () => {
  const h = newMessageHeaders({ requestId: 'req-1', tenantId: 't-1', clock: new ManualClock(1_700_000_000_123) });
  assert.equal(h.traceparent, undefined);
  assert.equal(h.enqueuedAt, 1_700_000_000_123);
  const wire = encodeHeaders(h);
  assert.deepEqual(Object.keys(wire).sort(), ['enqueued_at', 'message_id', 'request_id', 'tenant_id']);
  assert.deepEqual(decodeHeaders(wire), h);
  // kafkajs hands consumers Buffers.
  assert.deepEqual(decodeHeaders(Object.fromEntries(Object.entries(wire).map(([k, v]) => [k, Buffer.from(v)]))), h);
  assert.notEqual(newMessageHeaders().messageId, h.messageId);
});

void test('decodeHeaders rejects records that lack our headers', () => {
  assert.throws(() => decodeHeaders(undefined), MessageDecodeError);
  assert.throws(() => decodeHeaders({ message_id: 'm' }), MessageDecodeError);
  assert.throws(() => decodeHeaders({ message_id: 'm', enqueued_at: 'yesterday' }), MessageDecodeError);
  assert.throws(() => decodeHeaders({ message_id: '', enqueued_at: '1' }), MessageDecodeError);
});

void test('with the W3C propagator registered, the active span travels as traceparent and comes back out', () => {
  assert.equal(propagation.setGlobalPropagator(new W3CTraceContextPropagator()), true);
  try {
    const parent = trace.setSpanContext(ROOT_CONTEXT, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED });
    const h = newMessageHeaders({ context: parent });
    assert.equal(h.traceparent, `00-${TRACE_ID}-${SPAN_ID}-01`);
    const decoded = decodeHeaders(encodeHeaders(h));
    const ctx = trace.getSpanContext(extractTraceContext(decoded, ROOT_CONTEXT));
    assert.equal(ctx?.traceId, TRACE_ID);
    assert.equal(ctx?.spanId, SPAN_ID);
    assert.equal(ctx?.isRemote, true);
  } finally {
    propagation.disable();
  }
});
