import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { createOtelTracer, noopTracer } from './tracer.js';

// Order matters: the no-SDK case runs before a provider is registered globally.
void test('without an SDK the OTel adapter is a no-op: fn runs, no trace id, errors still propagate', async () => {
  const tracer = createOtelTracer('t');
  const out = await tracer.startSpan('x', { a: 1 }, (span) => {
    assert.equal(span.traceId, undefined);
    assert.equal(tracer.currentTraceId(), undefined);
    return 42;
  });
  assert.equal(out, 42);
  await assert.rejects(tracer.startSpan('x', {}, () => Promise.reject(new Error('nope'))), /nope/);
  assert.deepEqual(tracer.inject({}), {});
  assert.equal(await noopTracer.startSpan('x', {}, async () => 'ok'), 'ok');
});

void test('with an SDK: child spans nest across awaits, errors set ERROR and an exception event, past intervals and remote parents work', async () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  // Registers the AsyncLocalStorage context manager and the W3C propagator, as the NodeSDK does.
  provider.register();
  try {
    const tracer = createOtelTracer('dalston-test');
    let rootTrace: string | undefined;
    let carrier: Record<string, string> = {};
    await tracer.startSpan('handle_job_created', { 'dalston.job_id': 'job_1', skipped: undefined }, async (root) => {
      rootTrace = root.traceId;
      assert.equal(tracer.currentTraceId(), root.traceId);
      await new Promise((r) => setTimeout(r, 5));
      await tracer.startSpan('build_dag', {}, async (s) => {
        s.setAttribute('dalston.stage', 'prepare');
        tracer.setAttributes({ 'dalston.model': 'm1' });
      });
      // One reading of the clock for both ends: the span's length is then exactly the interval given, however loaded the machine.
      const end = Date.now();
      tracer.recordSpan('queue_wait', { 'dalston.stage': 'prepare' }, end - 1500, end);
      await assert.rejects(
        tracer.startSpan('mark_job_failed', {}, () => {
          throw new Error('engine crashed');
        }),
        /engine crashed/,
      );
      carrier = tracer.inject({});
    });
    const spans = exporter.getFinishedSpans();
    const byName = new Map(spans.map((s) => [s.name, s] as const));
    const root = byName.get('handle_job_created');
    assert.ok(root);
    assert.equal(root.spanContext().traceId, rootTrace);
    assert.deepEqual(root.attributes, { 'dalston.job_id': 'job_1' });
    for (const name of ['build_dag', 'queue_wait', 'mark_job_failed']) {
      assert.equal(byName.get(name)?.parentSpanContext?.spanId, root.spanContext().spanId, `${name} is a child of the root`);
    }
    assert.deepEqual(byName.get('build_dag')?.attributes, { 'dalston.stage': 'prepare', 'dalston.model': 'm1' });
    const qw = byName.get('queue_wait');
    assert.ok(qw);
    const qwMs = qw.duration[0] * 1000 + qw.duration[1] / 1e6;
    assert.equal(Math.round(qwMs), 1500, 'queue_wait spans exactly the past interval it was given');
    const failed = byName.get('mark_job_failed');
    assert.equal(failed?.status.code, SpanStatusCode.ERROR);
    assert.equal(failed?.status.message, 'engine crashed');
    assert.equal(failed?.events[0]?.name, 'exception');
    assert.match(carrier['traceparent'] ?? '', new RegExp(`^00-${rootTrace}-${root.spanContext().spanId}-01$`));

    exporter.reset();
    const remote = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await tracer.startSpan('engine.merge.process', {}, (s) => assert.equal(s.traceId, '0af7651916cd43dd8448eb211c80319c'), { parentCarrier: { traceparent: remote } });
    assert.equal(exporter.getFinishedSpans()[0]?.parentSpanContext?.spanId, 'b7ad6b7169203331');
  } finally {
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  }
});
