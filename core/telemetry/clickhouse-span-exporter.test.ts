import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ClickHouseSpanExporter, SPAN_COLUMNS, clickhouseDateTime, type InsertRows } from './clickhouse-span-exporter.js';

interface Call {
  table: string;
  rows: readonly Readonly<Record<string, unknown>>[];
  columns: readonly string[];
}

void test('spans map to `spans` rows: ids, parent, service, kind, times, status, job id and the attribute bag; one insert per batch', async () => {
  const calls: Call[] = [];
  const insert: InsertRows = async (table, rows, columns) => void calls.push({ table, rows, columns });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'dalston-orchestrator' }),
    spanProcessors: [new BatchSpanProcessor(new ClickHouseSpanExporter({ insert }))],
  });
  const tracer = provider.getTracer('t');
  const start = Date.UTC(2026, 10, 28, 9, 30, 15, 250); // 2026-11-28 09:30:15.250 UTC
  const root = tracer.startSpan('handle_job_created', { kind: SpanKind.CONSUMER, startTime: start, attributes: { 'dalston.job_id': 'job_9', 'dalston.retries': 2, flags: [true, false] } });
  const child = tracer.startSpan('schedule_task (transcribe)', { startTime: start + 10, attributes: { 'dalston.stage': 'transcribe' } }, trace.setSpan(context.active(), root));
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'engine down' });
  child.end(start + 1510);
  root.end(start + 2000);
  await provider.forceFlush();
  await provider.shutdown();

  assert.equal(calls.length, 1, 'both spans in one batch insert');
  const call = calls[0];
  assert.ok(call);
  assert.equal(call.table, 'spans');
  assert.deepEqual(call.columns, SPAN_COLUMNS);
  const byName = new Map(call.rows.map((r) => [r['name'], r] as const));
  const r = byName.get('handle_job_created');
  const c = byName.get('schedule_task (transcribe)');
  assert.ok(r && c);
  assert.deepEqual(Object.keys(r).sort(), [...SPAN_COLUMNS].sort());
  assert.deepEqual(r, {
    trace_id: root.spanContext().traceId,
    span_id: root.spanContext().spanId,
    parent_span_id: '',
    name: 'handle_job_created',
    service: 'dalston-orchestrator',
    kind: 'CONSUMER',
    start_time: '2026-11-28 09:30:15',
    start_us: start * 1000,
    duration_us: 2_000_000,
    status_code: 'UNSET',
    status_message: '',
    job_id: 'job_9',
    'attributes.key': ['dalston.job_id', 'dalston.retries', 'flags'],
    'attributes.value': ['job_9', '2', '[true,false]'],
  });
  assert.equal(c['parent_span_id'], root.spanContext().spanId);
  assert.equal(c['trace_id'], root.spanContext().traceId);
  assert.equal(c['kind'], 'INTERNAL');
  assert.equal(c['start_us'], (start + 10) * 1000);
  assert.equal(c['duration_us'], 1_500_000);
  assert.equal(c['status_code'], 'ERROR');
  assert.equal(c['status_message'], 'engine down');
  assert.equal(c['job_id'], '', 'job_id only where the span carries dalston.job_id');
});

void test('a failed insert reports FAILED to the processor; after shutdown exports fail fast', async () => {
  const exporter = new ClickHouseSpanExporter({ insert: () => Promise.reject(new Error('clickhouse down')) });
  const provider = new BasicTracerProvider({ spanProcessors: [] });
  const span = provider.getTracer('t').startSpan('x');
  span.end();
  const readable = span as unknown as Parameters<ClickHouseSpanExporter['export']>[0][number];
  const result = await new Promise<ExportResult>((resolve) => exporter.export([readable], resolve));
  assert.equal(result.code, ExportResultCode.FAILED);
  assert.match(result.error?.message ?? '', /clickhouse down/);
  await exporter.shutdown();
  const after = await new Promise<ExportResult>((resolve) => exporter.export([readable], resolve));
  assert.equal(after.code, ExportResultCode.FAILED);
});

void test('clickhouseDateTime writes UTC in the text form 18.16 parses', () => {
  assert.equal(clickhouseDateTime(0), '1970-01-01 00:00:00');
  assert.equal(clickhouseDateTime(1_764_322_215.9), '2025-11-28 09:30:15');
});
