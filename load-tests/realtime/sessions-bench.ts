/**
 * Real-time sessions benchmark (not a test): the whole live path on a real stack (Kafka, ClickHouse, gateway, actor
 * host, streaming engines as separate processes), N concurrent native WebSocket sessions streaming real speech (the
 * pocketsphinx-testdata LibriVox clips joined with pauses) at real-time pace.
 *
 *   npm run bench:realtime-sessions -- [--levels 1,4,16,auto] [--engines 1] [--clips 3]
 *
 * For each N it reports, from the client's side: time to first partial after speech onset, end of speech → final
 * (p50/p95/p99, from the end of the utterance's last word as sent, so it includes the end-pointer's silence wait,
 * and after that wait), partial cadence achieved (ms between partials of one utterance), lag warnings and closes;
 * per-hop latency from the processes' /metrics; CPU share and peak RSS of every process from /proc. `auto` raises
 * N past the largest listed level until a session breaches the lag budget (a `warning` or a 4010 close) and
 * reports the largest N that held. Prints a table and writes JSON under load-tests/results/.
 */
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../../core/config.js';
import { REALTIME_METRIC } from '../../core/observability-names.js';
import { TESTDATA, parseSphinxTranscription } from '../../harness/speech-fixtures.js';
import { readWav } from '../../harness/wav.js';
import { startHarness, type Harness } from '../../harness/pipeline-harness.js';
import { streamNative, toPcm16, type NativeSessionResult } from '../../harness/realtime-client.js';
import { formatPercentiles, percentiles, type Percentiles } from '../stats.js';
import { cpuShares, sampleProcesses, type ProcessSample } from '../process-sample.js';

const RATE = 16000;
const PAUSE_SECONDS = 1.5;

interface SessionFigures {
  readonly firstPartialMs: number[];
  readonly finalFromSpeechEndMs: number[];
  readonly cadenceMs: number[];
  readonly finals: number;
  readonly lagWarnings: number;
  readonly closeCode: number;
  readonly closeReason: string;
}

interface LevelResult {
  readonly sessions: number;
  readonly wallSeconds: number;
  readonly audioSecondsPerSession: number;
  readonly firstPartialMs: Percentiles;
  readonly finalFromSpeechEndMs: Percentiles;
  readonly finalAfterSilenceWindowMs: Percentiles;
  readonly partialCadenceMs: Percentiles;
  readonly finals: number;
  readonly lagWarnings: number;
  readonly abnormalCloses: readonly string[];
  readonly withinLagBudget: boolean;
  readonly hopMeanMs: Readonly<Record<string, number>>;
  readonly processes: readonly (ProcessSample & { cpuShare: number })[];
}

async function program(clips: number): Promise<Int16Array> {
  const dir = join(TESTDATA, 'librivox');
  const ids = [...parseSphinxTranscription(await readFile(join(dir, 'transcription'), 'utf8')).keys()].sort().slice(0, clips);
  const parts: Float32Array[] = [new Float32Array(RATE / 2)];
  for (const id of ids) {
    const wav = await readWav(join(dir, `${id}.wav`));
    if (wav.sampleRate !== RATE) throw new Error(`${id}: ${wav.sampleRate} Hz, expected ${RATE}`);
    parts.push(wav.samples, new Float32Array(Math.round(RATE * PAUSE_SECONDS)));
  }
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return toPcm16(all);
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number.NaN);

/** Client-side figures of one session: times are wall ms since its first audio; audio positions are seconds. */
/**
 * `speechPadMs`: the end-pointer reports an utterance's start padded back by this much (default 200 ms), so the
 * speech onset is that much after the reported start; first-partial latency is measured from the onset.
 */
