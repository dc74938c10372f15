/**
 * The gateway's spans with a real OpenTelemetry SDK (in-memory exporter) and no HTTP instrumentation: the gateway
 * opens the HTTP server span itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { SpanKind, context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { eventually, makeWav, startHarness } from './test-harness.js';

const exporter = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());

void test('POST opens `POST /v1/audio/transcriptions` with upload_to_s3, publish_job_created_event, create_job as children; X-Trace-ID and body trace_id match', async () => {
  const h = await startHarness();
  try {
    exporter.reset();
    // The order of the two writes is recorded at the ports: span start times come from Date.now() at millisecond
    // resolution, so comparing them across spans is not reliable (it failed in CI).
    const order: string[] = [];
    const publish = h.publisher.publishJobCreated.bind(h.publisher);
    h.publisher.publishJobCreated = async (msg, headers) => {
      await publish(msg, headers);
      order.push('published job.created');
    };
    const createRecord = h.reader.createJobRecord.bind(h.reader);
    h.reader.createJobRecord = async (record) => {
      order.push('writing jobs row');
      await createRecord(record);
    };
    const wav = await readFile(await makeWav(h.dir, 1));
    const fd = new FormData();
    fd.append('file', new Blob([wav], { type: 'audio/wav' }), 'a.wav');
    const res = await h.request('/v1/audio/transcriptions', { method: 'POST', body: fd, headers: { 'x-request-id': 'trace-req-1' } });
    assert.equal(res.status, 201);
    const body = (await res.json()) as { id: string; trace_id: string };
    const traceId = res.headers.get('x-trace-id');
    assert.match(traceId ?? '', /^[0-9a-f]{32}$/);
    assert.equal(body.trace_id, traceId);
    assert.equal(h.reader.records[0]?.traceId, traceId, 'the jobs row carries the trace id');
    assert.equal(h.publisher.audits[0]?.traceId, traceId);

    const spans = await eventually(() => {
      const finished = exporter.getFinishedSpans();
      assert.ok(finished.some((s) => s.name === 'POST /v1/audio/transcriptions'), `server span among ${finished.map((s) => s.name).join(', ')}`);
      return finished;
    });
    const server = spans.find((s) => s.name === 'POST /v1/audio/transcriptions');
    assert.ok(server);
    assert.equal(server.kind, SpanKind.SERVER);
    assert.equal(server.spanContext().traceId, traceId);
    assert.equal(server.attributes['dalston.request_id'], 'trace-req-1');
    assert.equal(server.attributes['http.route'], '/v1/audio/transcriptions');
    assert.equal(server.attributes['http.response.status_code'], 201);
    assert.equal(server.attributes['dalston.job_id'], body.id);
    assert.equal(server.attributes['dalston.tenant_id'], 'default');

    const children = ['upload_to_s3', 'create_job', 'publish_job_created_event'].map((name) => {
      const span = spans.find((s) => s.name === name);
      assert.ok(span, name);
      assert.equal(span.parentSpanContext?.spanId, server.spanContext().spanId, `${name} is a child of the server span`);
      assert.equal(span.attributes['dalston.job_id'], body.id);
      return span;
    });
    assert.equal(children[0]?.attributes['dalston.storage.backend'], 'fs');
    // job.created is published before the pending row is written, so a row never exists for a job no actor will run.
    assert.deepEqual(order, ['published job.created', 'writing jobs row']);
  } finally {
    await h.close();
  }
});

void test('an incoming traceparent is continued; errors and 404s carry X-Trace-ID; health probes open no span', async () => {
  const h = await startHarness();
  try {
    exporter.reset();
    const parentTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await h.request('/v1/audio/transcriptions/job_missing', { headers: { traceparent: `00-${parentTrace}-00f067aa0ba902b7-01` } });
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('x-trace-id'), parentTrace);
    const span = await eventually(() => {
      const found = exporter.getFinishedSpans().find((s) => s.name === 'GET /v1/audio/transcriptions/:id');
      assert.ok(found);
      return found;
    });
    assert.equal(span.spanContext().traceId, parentTrace);
    assert.equal(span.parentSpanContext?.spanId, '00f067aa0ba902b7');
    assert.equal(span.attributes['http.response.status_code'], 404);

    const unmatched = await h.request('/nope', { method: 'POST' });
    assert.match(unmatched.headers.get('x-trace-id') ?? '', /^[0-9a-f]{32}$/);
    await eventually(() => assert.ok(exporter.getFinishedSpans().some((s) => s.name === 'POST' && s.attributes['http.route'] === undefined), 'unmatched: span named by method only'));

    const unauthorized = await h.request('/v1/audio/transcriptions/job_x', { auth: false });
    assert.equal(unauthorized.status, 401);
    assert.match(unauthorized.headers.get('x-trace-id') ?? '', /^[0-9a-f]{32}$/);

    exporter.reset();
    const health = await h.request('/health');
    assert.equal(health.headers.get('x-trace-id'), null);
    await (await h.request('/metrics')).text();
    assert.deepEqual(exporter.getFinishedSpans().map((s) => s.name), []);
  } finally {
    await h.close();
  }
});
