/**
 * Reads a process's /metrics as the e2e observability tests need it: every sample with its labels.
 */
import assert from 'node:assert/strict';
import { REALTIME_METRIC } from '../core/observability-names.js';
import type { ServiceProcess } from '../infra/service-launcher.js';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Prometheus text format → samples (prom-client's output: no timestamps, escaped label values). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = (l[2] ?? '').replace(/\\(.)/g, '$1');
    out.push({ name: m[1] ?? '', labels, value: Number(m[3]) });
  }
  return out;
}

export async function scrape(svc: ServiceProcess): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${svc.spec.port}/metrics`);
  assert.equal(res.status, 200, `${svc.spec.name} /metrics`);
  return parseMetrics(await res.text());
}

/** The sum of one metric's samples over several processes (every label set). */
async function total(processes: readonly ServiceProcess[], name: string): Promise<number> {
  let sum = 0;
  for (const p of processes) for (const s of await scrape(p)) if (s.name === name) sum += s.value;
  return sum;
}

/**
 * Partials the streaming engines skipped so far: a loaded engine sheds partials (never finals) and counts each. A test
 * of what partials look like owes them only while none was shed; whether an engine keeps up is the benchmarks' job.
 */
export function partialsShed(engines: readonly ServiceProcess[]): Promise<number> {
  return total(engines, REALTIME_METRIC.enginePartialsSkipped);
}

/** Audio seconds the streaming engines processed so far (dalston_realtime_engine_audio_seconds_total). */
export function engineAudioSeconds(engines: readonly ServiceProcess[]): Promise<number> {
  return total(engines, REALTIME_METRIC.engineAudioSeconds);
}

/** Polls `fn` every 250 ms until it returns a value (errors count as "not yet"); fails naming `what` and the last error. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${lastErr instanceof Error ? ` (${lastErr.message})` : ''}`);
}
