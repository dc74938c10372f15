import { test } from 'node:test';
import assert from 'node:assert/strict';
import { traceBreakdown, traceGaps, type TraceSpan } from './trace-breakdown.js';

const span = (service: string, name: string, offset_ms: number, duration_ms: number): TraceSpan => ({ service, name, offset_ms, duration_ms });

test('traceGaps: only stretches no span covers count, named by the span that reached furthest before and the next one', () => {
  const spans = [
    span('gateway', 'POST', 0, 10),
    span('gateway', 'publish', 2, 5), // inside POST: no gap
    span('actors', 'dispatch', 14, 3), // 4 ms after POST ended
    span('engine', 'run', 16, 20), // overlaps dispatch: no gap
    span('engine', 'heartbeat', 20, 1), // inside run
    span('actors', 'complete', 40, 2), // 4 ms after run (not heartbeat) ended
  ];
  assert.deepEqual(traceGaps([...spans].reverse()), [
    { from: 'gateway: POST', to: 'actors: dispatch', ms: 4 },
    { from: 'engine: run', to: 'actors: complete', ms: 4 },
  ]);
});

test('traceBreakdown: per-name durations, per-pair gaps and per-job totals over several traces; empty traces are left out', () => {
  const a = [span('g', 'x', 0, 10), span('a', 'y', 15, 5)];
  const b = [span('g', 'x', 100, 20), span('a', 'y', 130, 10)];
  const r = traceBreakdown([a, b, []]);
  assert.equal(r.jobs, 2);
  assert.deepEqual([r.spans['g: x']?.n, r.spans['g: x']?.max, r.spans['a: y']?.p50], [2, 20, 5]);
  assert.deepEqual([r.gaps['g: x → a: y']?.n, r.gaps['g: x → a: y']?.p50, r.gaps['g: x → a: y']?.max], [2, 5, 10]);
  assert.deepEqual([r.uncoveredMs.p50, r.uncoveredMs.max], [5, 10]);
  assert.deepEqual([r.traceMs.p50, r.traceMs.max], [20, 40]);
});
