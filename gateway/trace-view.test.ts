/** traceWaterfall: depth-first order with children by start, depths, offsets from the trace start, orphans as roots. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StoredSpan } from './ports.js';
import { traceWaterfall } from './trace-view.js';

function span(spanId: string, parentSpanId: string, name: string, startUs: number, durationUs: number): StoredSpan {
  return {
    traceId: 't'.repeat(32), spanId, parentSpanId, name, service: name.startsWith('engine') ? 'dalston-engine' : 'dalston-gateway', kind: 'INTERNAL',
    startUs, durationUs, statusCode: 'UNSET', statusMessage: '', attributes: { 'dalston.job_id': 'job_1' },
  };
}

test('spans come depth-first, children in start order, with depth and offsets; a span whose parent is missing is a root', () => {
  const t0 = 1_700_000_000_000_000;
  const w = traceWaterfall('job_1', 't'.repeat(32), [
    span('c', 'a', 'engine.process', t0 + 3000, 1000),
    span('a', '', 'POST /v1/audio/transcriptions', t0, 10_000),
    span('b', 'a', 'upload_to_s3', t0 + 1000, 500),
    span('d', 'c', 'engine.child', t0 + 3100, 200),
    span('o', 'gone', 'engine.orphan', t0 + 12_000, 1500),
  ], 5000);
  assert.deepEqual(w.spans.map((s) => [s.name, s.depth]), [
    ['POST /v1/audio/transcriptions', 0], ['upload_to_s3', 1], ['engine.process', 1], ['engine.child', 2], ['engine.orphan', 0],
  ]);
  assert.deepEqual(w.spans.map((s) => s.offset_ms), [0, 1, 3, 3.1, 12]);
  assert.equal(w.duration_ms, 13.5);
  assert.equal(w.span_count, 5);
  assert.equal(w.truncated, false);
  assert.deepEqual(w.services, ['dalston-engine', 'dalston-gateway']);
  assert.equal(w.spans[0]?.parent_span_id, null);
  assert.equal(w.spans[0]?.started_at, new Date(t0 / 1000).toISOString());
  assert.equal(traceWaterfall('job_1', 'x', [span('a', '', 'root', t0, 1)], 1).truncated, true, 'as many spans as the limit: maybe more exist');
});