function figures(r: NativeSessionResult, speed: number, speechPadMs: number): SessionFigures {
  const sentAt = (audioSeconds: number) => (audioSeconds * 1000) / speed;
  const onsets = new Map<number, number>();
  const partials = new Map<number, number[]>();
  const firstPartialMs: number[] = [];
  const finalFromSpeechEndMs: number[] = [];
  let finals = 0;
  let lagWarnings = 0;
  for (const { atMs, message: m } of r.messages) {
    const utterance = num(m['utterance']);
    if (m.type === 'vad.speech_start') {
      const start = num(m['start']);
      onsets.set(utterance, start > 0 ? start + speechPadMs / 1000 : start);
    }
    else if (m.type === 'transcript.partial') {
      const list = partials.get(utterance) ?? [];
      if (list.length === 0 && onsets.has(utterance)) firstPartialMs.push(atMs - sentAt(onsets.get(utterance) ?? Number.NaN));
      list.push(atMs);
      partials.set(utterance, list);
    } else if (m.type === 'transcript.final') {
      finals++;
      // A final's `end` is the pause start plus speechPad: the speech ended speechPad before it.
      finalFromSpeechEndMs.push(atMs - sentAt(num(m['end']) - speechPadMs / 1000));
    } else if (m.type === 'warning' && typeof m['code'] === 'string' && m['code'].includes('lag')) lagWarnings++;
  }
  const cadenceMs = [...partials.values()].flatMap((ts) => ts.slice(1).map((t, i) => t - (ts[i] ?? t)));
  return { firstPartialMs, finalFromSpeechEndMs, cadenceMs, finals, lagWarnings, closeCode: r.closeCode, closeReason: r.closeReason };
}

function sampleAll(h: Harness): Promise<ProcessSample[]> {
  return sampleProcesses(h.services.map((s) => ({ name: s.spec.name, pid: s.child.pid })));
}

/** Sum and count of the per-hop histogram across every process's /metrics. */
async function hopTotals(h: Harness): Promise<Map<string, { sum: number; count: number }>> {
  const totals = new Map<string, { sum: number; count: number }>();
  for (const s of h.services) {
    const text = await fetch(`http://127.0.0.1:${s.spec.port}/metrics`).then((r) => r.text()).catch(() => '');
    for (const line of text.split('\n')) {
      const m = new RegExp(`^${REALTIME_METRIC.hop}_(sum|count)\\{hop="([a-z_]+)"\\} ([0-9.e+-]+)$`).exec(line);
      if (!m?.[1] || !m[2]) continue;
      const t = totals.get(m[2]) ?? { sum: 0, count: 0 };
      if (m[1] === 'sum') t.sum += Number(m[3]);
      else t.count += Number(m[3]);
      totals.set(m[2], t);
    }
  }
  return totals;
}

async function runLevel(h: Harness, n: number, pcm: Int16Array, minSilenceMs: number, speechPadMs: number): Promise<LevelResult> {
  const base = h.gatewayUrl.replace(/^http/, 'ws');
  const hopsBefore = await hopTotals(h);
  const before = await sampleAll(h);
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      // Staggered starts: real callers do not begin in the same millisecond.
      await new Promise((r) => setTimeout(r, (i * 997) % 1000));
      return streamNative(pcm, { baseUrl: base, apiKey: h.apiKey, query: { retention: 'false' }, endTimeoutMs: 60_000 });
    }),
  );
  const wallSeconds = (Date.now() - started) / 1000;
  const after = await sampleAll(h);
  const hopsAfter = await hopTotals(h);
  const per = results.map((r) => figures(r, 1, speechPadMs));
  const hopMeanMs: Record<string, number> = {};
  for (const [hop, t] of hopsAfter) {
    const b = hopsBefore.get(hop) ?? { sum: 0, count: 0 };
    const count = t.count - b.count;
    if (count > 0) hopMeanMs[hop] = ((t.sum - b.sum) / count) * 1000;
  }
  const finalFromSpeechEnd = per.flatMap((p) => p.finalFromSpeechEndMs);
  const abnormalCloses = per.filter((p) => p.closeCode !== 1000).map((p) => `${p.closeCode} ${p.closeReason}`);
  const lagWarnings = per.reduce((a, p) => a + p.lagWarnings, 0);
  return {
    sessions: n, wallSeconds, audioSecondsPerSession: pcm.length / RATE,
    firstPartialMs: percentiles(per.flatMap((p) => p.firstPartialMs)),
    finalFromSpeechEndMs: percentiles(finalFromSpeechEnd),
    finalAfterSilenceWindowMs: percentiles(finalFromSpeechEnd.map((v) => v - minSilenceMs)),
    partialCadenceMs: percentiles(per.flatMap((p) => p.cadenceMs)),
    finals: per.reduce((a, p) => a + p.finals, 0),
    lagWarnings, abnormalCloses,
    withinLagBudget: lagWarnings === 0 && !abnormalCloses.some((c) => c.startsWith('4010')),
    hopMeanMs,
    processes: cpuShares(before, after, wallSeconds),
  };
}

