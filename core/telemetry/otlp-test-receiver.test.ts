import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { buildSpanTree, startOtlpTestReceiver } from './otlp-test-receiver.js';

void test('a real OTLP http/protobuf exporter delivers spans the receiver decodes: names, parents, attributes, status, resource', async () => {
  const receiver = await startOtlpTestReceiver();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'dalston-gateway', 'service.instance.id': 'inst-1' }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: receiver.tracesUrl }))],
  });
  try {
    const tracer = provider.getTracer('receiver-test', '1.2.3');
    const root = tracer.startSpan('POST /v1/audio/transcriptions', { kind: SpanKind.SERVER, attributes: { 'dalston.job_id': 'job_1', 'http.status_code': 201, ratio: 0.25, ok: true, langs: ['en', 'de'] } });
    const ctx = trace.setSpan(context.active(), root);
    const child = tracer.startSpan('create_job', { attributes: { big: -42 } }, ctx);
    child.recordException(new Error('boom'));
    child.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
    child.end();
    tracer.startSpan('upload_to_s3', { attributes: { 'dalston.storage.backend': 'fs' } }, ctx).end();
    root.end();
    await provider.forceFlush();

    const spans = await receiver.waitFor((s) => s.length >= 3, 5000);
    assert.deepEqual(receiver.errors, []);
    assert.equal(spans.length, 3);
    const tree = buildSpanTree(spans);
    assert.equal(tree.roots.length, 1);
    const r = tree.roots[0];
    assert.ok(r);
    assert.equal(r.name, 'POST /v1/audio/transcriptions');
    assert.equal(r.kind, 2);
    assert.equal(r.traceId, root.spanContext().traceId);
    assert.equal(r.spanId, root.spanContext().spanId);
    assert.equal(r.parentSpanId, '');
    assert.deepEqual(r.attributes, { 'dalston.job_id': 'job_1', 'http.status_code': 201, ratio: 0.25, ok: true, langs: ['en', 'de'] });
    assert.equal(r.resource['service.name'], 'dalston-gateway');
    assert.equal(r.resource['service.instance.id'], 'inst-1');
    assert.deepEqual(r.scope, { name: 'receiver-test', version: '1.2.3' });
    assert.ok(r.endTimeUnixNano >= r.startTimeUnixNano && r.startTimeUnixNano > 1_600_000_000_000_000_000n);
    assert.deepEqual(tree.children(r).map((s) => s.name).sort(), ['create_job', 'upload_to_s3']);

    const cj = tree.byName('create_job')[0];
    assert.ok(cj);
    assert.equal(cj.parentSpanId, r.spanId);
    assert.equal(tree.parent(cj), r);
    assert.equal(cj.attributes['big'], -42);
    assert.equal(cj.statusCode, 2);
    assert.equal(cj.statusMessage, 'boom');
    assert.equal(cj.events[0]?.name, 'exception');
    assert.equal(cj.events[0]?.attributes['exception.message'], 'boom');
    assert.equal(tree.byName('upload_to_s3')[0]?.attributes['dalston.storage.backend'], 'fs');
    assert.match(tree.render(), /^POST \/v1\/audio\/transcriptions \[dalston-gateway\]\n {2}/);
  } finally {
    await provider.shutdown();
    await receiver.close();
  }
});

void test('a body that is not protobuf is refused and recorded, not silently dropped', async () => {
  const receiver = await startOtlpTestReceiver();
  try {
    const json = await fetch(receiver.tracesUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(json.status, 415);
    const garbage = await fetch(receiver.tracesUrl, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: new Uint8Array([0x0a, 0x05, 0x01]) });
    assert.equal(garbage.status, 400);
    assert.equal(receiver.errors.length, 1);
    await assert.rejects(receiver.waitFor((s) => s.length > 0, 100), /condition not met/);
  } finally {
    await receiver.close();
  }
});
