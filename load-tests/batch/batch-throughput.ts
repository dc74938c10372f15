/**
 * Batch throughput benchmark (not a test): submits N jobs of one clip over HTTP to a real stack (Kafka, ClickHouse,
 * gateway, actor host, engines) and reports jobs per second, audio seconds transcribed per wall second, orchestration
 * overhead per job (job wall time minus the engines' processing time) p50/p95/p99, queue wait, Kafka hop latency
 * measured by a probe producer/consumer pair running beside the load, and CPU share and peak RSS of every process.
 * Prints a table and writes JSON to load-tests/results/.
 *
 *   npm run bench:batch -- [--model moonshine-tiny] [--clip-seconds 2] [--jobs 200] [--concurrency 16] [--engines 1] [--trace]
 *   npm run bench:batch -- --long-file 3600 [--engines 2]     (one long recording: one pass, then parts on 1…N engines)
 *
 * --model is a catalogue ASR model (default: the default transcribe engine's, DALSTON_TRANSCRIBE_ENGINE);
 * --clip-seconds the length of every job's audio (espeak sentences with short pauses, padded with silence);
 * --engines the transcribe engine processes; --concurrency the submitters (1 = light load, many = a burst);
 * --trace also stores every process's spans and prints where each job's time went (span durations and the gaps no
 * span covers), from the jobs' trace waterfalls.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { tmpdir } from 'node:os';
import { loadConfig } from '../../core/config.js';
import { writeWav } from '../../engines/audio/wav.js';
import { CATALOGUE, batchEngineId, findModel } from '../../engines/models/catalogue.js';
import { StreamConsumer, StreamProducer, ensureTopics, newMessageHeaders } from '../../streams/index.js';
import { ESPEAK_SENTENCES, FIXTURE_RATE, synthesize, synthesizeFile, withPauses } from '../../harness/speech-fixtures.js';
import { TERMINAL, startHarness, type Harness, type JobBody } from '../../harness/pipeline-harness.js';
import { cpuShares, sampleProcesses } from '../process-sample.js';
import { runLongFile } from './long-file.js';
import { formatPercentiles, percentiles, type Percentiles } from '../stats.js';
import { SPAN } from '../../core/observability-names.js';
import { traceBreakdown, type TraceBreakdown, type TraceSpan } from './trace-breakdown.js';

/** The transcribe engine of a catalogue model id, or of the deployment's default engine when none is named. */
function transcribeEngineOf(model: string | undefined): string {
  if (model === undefined) return loadConfig().transcribeEngine;
  const spec = findModel(model);
  if (spec?.task !== 'asr') throw new Error(`--model ${model}: not an ASR model of the catalogue (${CATALOGUE.filter((m) => m.task === 'asr').map((m) => m.id).join(', ')})`);
  return batchEngineId(spec);
}

/**
 * A WAV of `seconds` of speech: espeak sentences with 0.3 s pauses while they fit, then silence to the length. A clip
 * shorter than one sentence is a short command.
 */
async function clipOf(seconds: number): Promise<string> {
  if (seconds <= 3) return synthesizeFile('go forward ten meters', { padBefore: 0.1, padAfter: Math.max(0.1, seconds - 1.7) });
  const pause = 0.3;
  const pieces: Float32Array[] = [];
  let length = pause;
  for (let i = 0; ; i++) {
    const sentence = await synthesize(ESPEAK_SENTENCES[i % ESPEAK_SENTENCES.length] ?? '');
    const next = sentence.length / FIXTURE_RATE + pause;
    if (pieces.length > 0 && length + next > seconds) break;
    pieces.push(sentence);
    length += next;
  }
  const speech = withPauses(pieces, pause);
  const samples = new Float32Array(Math.max(speech.length, Math.round(seconds * FIXTURE_RATE)));
  samples.set(speech);
  const path = join(tmpdir(), `dalston-bench-clip-${seconds}s.wav`);
  await writeWav(path, samples, FIXTURE_RATE);
  return path;
}

