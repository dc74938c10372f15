import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { loadConfig } from '../config.js';
import { activeTelemetry, packageVersion, shutdownTelemetry, startTelemetry, telemetryOptionsFromConfig } from './telemetry-sdk.js';
import { createOtelTracer } from './tracer.js';

void test('options from configuration: nothing when DALSTON_OTEL_ENABLED is off; the contract resource when on', () => {
  assert.equal(telemetryOptionsFromConfig(loadConfig({})), undefined);
  assert.equal(telemetryOptionsFromConfig(loadConfig({ DALSTON_OTEL_ENABLED: 'false', DALSTON_SERVICE_NAME: 'dalston-gateway' })), undefined);
  const on = telemetryOptionsFromConfig(
    loadConfig({ DALSTON_OTEL_ENABLED: 'true', DALSTON_SERVICE_NAME: 'dalston-engine', DALSTON_ENGINE_ID: 'merge', DALSTON_CLOUD_METADATA: 'aws', DALSTON_IMDS_ENDPOINT: 'http://127.0.0.1:9' }),
  );
  assert.ok(on);
  assert.equal(on.serviceName, 'dalston-engine');
  assert.equal(on.engineId, 'merge');
  assert.equal(on.cloudMetadata, 'aws');
  assert.equal(on.imdsEndpoint, 'http://127.0.0.1:9');
  assert.equal(on.serviceVersion, packageVersion(loadConfig({}).repoRoot));
  assert.equal(on.spanStoreInsert, undefined, 'no ClickHouse span store unless asked');
  assert.throws(() => loadConfig({ DALSTON_SERVICE_NAME: 'gateway' }), /DALSTON_SERVICE_NAME must be one of/);
});

void test('in-process SDK with an InMemorySpanExporter: spans carry the resource; shutdown is idempotent and unregisters', async () => {
  const exporter = new InMemorySpanExporter();
  const handle = startTelemetry({ serviceName: 'dalston-orchestrator', serviceVersion: '9.9.9', otlp: false, extraExporters: [exporter], instrumentations: [] });
  try {
    assert.equal(activeTelemetry(), handle);
    assert.equal(startTelemetry({ serviceName: 'other', otlp: false }), handle, 'a second start returns the running SDK');
    assert.equal(await handle.cloudInstanceId, undefined, 'no IMDS lookup unless DALSTON_CLOUD_METADATA=aws');
    const tracer = createOtelTracer('t');
    await tracer.startSpan('build_dag', { 'dalston.job_id': 'job_1' }, async () => undefined);
    // The detectors' attributes (host.id from the machine id) resolve asynchronously; export waits for them.
    await handle.forceFlush();
    const [span] = exporter.getFinishedSpans();
    assert.ok(span);
    assert.equal(span.name, 'build_dag');
    assert.equal(span.resource.attributes['service.name'], 'dalston-orchestrator');
    assert.equal(span.resource.attributes['service.version'], '9.9.9');
    assert.equal(span.resource.attributes['service.instance.id'], handle.serviceInstanceId);
    assert.equal(span.resource.attributes['cloud.instance.id'], undefined);
  } finally {
    await shutdownTelemetry();
    await handle.shutdown();
  }
  assert.equal(activeTelemetry(), undefined);
});
