/**
 * The operator's view of a real-time session (docs/observability.md), proven on the real running system: gateway,
 * actor host and one streaming engine process, tracing exported to an in-test OTLP receiver and to the ClickHouse span
 * store, Debian's Prometheus scraping every process, and one native session of three espeak-ng sentences streamed
 * at real-time pace. Checks:
 * - one trace per session: the gateway's `realtime.session` span with `dalston.session_id`, and one
 *   `realtime.utterance` span of the engine per final as its direct child, with first-partial and final latency;
 * - `/metrics` of gateway and engine: sessions, latency per kind, the per-hop histogram, the engine's own figures;
 * - Prometheus evaluates the dashboards' real-time panels (with series) and RealtimeLatencyHigh (quiet);
 * - every log line of the session carries `session_id` (and the trace id), none carries transcript text at info;
 * - the `realtime_sessions` row and the history API have the durations, latency percentiles and trace id, and that
 *   trace id finds the session's spans in the span store.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from '../../core/config.js';
import { ATTR, METRIC, REALTIME_ATTR, REALTIME_HOPS, REALTIME_METRIC, SERVICE, SPAN } from '../../core/observability-names.js';
import { listDashboardPromQLTargets } from '../../core/telemetry/dashboard-targets.js';
import { buildSpanTree, startOtlpTestReceiver, type DecodedSpan, type OtlpTestReceiver } from '../../core/telemetry/otlp-test-receiver.js';
import type { ServiceProcess } from '../../infra/service-launcher.js';
import { ESPEAK_SENTENCES, espeakSet } from '../../harness/speech-fixtures.js';
import { scrape, until, type Sample } from '../../harness/metrics-scrape.js';
import { startPrometheus, stopPrometheus, type PrometheusServer } from '../support/prometheus-server.js';
import { ofType, streamNative, toPcm16, type NativeSessionResult } from '../../harness/realtime-client.js';
import { startHarness, type Harness } from '../../harness/pipeline-harness.js';

const RATE = 16000;
const ALERTS = join(REPO_ROOT, 'compose', 'prometheus', 'alerts.yml');

let h: Harness;
let otlp: OtlpTestReceiver;
let prom: PrometheusServer | undefined;
let run: NativeSessionResult;
let sessionId = '';
let audioSeconds = 0;

// ------------------------------------------------------------------------------------------------------ helpers

function serviceOf(s: DecodedSpan): string {
  const v = s.resource['service.name'];
  return typeof v === 'string' ? v : '';
}
function attr(s: DecodedSpan, key: string): unknown {
  const v = s.attributes[key];
  return typeof v === 'bigint' ? Number(v) : v;
}
const finals = () => ofType(run, 'transcript.final');
const text = (v: unknown): string => (typeof v === 'string' ? v : '');

const value = (samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): number | undefined =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

function labelNames(samples: readonly Sample[], family: string): string[] {
  const names = new Set<string>();
  for (const s of samples) {
    if (s.name !== family && !(s.name.startsWith(`${family}_`) && /_(bucket|sum|count|total)$/.test(s.name))) continue;
    for (const k of Object.keys(s.labels)) if (k !== 'le') names.add(k);
  }
  return [...names].sort();
}

interface PromResult { status: string; error?: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } }
async function promQuery(expr: string): Promise<PromResult> {
  const res = await fetch(`${prom?.url ?? ''}/api/v1/query?${new URLSearchParams({ query: expr }).toString()}`);
  return (await res.json()) as PromResult;
}

const serviceOfKind = (kind: string): ServiceProcess => {
  const s = h.services.find((x) => x.spec.kind === kind);
  assert.ok(s, `a ${kind} process`);
  return s;
};

// -------------------------------------------------------------------------------------------------------- setup

before(async () => {
  otlp = await startOtlpTestReceiver();
  h = await startHarness({
    name: 'rtobs', engines: [], realtimeEngines: 1,
    env: { DALSTON_OTEL_ENABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint, DALSTON_OTEL_SPAN_STORE: 'clickhouse', OTEL_BSP_SCHEDULE_DELAY: '200' },
  });
  const ports = (kind: string) => h.services.filter((s) => s.spec.kind === kind).map((s) => s.spec.port);
  prom = await startPrometheus({
    scrapeInterval: '1s', ruleFiles: [ALERTS],
    jobs: { [SERVICE.gateway]: ports('gateway'), [SERVICE.orchestrator]: ports('actors'), [SERVICE.realtime]: ports('realtime') },
  });
  // Scraped before the session: the latency histograms then grow between scrapes, so rate() sees the session.
  await until('Prometheus scrapes every process', async () => {
    const r = await promQuery('up{job=~"dalston-.*"} == 1');
    return (r.data?.result.length ?? 0) === h.services.length ? true : undefined;
  });
  // Three sentences with pauses: three utterances, observed over several scrapes. (Sentences whose longer words are
  // not log vocabulary: the log check looks for them.)
  const pieces = (await espeakSet({}, [0, 1, 4].map((i) => ESPEAK_SENTENCES[i] ?? ''))).map((f) => f.audio);
  const gap = new Float32Array(Math.round(1.2 * RATE));
  const parts = [gap, ...pieces.flatMap((p) => [p, gap])];
  const audio = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    audio.set(p, at);
    at += p.length;
  }
  audioSeconds = audio.length / RATE;
  run = await streamNative(toPcm16(audio), { baseUrl: h.gatewayUrl.replace(/^http/, 'ws'), apiKey: h.apiKey });
  assert.equal(run.refused, false, `upgrade accepted (${run.httpStatus ?? ''} ${run.httpBody ?? ''})`);
  assert.equal(run.closeCode, 1000, `closed ${run.closeCode} "${run.closeReason}" after ${JSON.stringify(run.messages.map((m) => m.message)).slice(0, 500)}`);
  sessionId = text(ofType(run, 'session.begin')[0]?.message['session_id']);
  assert.match(sessionId, /^sess_/);
  assert.ok(finals().length >= 2, `finals: ${finals().length}`);
});

after(async () => {
  if (prom) await stopPrometheus(prom);
  await h?.stop();
  await otlp?.close();
});

// -------------------------------------------------------------------------------------------------------- traces

let traceId = '';

test('one trace per session: realtime.session of the gateway with dalston.session_id; one realtime.utterance of the engine per final as its child, with latencies', async (t) => {
  const n = finals().length;
  const spans = await otlp.waitFor((all) => {
    const session = all.find((s) => s.name === SPAN.realtimeSession && attr(s, ATTR.sessionId) === sessionId);
    return session !== undefined && all.filter((s) => s.name === SPAN.realtimeUtterance && s.traceId === session.traceId).length >= n;
  }, 15_000);
  assert.deepEqual(otlp.errors, []);
  const sessions = spans.filter((s) => s.name === SPAN.realtimeSession && attr(s, ATTR.sessionId) === sessionId);
  assert.equal(sessions.length, 1, 'one realtime.session span');
  const session = sessions[0];
  assert.ok(session);
  traceId = session.traceId;
  assert.equal(serviceOf(session), SERVICE.gateway);
  assert.equal(attr(session, ATTR.tenantId), 'default');
  assert.match(text(attr(session, ATTR.requestId)), /^req_/);
  assert.ok(Math.abs(Number(attr(session, ATTR.audioDurationSeconds)) - audioSeconds) < 0.25, 'the session span has the audio seconds');

  const mine = spans.filter((s) => s.traceId === traceId);
  const tree = buildSpanTree(mine);
  const utterances = tree.byName(SPAN.realtimeUtterance);
  // Nothing of this session lives in another trace.
  const strays = spans.filter((s) => attr(s, ATTR.sessionId) === sessionId && s.traceId !== traceId);
  assert.deepEqual(strays.map((s) => s.name), [], 'every span with the session id is in the session trace');
  assert.equal(utterances.length, n, `one realtime.utterance per final\n${tree.render()}`);
  const sessionMs = Number(session.endTimeUnixNano - session.startTimeUnixNano) / 1e6;
  const byIndex = new Map(utterances.map((u) => [Number(attr(u, REALTIME_ATTR.utterance)), u] as const));
  for (const f of finals()) {
    const index = Number(f.message['utterance']);
    const u = byIndex.get(index);
    assert.ok(u, `a span for utterance ${index}`);
    assert.equal(serviceOf(u), SERVICE.realtime);
    assert.equal(u.parentSpanId, session.spanId, `utterance ${index} is a child of realtime.session`);
    assert.equal(attr(u, ATTR.sessionId), sessionId);
    assert.equal(attr(u, REALTIME_ATTR.restored), false);
    assert.ok(['pause', 'max_length', 'flush', 'end'].includes(text(attr(u, REALTIME_ATTR.reason))), `utterance ${index} end reason ${String(attr(u, REALTIME_ATTR.reason))}`);
    const partials = Number(attr(u, REALTIME_ATTR.partials));
    const firstPartial = attr(u, REALTIME_ATTR.firstPartialLatencyMs);
    const final = attr(u, REALTIME_ATTR.finalLatencyMs);
    // Milliseconds, not another unit: both ends of a latency fall inside the session, so it cannot exceed the session
    // span's length (a bound set by causality, not by the machine's speed).
    assert.ok(typeof final === 'number' && final >= 0 && final <= sessionMs, `utterance ${index} final latency ${String(final)} ms within the ${sessionMs.toFixed(0)} ms session`);
    if (partials > 0) assert.ok(typeof firstPartial === 'number' && firstPartial >= 0 && firstPartial <= sessionMs, `utterance ${index} first-partial latency ${String(firstPartial)} ms within the ${sessionMs.toFixed(0)} ms session`);
    assert.ok(u.startTimeUnixNano >= session.startTimeUnixNano && u.endTimeUnixNano <= session.endTimeUnixNano, `utterance ${index} within the session span`);
  }
  t.diagnostic(`utterance latencies (ms, first partial / final): ${utterances.map((u) => `${String(attr(u, REALTIME_ATTR.firstPartialLatencyMs))}/${String(attr(u, REALTIME_ATTR.finalLatencyMs))}`).join(', ')}`);
  const byName = new Map<string, number>();
  for (const x of mine) byName.set(x.name.replace(h.prefix, ''), (byName.get(x.name.replace(h.prefix, '')) ?? 0) + 1);
  t.diagnostic(`session trace: ${[...byName].map(([k, v]) => `${k} ×${v}`).join(', ')}; realtime spans in other traces: ${spans.filter((x) => x.traceId !== traceId && /realtime|sessions/.test(x.name)).length}`);
  const others = new Map<string, number>();
  for (const x of spans.filter((y) => y.traceId !== traceId)) others.set(`${x.name.replace(h.prefix, '')}${x.parentSpanId === '' ? ' (root)' : ''}`, (others.get(`${x.name.replace(h.prefix, '')}${x.parentSpanId === '' ? ' (root)' : ''}`) ?? 0) + 1);
  t.diagnostic(`other traces: ${[...others].map(([k, v]) => `${k} ×${v}`).join(', ')}`);
  // Audio frames carry no trace context, and the sampler drops the per-frame traces they would start.
  assert.deepEqual(spans.filter((x) => x.traceId !== traceId && /realtime\.input$/.test(x.name)).map((x) => x.name), [], 'no audio-frame traces');
  assert.ok(mine.some((x) => /^send .*realtime\.input$/.test(x.name)), 'the session controls on realtime.input are in the session trace');
  assert.ok(utterances.some((u) => Number(attr(u, REALTIME_ATTR.partials)) > 0 && typeof attr(u, REALTIME_ATTR.firstPartialLatencyMs) === 'number'),
    'some utterance had partials and a first-partial latency');
});

// ------------------------------------------------------------------------------------------------------- metrics

test('/metrics of gateway and engine: sessions, latency per kind and the per-hop histogram with the contract labels; back to no active session', async () => {
  const n = finals().length;
  const g = await until('the gateway counted the session', async () => {
    const s = await scrape(serviceOfKind('gateway'));
    return value(s, METRIC.realtimeSessionsTotal, { status: 'completed' }) === 1 ? s : undefined;
  });
  assert.equal(value(g, METRIC.realtimeSessionsActive), 0, 'no session active after the close');
  for (const status of ['interrupted', 'refused', 'failed']) assert.equal(value(g, METRIC.realtimeSessionsTotal, { status }), 0, `${status} exported at 0`);
  assert.ok((value(g, `${METRIC.realtimeLatency}_count`, { kind: 'first_partial' }) ?? 0) >= 1, 'first-partial latency observed');
  assert.equal(value(g, `${METRIC.realtimeLatency}_count`, { kind: 'final' }), n, 'one final latency per final');
  assert.deepEqual(labelNames(g, METRIC.realtimeSessionsTotal), ['status']);
  assert.deepEqual(labelNames(g, METRIC.realtimeLatency), ['kind']);
  for (const hop of ['engine_to_gateway', 'gateway_to_client'] as const) {
    assert.ok((value(g, `${REALTIME_METRIC.hop}_count`, { hop }) ?? 0) >= n, `gateway hop ${hop} observed`);
  }

  const e = await scrape(serviceOfKind('realtime'));
  for (const hop of ['gateway_to_engine', 'engine'] as const) assert.ok((value(e, `${REALTIME_METRIC.hop}_count`, { hop }) ?? 0) >= n, `engine hop ${hop} observed`);
  // Every hop of REALTIME_HOPS is measured by one of the two processes.
  const measured = new Set([...g, ...e].filter((s) => s.name === `${REALTIME_METRIC.hop}_count` && s.value > 0).map((s) => s.labels['hop']));
  assert.deepEqual([...measured].sort(), [...REALTIME_HOPS].sort());
  assert.deepEqual(labelNames(e, REALTIME_METRIC.hop), ['hop']);
  assert.equal(value(e, REALTIME_METRIC.engineSessions), 0, 'the engine serves no session after the end');
  assert.ok((value(e, `${REALTIME_METRIC.engineDecode}_count`, { kind: 'final' }) ?? 0) >= n, 'final decodes timed');
  assert.ok((value(e, `${REALTIME_METRIC.engineDecode}_count`, { kind: 'partial' }) ?? 0) >= 1, 'partial decodes timed');
  const engineAudio = value(e, REALTIME_METRIC.engineAudioSeconds) ?? 0;
  assert.ok(Math.abs(engineAudio - audioSeconds) < 0.25, `engine audio seconds ${engineAudio} ≈ ${audioSeconds.toFixed(2)}`);
});

test("Prometheus evaluates the dashboards' real-time panels with series and RealtimeLatencyHigh quiet", async (t) => {
  const panels = listDashboardPromQLTargets().filter((p) => /dalston_realtime_/.test(p.expr));
  assert.ok(panels.length >= 3, `${panels.length} real-time panel expressions`);
  for (const p of panels) {
    const where = `${p.dashboard} "${p.panelTitle}" ${p.refId}`;
    await until(`${where} has series`, async () => {
      const r = await promQuery(p.expr);
      assert.equal(r.status, 'success', `${where}: ${r.error ?? ''}`);
      return (r.data?.result.length ?? 0) > 0 ? true : undefined;
    }, 15_000);
  }
  // The alert's quantile, per kind, is a number: the gateway exports both kinds at 0 from start-up, so the session's
  // observations are an increase even when a loaded engine sent one partial only.
  const rule = (parseYaml(readFileSync(ALERTS, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups
    .flatMap((g) => g.rules).find((r) => r.alert === 'RealtimeLatencyHigh');
  assert.ok(rule, 'RealtimeLatencyHigh in alerts.yml');
  const quantile = rule.expr.replace(/\s*>\s*2\s*$/, '').trim();
  assert.notEqual(quantile, rule.expr.trim(), 'the alert compares the p95 with 2 s');
  const p95 = await until('p95 per kind', async () => {
    const r = await promQuery(quantile);
    const byKind = new Map((r.data?.result ?? []).map((x) => [x.metric['kind'], Number(x.value[1])] as const));
    return ['first_partial', 'final'].every((k) => Number.isFinite(byKind.get(k))) ? byKind : undefined;
  });
  t.diagnostic(`p95 over 5m: first_partial ${p95.get('first_partial')?.toFixed(3)} s, final ${p95.get('final')?.toFixed(3)} s`);
  const r = await promQuery(rule.expr);
  assert.equal(r.status, 'success', r.error ?? '');
  const firing = (r.data?.result ?? []).map((x) => x.metric['kind']);
  // Quiet when the stack is healthy; if this shared machine is slow, it fires exactly for the kinds over 2 s.
  assert.deepEqual(firing.sort(), [...p95].filter(([, v]) => v > 2).map(([k]) => k).sort(), 'the expression selects exactly the kinds over 2 s');
  // One session is no sustained latency: the rule (for: 5m) is not firing.
  const alerts = (await (await fetch(`${prom?.url ?? ''}/api/v1/alerts`)).json()) as { data: { alerts: { labels: Record<string, string>; state: string }[] } };
  assert.deepEqual(alerts.data.alerts.filter((a) => a.labels['alertname'] === 'RealtimeLatencyHigh' && a.state === 'firing'), [], 'RealtimeLatencyHigh not firing');
});

// ---------------------------------------------------------------------------------------------------------- logs

test("the session's log lines of gateway, actor host and engine carry session_id, request_id and the session trace id; no transcript text at info", async () => {
  const lines = await until('the engine logged the end of the session', async () => {
    const all = await h.logLines();
    return all.some((l) => l['session_id'] === sessionId && l['service'] === SERVICE.realtime && l['msg'] === 'session ended')
      && all.some((l) => l['session_id'] === sessionId && l['msg'] === 'real-time session closed') ? all : undefined;
  });
  const mine = lines.filter((l) => l['session_id'] === sessionId);
  const services = new Set(mine.map((l) => String(l['service'])));
  assert.deepEqual([...services].sort(), [SERVICE.gateway, SERVICE.orchestrator, SERVICE.realtime].sort(), 'gateway, actor host and engine log the session');
  assert.ok(mine.some((l) => l['service'] === SERVICE.gateway && l['msg'] === 'real-time session opened'));
  if (traceId !== '') for (const l of mine) assert.equal(l['trace_id'], traceId, `trace_id on every session line: ${JSON.stringify(l)}`);
  for (const l of mine) assert.match(text(l['request_id']), /^req_/, `request_id on ${JSON.stringify(l)}`);

  const transcript = finals().map((f) => text(f.message['text'])).join(' ').toLowerCase();
  const words = [...new Set(transcript.split(/[^a-z']+/).filter((w) => w.length >= 6))];
  assert.ok(words.length > 0, `distinctive words in "${transcript}"`);
  const levelOf = (l: Record<string, unknown>) => (typeof l['level'] === 'number' ? l['level'] : ({ trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as Record<string, number>)[String(l['level'])] ?? 0);
  for (const l of lines.filter((x) => levelOf(x) >= 30)) {
    const s = JSON.stringify(l).toLowerCase();
    for (const f of finals()) assert.ok(!s.includes(text(f.message['text']).toLowerCase().trim()), `a final's text in a log line: ${s}`);
    for (const w of words) assert.ok(!new RegExp(`\\b${w}\\b`).test(s), `transcript word "${w}" in a log line: ${s}`);
  }
});

// ---------------------------------------------------------------------------------------------------- ClickHouse

test('the realtime_sessions row and the history API have durations, latency percentiles and the trace id, which finds the spans', async (t) => {
  interface Row {
    status: string; duration_seconds: number; audio_seconds: number; utterances: number; first_partial_p50_ms: number; first_partial_p95_ms: number;
    final_p50_ms: number; final_p95_ms: number; trace_id: string; close_code: number;
  }
  const row = await until('the ended session row', async () => {
    const r = await h.clickhouse.client.query<Row>(
      `SELECT status, duration_seconds, audio_seconds, utterances, first_partial_p50_ms, first_partial_p95_ms, final_p50_ms, final_p95_ms, trace_id, close_code
       FROM ${h.database}.realtime_sessions WHERE session_id = '${sessionId}' ORDER BY version DESC LIMIT 1`);
    const x = r[0];
    return x && x.status === 'completed' && Number(x.final_p50_ms) > 0 ? x : undefined;
  }, 30_000);
  t.diagnostic(`row: duration ${row.duration_seconds} s, first partial p50/p95 ${row.first_partial_p50_ms}/${row.first_partial_p95_ms} ms, final p50/p95 ${row.final_p50_ms}/${row.final_p95_ms} ms`);
  const n = finals().length;
  assert.equal(Number(row.utterances), n);
  assert.equal(Number(row.close_code), 1000);
  assert.ok(Math.abs(Number(row.audio_seconds) - audioSeconds) < 0.25, `audio_seconds ${row.audio_seconds}`);
  assert.ok(Number(row.duration_seconds) >= audioSeconds * 0.9, `duration ${row.duration_seconds} s for ${audioSeconds.toFixed(2)} s streamed at real-time pace`);
  assert.ok(Number(row.first_partial_p50_ms) > 0 && Number(row.first_partial_p95_ms) >= Number(row.first_partial_p50_ms), `first partial p50/p95 ${row.first_partial_p50_ms}/${row.first_partial_p95_ms}`);
  assert.ok(Number(row.final_p95_ms) >= Number(row.final_p50_ms), `final p50/p95 ${row.final_p50_ms}/${row.final_p95_ms}`);
  assert.match(row.trace_id, /^[0-9a-f]{32}$/);
  if (traceId !== '') assert.equal(row.trace_id, traceId, 'the row names the session trace');

  const res = await h.api(`/v1/realtime/sessions/${sessionId}`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { trace_id: string | null; latency: Record<string, number> | null };
  assert.equal(body.trace_id, row.trace_id);
  assert.deepEqual(body.latency, {
    first_partial_p50_ms: Number(row.first_partial_p50_ms), first_partial_p95_ms: Number(row.first_partial_p95_ms),
    final_p50_ms: Number(row.final_p50_ms), final_p95_ms: Number(row.final_p95_ms),
  });

  // The operator's step: session id → trace id → the session's spans in the span store.
  const spans = await until('the session spans in the span store', async () => {
    const r = await h.clickhouse.client.query<{ name: string; service: string }>(
      `SELECT name, service FROM ${h.database}.spans WHERE trace_id = '${row.trace_id}'`);
    return r.filter((s) => s.name === SPAN.realtimeUtterance).length >= n && r.some((s) => s.name === SPAN.realtimeSession) ? r : undefined;
  });
  // Gateway, engine and the actor host (its handling of the session's events) all in the one trace.
  assert.deepEqual([...new Set(spans.map((s) => s.service))].sort(), [SERVICE.gateway, SERVICE.orchestrator, SERVICE.realtime].sort());
});
