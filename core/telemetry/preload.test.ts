/**
 * The launch order of every Dalston process, run for real: `node --import register-hooks.js --import
 * start-telemetry.js app.js` exporting to a loopback OTLP receiver. Pins the platform-notes trap: under ES
 * modules, without the loader hook, kafkajs is silently not instrumented and produced messages lack `traceparent`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { REPO_ROOT } from '../config.js';
import { buildSpanTree, startOtlpTestReceiver } from './otlp-test-receiver.js';

const DIST = join(REPO_ROOT, 'dist', 'core', 'telemetry');
const HOOKS = join(DIST, 'register-hooks.js');
const START = join(DIST, 'start-telemetry.js');
const APP = join(DIST, 'fixtures', 'instrumented-app.js');

interface AppResult {
  readonly traceId: string | undefined;
  readonly traceparent: string | undefined;
  readonly logLine: string;
}

interface RunResult {
  readonly result: AppResult;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

function runApp(preloads: readonly string[], env: Readonly<Record<string, string>>): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const args = [...preloads.flatMap((p) => ['--import', p]), APP];
    const child = spawn(process.execPath, args, { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) {
        reject(new Error(`fixture printed no result (code ${code}, signal ${signal}): ${out}\n${err}`));
        return;
      }
      resolve({ result: JSON.parse(line) as AppResult, code, signal, stderr: err });
    });
  });
}

async function fakeImds(instanceId: string): Promise<{ endpoint: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method === 'PUT' && req.url === '/latest/api/token') res.end('tok');
    else if (req.method === 'GET' && req.url === '/latest/meta-data/instance-id' && req.headers['x-aws-ec2-metadata-token'] === 'tok') res.end(instanceId);
    else res.writeHead(401).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { endpoint: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

void test('with both preloads: kafkajs, http and pino are instrumented, resource attributes set, spans flushed on SIGTERM', async () => {
  const receiver = await startOtlpTestReceiver();
  const imds = await fakeImds('i-0fixture1234567890');
  try {
    const run = await runApp([HOOKS, START], {
      DALSTON_OTEL_ENABLED: 'true',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      DALSTON_SERVICE_NAME: 'dalston-engine',
      DALSTON_ENGINE_ID: 'fixture-engine',
      DALSTON_CLOUD_METADATA: 'aws',
      DALSTON_IMDS_ENDPOINT: imds.endpoint,
    });
    // The preload re-raised SIGTERM after flushing: the process died of the signal, not of a crash.
    assert.equal(run.signal, 'SIGTERM', run.stderr);
    const { result } = run;
    assert.match(result.traceId ?? '', /^[0-9a-f]{32}$/);
    assert.ok(result.traceparent, 'the produced Kafka message carries a traceparent header');
    assert.equal(result.traceparent.split('-')[1], result.traceId, 'traceparent continues the active trace');
    const logLine = JSON.parse(result.logLine) as Record<string, unknown>;
    assert.equal(logLine['trace_id'], result.traceId);
    assert.equal(logLine['trace_flags'], '01', 'pino instrumentation added its correlation fields');

    // BatchSpanProcessor would wait 5 s; the spans are already here because SIGTERM flushed them.
    const spans = receiver.spans();
    assert.deepEqual(receiver.errors, []);
    const tree = buildSpanTree(spans.filter((s) => s.traceId === result.traceId));
    const root = tree.byName('fixture.root')[0];
    assert.ok(root, tree.render());
    assert.equal(root.attributes['dalston.job_id'], 'job_fixture');
    const childNames = tree.children(root).map((s) => s.name);
    const send = tree.children(root).find((s) => s.kind === 4);
    assert.ok(send, `a PRODUCER span under the root: ${childNames.join(', ')}`);
    assert.match(send.name, /fixture-topic/);
    assert.equal(result.traceparent.split('-')[2], send.spanId, 'the message header names the send span as parent');
    const client = tree.children(root).find((s) => s.kind === 3);
    assert.ok(client, `an HTTP CLIENT span under the root: ${childNames.join(', ')}`);
    const server = tree.children(client).find((s) => s.kind === 2);
    assert.ok(server, `an HTTP SERVER span under the client span:\n${tree.render()}`);

    assert.equal(root.resource['service.name'], 'dalston-engine');
    assert.equal(root.resource['service.version'], '0.1.0');
    assert.match(root.resource['service.instance.id'] as string, /^[0-9a-f-]{36}$/);
    assert.equal(root.resource['dalston.engine_id'], 'fixture-engine');
    assert.equal(root.resource['cloud.instance.id'], 'i-0fixture1234567890');
    assert.equal(root.resource['host.id'], 'i-0fixture1234567890', 'the host detector did not overwrite host.id');
  } finally {
    await imds.close();
    await receiver.close();
  }
});

void test('without the loader hook kafkajs is silently not instrumented (why register-hooks.js comes first)', async () => {
  const receiver = await startOtlpTestReceiver();
  try {
    const { result } = await runApp([START], { DALSTON_OTEL_ENABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, DALSTON_SERVICE_NAME: 'dalston-engine' });
    assert.match(result.traceId ?? '', /^[0-9a-f]{32}$/, 'the SDK itself runs');
    assert.equal(result.traceparent, undefined);
    assert.equal((JSON.parse(result.logLine) as Record<string, unknown>)['trace_flags'], undefined);
  } finally {
    await receiver.close();
  }
});

void test('DALSTON_OTEL_ENABLED=false: no SDK, no trace ids, nothing exported', async () => {
  const receiver = await startOtlpTestReceiver();
  try {
    const run = await runApp([HOOKS, START], { DALSTON_OTEL_ENABLED: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, DALSTON_SERVICE_NAME: 'dalston-engine' });
    assert.equal(run.result.traceId, undefined);
    assert.equal(run.result.traceparent, undefined);
    assert.equal((JSON.parse(run.result.logLine) as Record<string, unknown>)['trace_id'], undefined);
    assert.equal(receiver.requestCount, 0);
    assert.equal(run.signal, 'SIGTERM', 'no handler installed: the default SIGTERM action ends the process');
  } finally {
    await receiver.close();
  }
});

void test('an app with its own SIGTERM drain (core/service.ts) still exports the spans it ends while draining', async () => {
  const receiver = await startOtlpTestReceiver();
  try {
    const run = await runApp([HOOKS, START], {
      DALSTON_OTEL_ENABLED: 'true',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      DALSTON_SERVICE_NAME: 'dalston-gateway',
      FIXTURE_OWN_HANDLER: '1',
    });
    assert.equal(run.code, 0, run.stderr);
    const names = receiver.spans().map((s) => s.name);
    assert.ok(names.includes('fixture.root'), names.join(', '));
    assert.ok(names.includes('fixture.drain'), `the span ended during the drain was exported: ${names.join(', ')}`);
  } finally {
    await receiver.close();
  }
});