function print(r: LevelResult): void {
  const hops = Object.entries(r.hopMeanMs).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');
  const procs = r.processes.map((p) => `${p.name} ${(p.cpuShare * 100).toFixed(0)}% ${p.rssPeakMb.toFixed(0)}MB`).join(', ');
  process.stdout.write(
    `N=${String(r.sessions).padStart(3)}  first partial p50/p95/p99 ${formatPercentiles(r.firstPartialMs)} ms  ` +
      `final from speech end ${formatPercentiles(r.finalFromSpeechEndMs)} ms (after silence window ${formatPercentiles(r.finalAfterSilenceWindowMs)})  ` +
      `cadence p50 ${r.partialCadenceMs.p50.toFixed(0)} ms  finals ${r.finals}  lag warnings ${r.lagWarnings}  ` +
      `abnormal closes ${r.abnormalCloses.length}${r.withinLagBudget ? '' : '  LAG BUDGET BREACHED'}\n` +
      `        hops (mean ms): ${hops}\n        cpu/rss peak: ${procs}\n`,
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { levels: { type: 'string', default: '1,4,16,auto' }, engines: { type: 'string', default: '1' }, clips: { type: 'string', default: '3' }, 'min-silence-ms': { type: 'string', default: '500' }, 'speech-pad-ms': { type: 'string', default: '200' } },
  });
  const levels = (values.levels ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const fixed = levels.filter((l) => l !== 'auto').map(Number);
  const auto = levels.includes('auto');
  const engines = Number(values.engines);
  const minSilenceMs = Number(values['min-silence-ms']);
  const speechPadMs = Number(values['speech-pad-ms']);
  const pcm = await program(Number(values.clips));
  const h = await startHarness({
    name: 'rtbench',
    engines: [],
    realtimeEngines: engines,
    env: {
      DALSTON_LOG_LEVEL: 'warn',
      // Capacity is not what this measures: let the lag budget decide how many sessions one machine holds.
      DALSTON_REALTIME_SESSIONS_PER_ENGINE: '1000',
      DALSTON_REALTIME_MAX_SESSIONS_PER_KEY: '1000',
    },
  });
  const results: LevelResult[] = [];
  let largestWithinBudget = 0;
  try {
    process.stdout.write(`real-time sessions bench: ${(pcm.length / RATE).toFixed(1)} s of LibriVox speech per session, ${engines} engine process(es)\n`);
    for (const n of fixed) {
      const r = await runLevel(h, n, pcm, minSilenceMs, speechPadMs);
      results.push(r);
      print(r);
      if (r.withinLagBudget) largestWithinBudget = Math.max(largestWithinBudget, n);
    }
    if (auto) {
      let n = Math.max(1, ...fixed);
      for (;;) {
        n = Math.ceil(n * 1.5);
        const r = await runLevel(h, n, pcm, minSilenceMs, speechPadMs);
        results.push(r);
        print(r);
        if (!r.withinLagBudget) break;
        largestWithinBudget = n;
      }
    }
  } finally {
    await h.stop();
  }
  process.stdout.write(`largest N within the lag budget: ${largestWithinBudget}\n`);
  const date = new Date().toISOString();
  const dir = join(REPO_ROOT, 'load-tests', 'results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `realtime-sessions-${date.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify({ date, engines, audioSecondsPerSession: pcm.length / RATE, minSilenceMs, largestWithinBudget, levels: results }, null, 2)}\n`);
  process.stdout.write(`wrote ${file}\n`);
}

await main();
