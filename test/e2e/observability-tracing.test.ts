/**
 * The operator's workflow of docs/observability.md, proven on the real running system with one harness and one
 * batch job (espeak-ng speech, prepare → pocketsphinx → merge) and tracing exported to an in-test OTLP receiver
 * and to the ClickHouse span store:
 * - the contract's span tree, parent links included, in one trace from the gateway's HTTP span through Kafka to
 *   every engine and back to mark_job_completed; the same spans in `spans` and as `GET …/{id}/trace`;
 * - the job's log lines of gateway, actor host and engines share `request_id` and `trace_id` (= `X-Trace-ID`);
 * - `/metrics` of every process has every contract metric of its role with the contract's labels, and a dead
 *   letter counts in `dalston_stream_dead_letters_total{topic}`;
 * - Debian's Prometheus scraping the processes evaluates every PromQL expression of dashboards and alerts, with
 *   series for those a finished job feeds and quiet alerts;
 * - every SQL panel runs on the stack's ClickHouse and answers for this job; the audit trail has its events.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from '../../core/config.js';
import { METRIC, SERVICE, SPAN, STREAM_METRIC } from '../../core/observability-names.js';
import { expandGrafanaSqlMacros, listDashboardPromQLTargets, listDashboardSqlTargets } from '../../core/telemetry/dashboard-targets.js';
import { buildSpanTree, startOtlpTestReceiver, type DecodedSpan, type OtlpTestReceiver, type SpanTree } from '../../core/telemetry/otlp-test-receiver.js';
import { keyIdOf } from '../../gateway/index.js';
import { scrape, until, type Sample } from '../../harness/metrics-scrape.js';
import { startPrometheus, stopPrometheus, type PrometheusServer } from '../support/prometheus-server.js';
import type { ServiceProcess } from '../../infra/service-launcher.js';
import { taskTopicFor } from '../../streams/index.js';
import { ESPEAK_SENTENCES, synthesizeFile } from '../../harness/speech-fixtures.js';
import { POCKETSPHINX_ENGINE, TERMINAL, startHarness, type Harness, type JobBody } from '../../harness/pipeline-harness.js';

const STAGES = ['prepare', 'transcribe', 'merge'] as const;
const ALERTS = join(REPO_ROOT, 'compose', 'prometheus', 'alerts.yml');

let h: Harness;
let otlp: OtlpTestReceiver;
let prom: PrometheusServer | undefined;
let job: JobBody;
let submitted: { headers: Headers; requestId: string };

// ------------------------------------------------------------------------------------------------------ helpers

function serviceOf(s: DecodedSpan): string {
  const v = s.resource['service.name'];
  return typeof v === 'string' ? v : '';
}

function attr(s: DecodedSpan, key: string): unknown {
  const v = s.attributes[key];
  return typeof v === 'bigint' ? Number(v) : v;
}

const durationMs = (s: DecodedSpan): number => Number(s.endTimeUnixNano - s.startTimeUnixNano) / 1e6;
const startMs = (s: DecodedSpan): number => Number(s.startTimeUnixNano / 1000n) / 1000;

/** Asserts `span` hangs under `ancestor` with nothing but Kafka instrumentation spans (`send <topic>`, `process <topic>`) between. */
function assertUnderViaKafka(tree: SpanTree, span: DecodedSpan, ancestor: DecodedSpan, what: string): void {
  const path: string[] = [];
  for (let p = tree.parent(span); p; p = tree.parent(p)) {
    if (p.spanId === ancestor.spanId) {
      assert.ok(path.every((n) => /^(send|process) /.test(n)), `${what}: only Kafka spans between, got ${path.join(' < ')}`);
      return;
    }
    path.push(p.name);
  }
  assert.fail(`${what}: ${span.name} is not under ${ancestor.name}\n${tree.render()}`);
}

function one(tree: SpanTree, name: string, pred: (s: DecodedSpan) => boolean = () => true): DecodedSpan {
  const found = tree.byName(name).filter(pred);
  assert.equal(found.length, 1, `exactly one ${name} span, got ${found.length}\n${tree.render()}`);
  const s = found[0];
  assert.ok(s);
  return s;
}

function stageOf(stage: string): JobBody['stages'][number] {
  const s = job.stages.find((x) => x.stage === stage);
  assert.ok(s, `stage ${stage} in ${JSON.stringify(job.stages)}`);
  return s;
}

