/**
 * With @opentelemetry/instrumentation-http active (as under the telemetry preload) there is still exactly one
 * server span per request: the gateway serves on uWebSockets.js, which the instrumentation does not see, so the
 * span is the gateway's own, named `<METHOD> <route template>`, with http.route and dalston.request_id.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { SpanKind, context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { eventually, startHarness } from './test-harness.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
trace.setGlobalTracerProvider(provider);
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
registerInstrumentations({ instrumentations: [new HttpInstrumentation()], tracerProvider: provider });
// The instrumentation patches http.Server.prototype when the CommonJS module is first required.
createRequire(import.meta.url)('node:http');

void test('under instrumentation-http there is exactly one server span per request, named by the route template', async () => {
  const h = await startHarness();
  try {
    exporter.reset();
    const res = await h.request('/v1/audio/transcriptions/job_abc', { headers: { 'x-request-id': 'inst-1' } });
    assert.equal(res.status, 404);
    const traceId = res.headers.get('x-trace-id');
    assert.match(traceId ?? '', /^[0-9a-f]{32}$/);
    const servers = await eventually(() => {
      const found = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER && s.spanContext().traceId === traceId);
      assert.equal(found.length, 1, `server spans: ${found.map((s) => s.name).join(', ')}`);
      return found;
    });
    const server = servers[0];
    assert.equal(server?.name, 'GET /v1/audio/transcriptions/:id');
    assert.equal(server?.attributes['http.route'], '/v1/audio/transcriptions/:id');
    assert.equal(server?.attributes['dalston.request_id'], 'inst-1');
    assert.equal(server?.instrumentationScope.name, 'dalston-gateway', 'the server span is the gateway\'s own');
  } finally {
    await h.close();
  }
});