async function writeResult(name: string, result: { date: string }): Promise<string> {
  const dir = join(REPO_ROOT, 'load-tests', 'results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${name}-${result.date.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}

async function longFileMode(seconds: number, engineId: string, engines: number): Promise<void> {
  if (!(seconds > 0) || !(engines >= 1)) throw new Error('--long-file needs a positive number of seconds and --engines ≥ 1');
  const { seconds: actual, runs } = await runLongFile(seconds, engineId, engines);
  const result = { date: new Date().toISOString(), machine: { cores: (await import('node:os')).availableParallelism(), node: process.version }, engineId, audioSeconds: actual, runs };
  const file = await writeResult('batch-long-file', result);
  process.stdout.write([
    `long file: ${(actual / 60).toFixed(1)} min of speech, ${engineId}`,
    ...runs.map((r) => `${r.label.padEnd(20)} ${r.parts} part(s)  wall ${r.wallSeconds.toFixed(1)} s  ${r.realTimeFactor.toFixed(1)}x real time  WER ${(r.wer * 100).toFixed(2)} % (${r.errors}/${r.refWords})  words in order: ${r.wordsInOrder}  parts per instance ${JSON.stringify(r.partsPerInstance)}\n` +
      `${''.padEnd(20)} peak RSS: ${r.processes.map((p) => `${p.name} ${p.rssPeakMb.toFixed(0)} MB`).join(', ')}`),
    `results: ${file}`, '',
  ].join('\n'));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' }, 'clip-seconds': { type: 'string', default: '2' }, jobs: { type: 'string', default: '200' },
      concurrency: { type: 'string', default: '16' }, engines: { type: 'string', default: '1' }, 'long-file': { type: 'string' },
      trace: { type: 'boolean', default: false },
    },
  });
  if (values['long-file'] !== undefined) {
    await longFileMode(Number(values['long-file']), transcribeEngineOf(values.model), Number(values.engines));
    return;
  }
  const totalJobs = Number(values.jobs);
  const concurrency = Number(values.concurrency);
  const instances = Number(values.engines);
  const clipSeconds = Number(values['clip-seconds']);
  for (const [name, v] of [['jobs', totalJobs], ['concurrency', concurrency], ['engines', instances], ['clip-seconds', clipSeconds]] as const) {
    if (!(v > 0) || !Number.isFinite(v)) throw new Error(`--${name} must be a positive number`);
  }
  const engineId = transcribeEngineOf(values.model);
  const h = await startHarness({
    name: 'bench',
    engines: ['audio-prepare', ...Array.from({ length: instances }, (_, i) => ({ engineId, name: `asr-${i}` })), 'merge'],
    env: {
      DALSTON_LOG_LEVEL: 'warn', DALSTON_ENGINE_HEARTBEAT_SECONDS: '5', DALSTON_TRANSCRIBE_ENGINE: engineId,
      // --trace: spans into ClickHouse only, for the breakdown below (tracing has a cost: compare figures without it).
      ...(values.trace ? { DALSTON_OTEL_ENABLED: 'true', DALSTON_OTEL_SPAN_STORE: 'clickhouse', OTEL_TRACES_EXPORTER: 'none' } : {}),
    },
  });
  const processes = () => h.services.map((s) => ({ name: s.spec.name, pid: s.child.pid }));
  const probeTopic = `${h.prefix}bench.probe`;
  await ensureTopics(h.kafka, [{ name: probeTopic, partitions: 1, cleanupPolicy: 'delete' }]);
  const hops: number[] = [];
  const probeConsumer = new StreamConsumer<number>({
    kafka: h.kafka, groupId: `${h.prefix}bench-probe`, topics: [probeTopic], decode: (v) => Number(v.toString()),
    handler: async (m) => void hops.push(Date.now() - m.headers.enqueuedAt), deadLetter: { write: async () => undefined },
    log: silentLogger, maxWaitTimeMs: 100,
  });
  await probeConsumer.start();
  const probeProducer = new StreamProducer({ kafka: h.kafka, log: silentLogger });
  await probeProducer.connect();
  let probing = true;
  const probeLoop = (async () => {
    let i = 0;
    while (probing) {
      await probeProducer.send(probeTopic, { key: null, value: Buffer.from(String(i++)), headers: newMessageHeaders() });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  const audio = await clipOf(clipSeconds);
  // A first job loads the model (once per engine process), so the figures are of a warm stack.
  const warm = await h.submit(audio);
  if (warm.status !== 201) throw new Error(`warm-up submit failed: ${warm.status} ${JSON.stringify(warm.body)}`);
  await h.waitFor(warm.body.id, (j) => TERMINAL.has(j.status), 600_000);
  const cpuBefore = await sampleProcesses(processes());
  const started = Date.now();
  const ids: string[] = [];
  let next = 0;
  const submitters = Array.from({ length: concurrency }, async () => {
    while (next < totalJobs) {
      next++;
      const res = await h.submit(audio);
      if (res.status !== 201) throw new Error(`submit failed: ${res.status} ${JSON.stringify(res.body)}`);
      ids.push(res.body.id);
    }
  });
  await Promise.all(submitters);
  const submittedMs = Date.now() - started;
  const jobs: JobBody[] = [];
  for (const id of ids) jobs.push(await h.waitFor(id, (j) => TERMINAL.has(j.status), 600_000));
  const lastCompleted = Math.max(...jobs.map((j) => Date.parse((j as unknown as { completed_at: string }).completed_at)));
  const elapsedS = (lastCompleted - started) / 1000;
  const cpuAfter = await sampleProcesses(processes());
  probing = false;
  await probeLoop;
  await probeProducer.close();
  await probeConsumer.close();

  const completed = jobs.filter((j) => j.status === 'completed');
  const overhead = completed.map((j) => {
    const body = j as unknown as { created_at: string; completed_at: string };
    const wall = Date.parse(body.completed_at) - Date.parse(body.created_at);
    const processing = j.stages.reduce((sum, s) => sum + (s.duration_ms ?? 0), 0);
    return wall - processing;
  });
  const wall = completed.map((j) => {
    const body = j as unknown as { created_at: string; completed_at: string };
    return Date.parse(body.completed_at) - Date.parse(body.created_at);
  });
  const queueWait = completed.flatMap((j) => j.stages.map((s) => s.queue_wait_ms ?? 0));
  // What the actors and Kafka add on their own: wall time minus engine processing minus time tasks sat in queues.
  const pureOverhead = completed.map((j, i) => (overhead[i] ?? 0) - j.stages.reduce((sum, s) => sum + (s.queue_wait_ms ?? 0), 0));
  const failures = jobs.filter((j) => j.status !== 'completed').map((j) => ({ id: j.id, status: j.status, error: j.error, stages: j.stages.map((s) => ({ stage: s.stage, status: s.status, retries: s.retries, error: s.error })) }));
  const result = {
    date: new Date().toISOString(),
    machine: { cores: (await import('node:os')).availableParallelism(), node: process.version },
    settings: { engineId, jobs: totalJobs, submitConcurrency: concurrency, transcribeInstances: instances, audioSeconds: completed[0]?.audio_duration_seconds },
    completed: completed.length,
    failed: jobs.length - completed.length,
    submitSeconds: submittedMs / 1000,
    elapsedSeconds: elapsedS,
    jobsPerSecond: completed.length / elapsedS,
    audioSecondsPerWallSecond: completed.reduce((sum, j) => sum + (j.audio_duration_seconds ?? 0), 0) / elapsedS,
    processes: cpuShares(cpuBefore, cpuAfter, elapsedS),
    jobWallMs: percentiles(wall),
    orchestrationOverheadMs: percentiles(overhead),
    orchestrationOverheadExcludingQueueWaitMs: percentiles(pureOverhead),
    failures,
    stageQueueWaitMs: percentiles(queueWait),
    kafkaHopMs: percentiles(hops),
    traceBreakdown: values.trace ? traceBreakdown(await jobTraces(h, completed.map((j) => j.id))) : undefined,
  };
  await h.stop();
  const file = await writeResult('batch-throughput', result);
  const row = (name: string, s: Percentiles) =>
    `${name.padEnd(34)} p50 ${s.p50.toFixed(0).padStart(6)}  p95 ${s.p95.toFixed(0).padStart(6)}  p99 ${s.p99.toFixed(0).padStart(6)}  max ${s.max.toFixed(0).padStart(6)}  (n=${s.n})`;
  process.stdout.write(
    [
      `batch throughput: ${result.completed}/${totalJobs} jobs completed (${result.failed} failed) in ${elapsedS.toFixed(1)} s → ${result.jobsPerSecond.toFixed(2)} jobs/s, ${result.audioSecondsPerWallSecond.toFixed(1)} audio s per wall s`,
      `  (${engineId} × ${instances}, submit concurrency ${concurrency}, ${result.settings.audioSeconds ?? '?'} s of audio per job)`,
      row('job wall time (ms)', result.jobWallMs),
      row('orchestration overhead (ms)', result.orchestrationOverheadMs),
      row('  of which not queue wait (ms)', result.orchestrationOverheadExcludingQueueWaitMs),
      row('stage queue wait (ms)', result.stageQueueWaitMs),
      row('Kafka hop, probe (ms)', result.kafkaHopMs),
      ...(result.traceBreakdown ? breakdownLines(result.traceBreakdown) : []),
      `CPU (share of one core) and peak RSS: ${result.processes.map((p) => `${p.name} ${(p.cpuShare * 100).toFixed(0)}% ${p.rssPeakMb.toFixed(0)} MB`).join(', ')}`,
      ...failures.map((f) => `failed: ${f.id} ${JSON.stringify(f.error)} ${JSON.stringify(f.stages.filter((s) => s.error))}`),
      `results: ${file}`,
      '',
    ].join('\n'),
  );
}

/** Each job's waterfall, once the span store has its `mark_job_completed` (spans are written in batches). */
async function jobTraces(h: Harness, ids: readonly string[]): Promise<TraceSpan[][]> {
  const out: TraceSpan[][] = [];
  for (const id of ids) {
    let spans: TraceSpan[] = [];
    for (let tries = 0; tries < 100; tries++) {
      const res = await h.api(`/v1/audio/transcriptions/${id}/trace`);
      if (res.status === 200) spans = ((await res.json()) as { spans: TraceSpan[] }).spans;
      else await res.body?.cancel();
      if (spans.some((s) => s.name === SPAN.markJobCompleted)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    out.push(spans);
  }
  return out;
}

function breakdownLines(b: TraceBreakdown): string[] {
  const top = (m: Readonly<Record<string, Percentiles>>, n: number) =>
    Object.entries(m).sort((x, y) => y[1].mean * y[1].n - x[1].mean * x[1].n).slice(0, n);
  return [
    `trace breakdown over ${b.jobs} jobs: trace ${formatPercentiles(b.traceMs)} ms, of it covered by no span ${formatPercentiles(b.uncoveredMs)} ms (p50/p95/p99)`,
    '  spans, most total time first (p50/p95/p99 ms, count):',
    ...top(b.spans, 14).map(([k, p]) => `    ${k.padEnd(60)} ${formatPercentiles(p, 1).padStart(18)}  n=${p.n}`),
    '  gaps between spans, most total time first (p50/p95/p99 ms, count):',
    ...top(b.gaps, 12).map(([k, p]) => `    ${k.padEnd(90)} ${formatPercentiles(p, 1).padStart(18)}  n=${p.n}`),
  ];
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