function find(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The label names of every sample of a metric family, histogram suffixes and `le` folded away. */
function labelNames(samples: readonly Sample[], family: string): string[] {
  const names = new Set<string>();
  for (const s of samples) {
    if (s.name !== family && !(s.name.startsWith(`${family}_`) && /_(bucket|sum|count)$/.test(s.name))) continue;
    for (const k of Object.keys(s.labels)) if (k !== 'le') names.add(k);
  }
  return [...names].sort();
}

async function promQuery(expr: string): Promise<{ status: string; error?: string; data?: { result: { metric: Record<string, string> }[] } }> {
  const res = await fetch(`${prom?.url ?? ''}/api/v1/query?${new URLSearchParams({ query: expr }).toString()}`);
  return (await res.json()) as { status: string; error?: string; data?: { result: { metric: Record<string, string> }[] } };
}

const services = (kind: string): ServiceProcess[] => h.services.filter((s) => s.spec.kind === kind);
const engineService = (engineId: string): ServiceProcess => {
  const s = h.services.find((x) => x.spec.kind === 'engine' && x.spec.engineId === engineId);
  assert.ok(s, `engine ${engineId} running`);
  return s;
};

// -------------------------------------------------------------------------------------------------------- setup

before(async () => {
  otlp = await startOtlpTestReceiver();
  h = await startHarness({
    name: 'obs',
    env: {
      DALSTON_OTEL_ENABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint, DALSTON_OTEL_SPAN_STORE: 'clickhouse',
      // Export within 200 ms of a span's end instead of 5 s.
      OTEL_BSP_SCHEDULE_DELAY: '200',
    },
  });
  const port = (s: ServiceProcess) => s.spec.port;
  prom = await startPrometheus({
    scrapeInterval: '1s', ruleFiles: [ALERTS],
    jobs: { [SERVICE.gateway]: services('gateway').map(port), [SERVICE.orchestrator]: services('actors').map(port), [SERVICE.engine]: services('engine').map(port) },
  });
  // A running stack is scraped before the job: Prometheus must see the counters at 0 to see the job as an increase
  // (its target discovery takes up to 5 s to hand the targets to the scrapers).
  await until('Prometheus scrapes every process', async () => {
    const r = await promQuery('up{job=~"dalston-.*"} == 1');
    return (r.data?.result.length ?? 0) === h.services.length ? true : undefined;
  });
  const wav = await synthesizeFile(ESPEAK_SENTENCES[0] ?? '', { voice: 'en-us+klatt', padBefore: 0.3, padAfter: 0.3 });
  const requestId = `req_obs${randomBytes(6).toString('hex')}`;
  const res = await h.submit(wav, { language: 'en' }, { 'x-request-id': requestId });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  submitted = { headers: res.headers, requestId };
  job = await h.waitFor(res.body.id, (j) => TERMINAL.has(j.status), 60_000);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
});

after(async () => {
  if (prom) await stopPrometheus(prom);
  await h?.stop();
  await otlp?.close();
});

// -------------------------------------------------------------------------------------------------------- traces

test('one trace from the gateway through Kafka to every engine and back: the contract span tree with parent links', async () => {
  assert.match(job.trace_id ?? '', /^[0-9a-f]{32}$/);
  const traceId = job.trace_id ?? '';
  // Complete: the job finished, every engine uploaded, and every span's parent has arrived (batches come in any order).
  const spans = await otlp.waitFor((all) => {
    const mine = all.filter((s) => s.traceId === traceId);
    const ids = new Set(mine.map((s) => s.spanId));
    return mine.some((s) => s.name === SPAN.markJobCompleted) && mine.filter((s) => s.name === SPAN.engineUploadOutput).length === STAGES.length
      && mine.every((s) => s.parentSpanId === '' || ids.has(s.parentSpanId));
  }, 15_000);
  assert.deepEqual(otlp.errors, []);
  // No span about this job lives in another trace (status polls are requests of their own, with their own traces).
  const strays = spans.filter((s) => attr(s, 'dalston.job_id') === job.id && s.traceId !== traceId && !s.name.startsWith('GET '));
  assert.deepEqual(strays.map((s) => s.name), [], 'every span carrying the job id is in the job trace');
  const mine = spans.filter((s) => s.traceId === traceId);
  const tree = buildSpanTree(mine);

  assert.equal(tree.roots.length, 1, `one root\n${tree.render()}`);
  const root = tree.roots[0];
  assert.ok(root);
  assert.equal(root.name, 'POST /v1/audio/transcriptions');
  assert.equal(root.kind, 2, 'HTTP server span');
  assert.equal(serviceOf(root), SERVICE.gateway);

  const gatewayChildren = tree.children(root).map((s) => s.name);
  for (const name of [SPAN.uploadToS3, SPAN.createJob, SPAN.publishJobCreated]) assert.ok(gatewayChildren.includes(name), `${name} under the HTTP span`);
  const upload = one(tree, SPAN.uploadToS3);
  assert.equal(attr(upload, 'dalston.storage.backend'), 'fs');
  assert.equal(attr(upload, 'dalston.job_id'), job.id);
  const publish = one(tree, SPAN.publishJobCreated);

  const handle = one(tree, SPAN.handleJobCreated);
  assert.equal(serviceOf(handle), SERVICE.orchestrator);
  assertUnderViaKafka(tree, handle, publish, 'handle_job_created continues the gateway trace');
  assert.equal(tree.parent(one(tree, SPAN.buildDag))?.spanId, handle.spanId, 'build_dag under handle_job_created');
  const done = one(tree, SPAN.markJobCompleted);
  assert.equal(tree.parent(done)?.spanId, handle.spanId, 'mark_job_completed under handle_job_created');
  assert.equal(tree.byName(SPAN.markJobFailed).length + tree.byName(SPAN.markJobCancelled).length, 0);

  for (const stage of STAGES) {
    const st = stageOf(stage);
    const schedule = one(tree, SPAN.scheduleTask(stage));
    assert.equal(tree.parent(schedule)?.spanId, handle.spanId, `schedule_task (${stage}) under handle_job_created`);
    assert.equal(serviceOf(schedule), SERVICE.orchestrator);
    assert.equal(attr(schedule, 'dalston.task_id'), st.task_id);

    const wait = one(tree, SPAN.queueWait, (s) => attr(s, 'dalston.task_id') === st.task_id);
    assertUnderViaKafka(tree, wait, schedule, `queue_wait of ${stage}`);
    assert.equal(serviceOf(wait), SERVICE.engine);
    assert.ok(Math.abs(durationMs(wait) - (st.queue_wait_ms ?? -100)) <= 2, `queue_wait spans enqueue → pick-up (${durationMs(wait)} ms vs ${st.queue_wait_ms} ms)`);
    // It starts at the enqueue timestamp (set when the actor decided to dispatch, just before schedule_task sends).
    assert.ok(startMs(wait) <= startMs(schedule) + durationMs(schedule), 'queue_wait starts by the time the dispatch was sent');

    const task = one(tree, SPAN.engineProcessRoot(st.engine_id));
    assertUnderViaKafka(tree, task, schedule, `engine.${st.engine_id}.process`);
    assert.equal(serviceOf(task), SERVICE.engine);
    assert.equal(task.resource['dalston.engine_id'], st.engine_id, 'engine id as a resource attribute');
    assert.ok(startMs(task) >= startMs(wait) + durationMs(wait) - 1, 'the task starts after queue_wait ends (pick-up)');
    assert.equal(attr(task, 'dalston.job_id'), job.id);
    assert.equal(attr(task, 'dalston.task_id'), st.task_id);
    assert.equal(attr(task, 'dalston.stage'), stage);
    assert.equal(attr(task, 'dalston.language'), 'en');
    assert.equal(attr(task, 'dalston.request_id'), submitted.requestId);
    const audio = attr(task, 'dalston.audio_duration_seconds');
    assert.ok(typeof audio === 'number' && Math.abs(audio - (job.audio_duration_seconds ?? 0)) < 0.01, `audio duration on ${task.name}: ${String(audio)}`);

    const kids = tree.children(task).map((s) => s.name).filter((n) => n.startsWith('engine.'));
    const expected = stage === 'transcribe'
      ? [SPAN.engineDownloadInput, SPAN.engineModelLoad, SPAN.engineProcess, SPAN.engineUploadOutput]
      : [SPAN.engineDownloadInput, SPAN.engineProcess, SPAN.engineUploadOutput];
    assert.deepEqual([...kids].sort(), [...expected].sort(), `children of ${task.name}\n${tree.render()}`);
    const ordered = tree.children(task).filter((s) => [SPAN.engineDownloadInput, SPAN.engineProcess, SPAN.engineUploadOutput].includes(s.name as never));
    assert.deepEqual(ordered.map((s) => s.name), [SPAN.engineDownloadInput, SPAN.engineProcess, SPAN.engineUploadOutput], 'download, process, upload in order');
  }
  // pocketsphinx loads its model lazily inside its first task: one engine.model_load, in that task only.
  const load = one(tree, SPAN.engineModelLoad);
  assert.equal(tree.parent(load)?.name, SPAN.engineProcessRoot(POCKETSPHINX_ENGINE));
  assert.equal(attr(load, 'dalston.model'), 'pocketsphinx-en-us');

  // Service names per process; one service.instance.id per process (gateway, actor host, three engines).
  const contractNames = new Set<string>([SPAN.uploadToS3, SPAN.createJob, SPAN.publishJobCreated, SPAN.handleJobCreated, SPAN.buildDag, SPAN.markJobCompleted,
    SPAN.queueWait, SPAN.engineDownloadInput, SPAN.engineProcess, SPAN.engineUploadOutput, SPAN.engineModelLoad]);
  for (const s of mine.filter((x) => contractNames.has(x.name) || x.name.startsWith('schedule_task') || /^engine\..*\.process$/.test(x.name))) {
    const want = s.name.startsWith('engine.') || s.name === SPAN.queueWait ? SERVICE.engine
      : [SPAN.uploadToS3, SPAN.createJob, SPAN.publishJobCreated].includes(s.name as never) ? SERVICE.gateway : SERVICE.orchestrator;
    assert.equal(serviceOf(s), want, `${s.name} recorded by ${want}`);
    assert.equal(s.statusCode === 2, false, `${s.name} not an error`);
  }
  const instances = new Set(mine.map((s) => s.resource['service.instance.id']).filter((v): v is string => typeof v === 'string'));
  assert.equal(instances.size, 5, `five processes took part: ${[...instances].join(', ')}`);
});

test('the span store holds the same spans, and GET /v1/audio/transcriptions/{id}/trace answers the waterfall', async () => {
  const traceId = job.trace_id ?? '';
  const sent = otlp.spans().filter((s) => s.traceId === traceId);
  interface Row { span_id: string; parent_span_id: string; name: string; service: string; job_id: string }
  const rows = await until('all spans of the trace in ClickHouse', async () => {
    const r = await h.clickhouse.client.query<Row>(`SELECT span_id, parent_span_id, name, service, job_id FROM ${h.database}.spans WHERE trace_id = '${traceId}'`);
    const ids = new Set(r.map((x) => x.span_id));
    return sent.every((s) => ids.has(s.spanId)) ? r : undefined;
  });
  const stored = new Map(rows.map((r) => [r.span_id, r]));
  for (const s of sent) {
    const r = stored.get(s.spanId);
    assert.ok(r, `${s.name} stored`);
    assert.equal(r.name, s.name);
    assert.equal(r.parent_span_id, s.parentSpanId, `${s.name} parent link stored`);
    assert.equal(r.service, serviceOf(s));
    if (attr(s, 'dalston.job_id') !== undefined) assert.equal(r.job_id, job.id, `${s.name} findable by job_id`);
  }

  const res = await h.api(`/v1/audio/transcriptions/${job.id}/trace`);
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as {
    job_id: string; trace_id: string; span_count: number; services: string[]; duration_ms: number;
    spans: { span_id: string; parent_span_id: string | null; name: string; service: string; depth: number; offset_ms: number; duration_ms: number; attributes: Record<string, string> }[];
  };
  assert.equal(body.job_id, job.id);
  assert.equal(body.trace_id, traceId);
  assert.equal(body.span_count, body.spans.length);
  assert.ok(body.span_count >= sent.length, `${body.span_count} spans`);
  assert.deepEqual(body.services, [SERVICE.engine, SERVICE.gateway, SERVICE.orchestrator]);
  const first = body.spans[0];
  assert.equal(first?.name, 'POST /v1/audio/transcriptions');
  assert.equal(first.depth, 0);
  assert.equal(first.offset_ms, 0);
  // Depth-first order: every span comes after its parent, one level deeper.
  const seen = new Map<string, number>();
  for (const s of body.spans) {
    if (s.parent_span_id !== null) assert.equal(s.depth, (seen.get(s.parent_span_id) ?? -99) + 1, `${s.name} one level below its parent`);
    seen.set(s.span_id, s.depth);
  }
  const task = body.spans.find((s) => s.name === SPAN.engineProcessRoot(POCKETSPHINX_ENGINE));
  assert.ok(task);
  assert.equal(task.attributes['dalston.language'], 'en');
  assert.ok(body.duration_ms >= task.offset_ms + task.duration_ms, 'the trace covers the transcribe task');

  const unknown = await h.api('/v1/audio/transcriptions/job_does_not_exist/trace');
  assert.equal(unknown.status, 404);

  // A gateway without the span store says so instead of answering an empty waterfall.
  const plain = await h.start({ name: 'gateway-no-span-store', kind: 'gateway', env: { DALSTON_OTEL_SPAN_STORE: 'none' } });
  try {
    const off = await fetch(`http://127.0.0.1:${plain.spec.port}/v1/audio/transcriptions/${job.id}/trace`, { headers: { authorization: `Bearer ${h.apiKey}` } });
    assert.equal(off.status, 404);
    const err = (await off.json()) as { error: { code: string; message: string } };
    assert.equal(err.error.code, 'not_found');
    assert.match(err.error.message, /DALSTON_OTEL_SPAN_STORE=clickhouse/);
  } finally {
    await plain.stop(10_000);
    h.services.splice(h.services.indexOf(plain), 1);
  }
});

// ---------------------------------------------------------------------------------------------------------- logs

test('gateway, actor host and engine log lines of the request share request_id and trace_id (= X-Trace-ID); no transcript at info', async () => {
  const traceId = job.trace_id ?? '';
  assert.equal(submitted.headers.get('x-request-id'), submitted.requestId, 'the client X-Request-ID is kept');
  assert.equal(submitted.headers.get('x-trace-id'), traceId, 'X-Trace-ID is the job trace');
  assert.equal(job.request_id, submitted.requestId, 'status body request_id');

  const lines = await until('the engines logged the finished tasks', async () => {
    const all = await h.logLines();
    return all.filter((l) => l['request_id'] === submitted.requestId && l['msg'] === 'task completed').length >= STAGES.length ? all : undefined;
  });
  const mine = lines.filter((l) => l['request_id'] === submitted.requestId);
  for (const l of mine) {
    assert.equal(l['trace_id'], traceId, `trace_id on every line of the request: ${JSON.stringify(l)}`);
    for (const field of ['time', 'level', 'service', 'msg']) assert.ok(l[field] !== undefined, `${field} on ${JSON.stringify(l)}`);
  }
  const byService = (svc: string) => mine.filter((l) => l['service'] === svc);
  assert.ok(byService(SERVICE.gateway).some((l) => l['job_id'] === job.id && l['msg'] === 'request'), 'gateway request line with job_id');
  assert.ok(byService(SERVICE.orchestrator).some((l) => l['job_id'] === job.id && l['msg'] === 'job finished'), 'actor host line');
  for (const st of job.stages) {
    assert.ok(byService(SERVICE.engine).some((l) => l['engine_id'] === st.engine_id && l['task_id'] === st.task_id && l['job_id'] === job.id),
      `a line of engine ${st.engine_id} for task ${st.task_id}`);
  }
  // By trace id alone (the operator's jq filter) the same three roles show up.
  const byTrace = new Set(lines.filter((l) => l['trace_id'] === traceId).map((l) => String(l['service'])));
  assert.deepEqual([...byTrace].sort(), [SERVICE.engine, SERVICE.gateway, SERVICE.orchestrator]);

  // Transcript text never at info level: neither the text nor its longer words in any info (or lower) line.
  const text = (job.text ?? '').trim();
  assert.ok(text.length > 0, 'the job has a transcript');
  const distinctive = [...new Set(text.toLowerCase().split(/[^a-z']+/).filter((w) => w.length >= 6))];
  assert.ok(distinctive.length > 0, `words to look for in ${text}`);
  const levelOf = (l: Record<string, unknown>) => (typeof l['level'] === 'number' ? l['level'] : ({ trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as Record<string, number>)[String(l['level'])] ?? 0);
  for (const l of lines.filter((x) => levelOf(x) >= 30)) {
    const s = JSON.stringify(l).toLowerCase();
    assert.ok(!s.includes(text.toLowerCase()), `transcript in a log line: ${s}`);
    for (const w of distinctive) assert.ok(!new RegExp(`\\b${w}\\b`).test(s), `transcript word "${w}" in a log line: ${s}`);
  }
});

// ------------------------------------------------------------------------------------------------------- metrics

test('/metrics of every process has the contract metrics of its role with the contract labels; dead letters are counted per topic', async () => {
  const [gateway] = services('gateway');
  const [actors] = services('actors');
  assert.ok(gateway && actors);
  const g = await scrape(gateway);
  assert.equal(find(g, METRIC.gatewayRequests, { method: 'POST', route: '/v1/audio/transcriptions', status: '201' })[0]?.value, 1);
  assert.ok((find(g, METRIC.gatewayRequests, { method: 'GET', route: '/v1/audio/transcriptions/:id', status: '200' })[0]?.value ?? 0) >= 1);
  assert.ok(find(g, `${METRIC.gatewayRequestDuration}_bucket`, { method: 'POST', route: '/v1/audio/transcriptions', le: '+Inf' }).length === 1);
  assert.deepEqual(labelNames(g, METRIC.gatewayRequests), ['method', 'route', 'status']);
  assert.deepEqual(labelNames(g, METRIC.gatewayRequestDuration), ['method', 'route']);
  assert.ok(!g.some((s) => Object.values(s.labels).some((v) => v.includes(job.id))), 'no raw path or job id in any label');

  // Consumer-group lag is sampled every 5 s; wait for a sample taken after the last task's commit.
  const a = await until('queue depth reported and drained', async () => {
    const s = await scrape(actors);
    return job.stages.every((st) => find(s, METRIC.queueDepth, { engine_id: st.engine_id, stage: st.stage })[0]?.value === 0) ? s : undefined;
  }, 12_000);
  assert.equal(find(a, METRIC.orchestratorJobs, { status: 'completed' })[0]?.value, 1);
  assert.equal(find(a, METRIC.orchestratorJobs, { status: 'failed' })[0]?.value, 0, 'every outcome exported from start-up');
  assert.equal(find(a, `${METRIC.orchestratorJobDuration}_count`, { status: 'completed' })[0]?.value, 1);
  assert.deepEqual(labelNames(a, METRIC.orchestratorJobs), ['status']);
  assert.deepEqual(labelNames(a, METRIC.orchestratorJobDuration), ['status']);
  assert.deepEqual(labelNames(a, METRIC.queueDepth), ['engine_id', 'stage']);
  for (const st of job.stages) assert.equal(find(a, METRIC.queueDepth, { engine_id: st.engine_id, stage: st.stage })[0]?.value, 0, `queue depth of ${st.engine_id} drained`);
  // Issue 11, defect 5: an engine of the catalogue that is not deployed reports no depth (QueueDepthHigh would fire forever).
  const deployed = new Set(services('engine').map((s) => s.spec.engineId));
  const reported = a.filter((s) => s.name === METRIC.queueDepth).map((s) => s.labels['engine_id'] ?? '');
  assert.ok(reported.length > 0, 'queue depth reported');
  assert.deepEqual(reported.filter((e) => !deployed.has(e)), [], 'queue depth only for engines that were deployed');
  assert.equal(find(a, STREAM_METRIC.deadLetters, { topic: `${h.prefix}jobs.events` })[0]?.value, 0, 'dead letters of jobs.events exported at 0');

  for (const st of job.stages) {
    const e = await scrape(engineService(st.engine_id));
    const labels = { engine_id: st.engine_id, stage: st.stage };
    assert.equal(find(e, METRIC.engineTasksProcessed, { ...labels, status: 'success' })[0]?.value, 1, `${st.engine_id} one success`);
    assert.equal(find(e, METRIC.engineTasksProcessed, { ...labels, status: 'failure' })[0]?.value, 0, `${st.engine_id} failures exported at 0`);
    assert.equal(find(e, `${METRIC.engineTaskDuration}_count`, { ...labels, status: 'success' })[0]?.value, 1);
    assert.equal(find(e, `${METRIC.engineQueueWait}_count`, labels)[0]?.value, 1);
    assert.equal(find(e, `${METRIC.engineAudioDuration}_count`, labels)[0]?.value, 1);
    assert.ok(Math.abs((find(e, METRIC.audioProcessedSeconds, { engine_id: st.engine_id })[0]?.value ?? 0) - (job.audio_duration_seconds ?? 0)) < 0.01);
    assert.deepEqual(labelNames(e, METRIC.engineTaskDuration), ['engine_id', 'stage', 'status']);
    assert.deepEqual(labelNames(e, METRIC.engineTasksProcessed), ['engine_id', 'stage', 'status']);
    assert.deepEqual(labelNames(e, METRIC.engineQueueWait), ['engine_id', 'stage']);
    assert.deepEqual(labelNames(e, METRIC.engineAudioDuration), ['engine_id', 'stage']);
    assert.deepEqual(labelNames(e, METRIC.audioProcessedSeconds), ['engine_id']);
    const loads = find(e, `${METRIC.engineModelLoad}_count`);
    if (st.engine_id === POCKETSPHINX_ENGINE) {
      assert.equal(find(e, `${METRIC.engineModelLoad}_count`, { engine_id: st.engine_id, model: 'pocketsphinx-en-us' })[0]?.value, 1);
      assert.deepEqual(labelNames(e, METRIC.engineModelLoad), ['engine_id', 'model']);
    } else assert.equal(loads.length, 0, `${st.engine_id} loads no model`);
    assert.equal(find(e, STREAM_METRIC.deadLetters, { topic: `${h.prefix}${taskTopicFor(st.stage, st.engine_id)}` })[0]?.value, 0);
  }

  // A message the merge engine cannot decode is dead-lettered and counted under its source topic.
  const producer = h.kafka.producer();
  await producer.connect();
  try {
    await producer.send({ topic: `${h.prefix}${taskTopicFor('merge', 'merge')}`, messages: [{ key: 'garbage', value: Buffer.from('not msgpack at all \u00ff\u00fe') }] });
  } finally {
    await producer.disconnect();
  }
  const merge = engineService('merge');
  await until('the dead letter counted', async () => {
    const s = await scrape(merge);
    return find(s, STREAM_METRIC.deadLetters, { topic: `${h.prefix}${taskTopicFor('merge', 'merge')}` })[0]?.value === 1 ? true : undefined;
  });
  assert.deepEqual(labelNames(await scrape(merge), STREAM_METRIC.deadLetters), ['topic']);
});

test("Debian's Prometheus scraping the stack evaluates every dashboard and alert expression; series where a job feeds them, quiet alerts", async () => {
  const alerts = (parseYaml(readFileSync(ALERTS, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);
  const targets = await until('Prometheus scrapes every process', async () => {
    const r = await promQuery('up{job=~"dalston-.*"} == 1');
    return (r.data?.result.length ?? 0) === 5 ? r : undefined;
  });
  assert.equal(targets.status, 'success');
  // One client error, so the 4xx share has something to show.
  assert.equal((await h.api('/v1/audio/transcriptions/job_unknown_for_prometheus')).status, 404);

  // With no real-time process those panels have no series; every other panel has one (the 5xx share shows 0).
  const noData = (expr: string) => /dalston_realtime_/.test(expr);
  const panels = listDashboardPromQLTargets();
  assert.ok(panels.length >= 25, `${panels.length} dashboard expressions`);
  for (const p of panels) {
    const where = `${p.dashboard} "${p.panelTitle}" ${p.refId}`;
    if (noData(p.expr)) {
      const r = await promQuery(p.expr);
      assert.equal(r.status, 'success', `${where}: ${r.error ?? ''}`);
      continue;
    }
    await until(`${where} has series`, async () => {
      const r = await promQuery(p.expr);
      assert.equal(r.status, 'success', `${where}: ${r.error ?? ''}`);
      return (r.data?.result.length ?? 0) > 0 ? true : undefined;
    }, 15_000);
  }

  // Alerts: the dead letter above makes DeadLettersGrowing fire for the merge queue; every other alert is quiet after a good job.
  assert.equal(alerts.length, 8);
  for (const rule of alerts) {
    if (rule.alert === 'DeadLettersGrowing') {
      const r = await until('DeadLettersGrowing has a series', async () => {
        const q = await promQuery(rule.expr);
        return (q.data?.result.length ?? 0) > 0 ? q : undefined;
      }, 15_000);
      assert.deepEqual(r.data?.result.map((x) => x.metric['topic']), [`${h.prefix}${taskTopicFor('merge', 'merge')}`]);
      continue;
    }
    const r = await promQuery(rule.expr);
    assert.equal(r.status, 'success', `${rule.alert}: ${r.error ?? ''}`);
    assert.deepEqual(r.data?.result, [], `${rule.alert} stays quiet`);
  }
});

// ---------------------------------------------------------------------------------------------------- ClickHouse

test('every SQL panel runs on the stack ClickHouse and answers for this job; the audit trail has its events', async () => {
  const db = h.database;
  const ch = h.clickhouse.client;
  // Reads that are audited: a task's artifacts and an export.
  const transcribe = stageOf('transcribe');
  const read = await h.api(`/v1/audio/transcriptions/${job.id}/tasks/${transcribe.task_id}/artifacts`);
  assert.equal(read.status, 200);
  const exported = await h.api(`/v1/audio/transcriptions/${job.id}/export/txt`);
  assert.equal(exported.status, 200);
  // Job events carry the job's request and trace; reads carry the reading request's own (its X-Request-ID / X-Trace-ID).
  const expectedIds: Record<string, { request: string | null; trace: string | null }> = {
    'job.created': { request: submitted.requestId, trace: job.trace_id },
    'job.completed': { request: submitted.requestId, trace: job.trace_id },
    'artifact.read': { request: read.headers.get('x-request-id'), trace: read.headers.get('x-trace-id') },
    'transcript.exported': { request: exported.headers.get('x-request-id'), trace: exported.headers.get('x-trace-id') },
  };

  await until('task_facts of the three tasks', async () => {
    const r = await ch.query<{ n: string | number }>(`SELECT count() AS n FROM ${db}.task_facts WHERE job_id = '${job.id}'`);
    return Number(r[0]?.n) >= STAGES.length ? true : undefined;
  });

  const range = { from: Math.floor(Date.now() / 1000) - 3600, to: Math.floor(Date.now() / 1000) + 60 };
  const results = new Map<string, Record<string, unknown>[]>();
  for (const t of listDashboardSqlTargets()) {
    const where = `${t.dashboard} "${t.panelTitle}"`;
    const sql = expandGrafanaSqlMacros(t.rawSql, range).replace(/\bdalston\./g, `${db}.`);
    const rows = await ch.query<Record<string, unknown>>(sql).catch((err: unknown) => assert.fail(`${where}: ${String(err)}\n${sql}`));
    assert.ok(rows.length > 0, `${where} answers for the job`);
    results.set(t.panelTitle, rows);
  }
  const audioMinutes = (job.audio_duration_seconds ?? 0) / 60;
  const perHour = results.get('Audio minutes processed per hour') ?? [];
  assert.ok(Math.abs(perHour.reduce((s, r) => s + Number(r['audio_minutes']), 0) - audioMinutes) < 0.001, `audio minutes per hour ${JSON.stringify(perHour)}`);
  const byLanguage = (results.get('Real-time factor by language (transcription)') ?? []).find((r) => r['language'] === 'en');
  assert.ok(byLanguage && Number(byLanguage['tasks']) === 1 && Number(byLanguage['rtf_p50']) > 0, `RTF for en: ${JSON.stringify(byLanguage)}`);
  // Per engine and per language straight from task_facts too (the queries of docs/observability.md).
  const rtf = await ch.query<{ engine_id: string; language: string; rtf: number }>(
    `SELECT engine_id, language, processing_ms / 1000 / audio_duration_seconds AS rtf FROM ${db}.task_facts
     WHERE job_id = '${job.id}' AND status = 'success' AND stage LIKE 'transcribe%'`);
  assert.deepEqual(rtf.map((r) => [r.engine_id, r.language]), [[POCKETSPHINX_ENGINE, 'en']]);
  // The panel's figure is this one task's real-time factor. How fast pocketsphinx ran depends on the machine's load,
  // so the test compares the panel with the fact it summarises, not with a speed (a hogged run measured 5.3).
  const byEngine = (results.get('Real-time factor p50 / p95 / p99 by engine and model') ?? []).find((r) => r['engine_id'] === POCKETSPHINX_ENGINE);
  const taskRtf = Number(rtf[0]?.rtf);
  assert.ok(taskRtf > 0, `the transcribe task's RTF from task_facts: ${taskRtf}`);
  assert.ok(byEngine && Number(byEngine['tasks']) === 1, `one pocketsphinx task in the panel: ${JSON.stringify(byEngine)}`);
  for (const q of ['rtf_p50', 'rtf_p95', 'rtf_p99']) {
    assert.ok(Math.abs(Number(byEngine[q]) - taskRtf) < 1e-6 * Math.max(1, taskRtf), `${q} of pocketsphinx ${JSON.stringify(byEngine)} is the task's RTF ${taskRtf}`);
  }
  assert.ok(Math.abs(Number(byLanguage['rtf_p50']) - taskRtf) < 1e-6 * Math.max(1, taskRtf), `the en panel's rtf_p50 is the task's RTF ${taskRtf}`);

  interface AuditRow { event_type: string; tenant_id: string; actor_key_id: string; audio_duration_seconds: number; request_id: string; trace_id: string }
  const wanted = ['job.created', 'job.completed', 'artifact.read', 'transcript.exported'];
  const audit = await until('the audit events of the job', async () => {
    const r = await ch.query<AuditRow>(
      `SELECT toString(event_type) AS event_type, tenant_id, actor_key_id, audio_duration_seconds, request_id, trace_id
       FROM ${db}.audit_events WHERE job_id = '${job.id}' ORDER BY time_ms`);
    return wanted.every((w) => r.some((x) => x.event_type === w)) ? r : undefined;
  });
  for (const w of wanted) {
    const e = audit.find((x) => x.event_type === w);
    assert.ok(e);
    assert.equal(e.tenant_id, 'default', `${w} tenant`);
    assert.equal(e.actor_key_id, keyIdOf(h.apiKey), `${w} API key id`);
    assert.match(e.trace_id, /^[0-9a-f]{32}$/, `${w} trace id`);
    assert.equal(e.trace_id, expectedIds[w]?.trace, `${w} trace id`);
    assert.equal(e.request_id, expectedIds[w]?.request, `${w} request id`);
    // The duration is measured by prepare, after job.created was recorded.
    if (w !== 'job.created') assert.ok(Math.abs(Number(e.audio_duration_seconds) - (job.audio_duration_seconds ?? 0)) < 0.01, `${w} audio duration`);
  }
});
