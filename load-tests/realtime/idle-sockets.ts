/**
 * Idle real-time connections one gateway process holds (a benchmark, not a test):
 * `npm run bench:idle-sockets -- [--connections 19500] [--clients 5] [--rate 800]`.
 *
 * Starts a private Kafka (or uses DALSTON_TEST_KAFKA_BROKERS) and the real gateway (`dist/gateway/main.js`) as its own process with the idle
 * timeout and capacity raised, joins the streaming engines' group with a consumer that discards realtime.input (so
 * the gateway counts one live engine), then forks client processes that open native-dialect sessions with `ws`
 * (authenticated with the API key, upgraded, then silent). Reports how many the gateway holds, what stopped the
 * ramp (the errors seen), and the gateway's RSS per connection (growth over its idle baseline). Each process stays
 * under this machine's 20,000 open files: clients hold at most 4,000 sockets each. Prints a table and writes JSON
 * under load-tests/results/.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { REPO_ROOT } from '../../core/config.js';
import { createLogger, type Logger } from '../../core/logger.js';
import { REALTIME_INPUT, StreamConsumer, connectStreams, prefixed, realtimeEngineGroupId } from '../../streams/index.js';
import { startTestKafka, type TestKafka } from '../../harness/kafka-fixture.js';

const API_KEY = 'dk_bench_idle_sockets_0123456789';

interface Probe {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

interface ClientReport {
  readonly type: 'progress' | 'done';
  readonly open: number;
  readonly failed: number;
  readonly closed: number;
  readonly errors: Readonly<Record<string, number>>;
}

// ---------- client process ----------
async function clientMain(url: string, count: number, rate: number): Promise<void> {
  const sockets: WebSocket[] = [];
  let open = 0;
  let failed = 0;
  let closed = 0;
  const errors: Record<string, number> = {};
  const note = (e: string) => (errors[e] = (errors[e] ?? 0) + 1);
  const report = (type: ClientReport['type']) => process.send?.({ type, open, failed, closed, errors } satisfies ClientReport);
  const progress = setInterval(() => report('progress'), 1000);
  const batch = Math.max(1, Math.round(rate / 20));
  let inFlight = 0;
  for (let i = 0; i < count; i += batch) {
    const n = Math.min(batch, count - i);
    for (let k = 0; k < n; k++) {
      inFlight++;
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${API_KEY}` }, perMessageDeflate: false });
      sockets.push(ws);
      let wasOpen = false;
      ws.once('open', () => {
        wasOpen = true;
        open++;
        inFlight--;
      });
      ws.once('unexpected-response', (_req, res) => {
        note(`http ${res.statusCode ?? 0}`);
        failed++;
        inFlight--;
        ws.terminate();
      });
      ws.on('error', (err) => {
        if (!wasOpen) {
          note((err as NodeJS.ErrnoException).code ?? err.message);
          failed++;
          inFlight--;
        }
      });
      ws.once('close', (code) => {
        if (wasOpen) {
          open--;
          closed++;
          note(`close ${code}`);
        }
      });
    }
    await new Promise((r) => setTimeout(r, 50));
    // Do not pile up handshakes beyond what the server answers.
    while (inFlight > rate) await new Promise((r) => setTimeout(r, 20));
  }
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 50));
  report('done');
  // Hold until told to exit.
  process.on('message', (m) => {
    if (m === 'exit') {
      clearInterval(progress);
      for (const ws of sockets) ws.terminate();
      setTimeout(() => process.exit(0), 200);
    }
  });
}

// ---------- coordinator ----------
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) : NaN;
}

async function openFiles(pid: number): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  return (await readdir(`/proc/${pid}/fd`)).length;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { connections: { type: 'string', default: '19500' }, clients: { type: 'string', default: '5' }, rate: { type: 'string', default: '800' } },
  });
  const target = Number(values.connections);
  const clients = Number(values.clients);
  const rate = Number(values.rate);
  const log = createLogger({ service: 'bench-idle-sockets', level: 'warn' });
  // Its own broker, like the other benches: nothing else has to be running.
  const kafka = await startTestKafka(log);
  try {
    await run(kafka, log, target, clients, rate);
  } finally {
    await kafka.stop();
  }
}

async function run(kafka: TestKafka, log: Logger, target: number, clients: number, rate: number): Promise<void> {
  const brokers = kafka.brokers.join(',');
  const prefix = `bench.idle${randomBytes(3).toString('hex')}.`;
  const streams = await connectStreams({ brokers: brokers.split(','), clientId: 'bench-idle-sockets', topicPrefix: prefix, log });
  // One live streaming engine as far as admission is concerned: a member of the engines' group that discards input.
  const { ensureTopics } = await import('../../streams/index.js');
  await ensureTopics(streams.kafka, [{ ...REALTIME_INPUT, name: prefixed(prefix, REALTIME_INPUT.name) }, { name: prefixed(prefix, 'dead-letter'), partitions: 1, cleanupPolicy: 'delete' }]);
  let inputs = 0;
  const engine = new StreamConsumer({
    kafka: streams.kafka, groupId: realtimeEngineGroupId(prefix), topics: [prefixed(prefix, REALTIME_INPUT.name)], deadLetter: streams.deadLetter, log,
    decode: (v) => v, fromBeginning: false, commitOffsets: false, partitionsConsumedConcurrently: 12,
    handler: async () => {
      inputs++;
    },
  });
  await engine.start();

  const port = await freePort();
  const probe = join(REPO_ROOT, 'dist', 'load-tests', 'realtime', 'gc-probe.js');
  const gateway: ChildProcess = spawn(process.execPath, ['--expose-gc', '--import', probe, join(REPO_ROOT, 'dist', 'gateway', 'main.js')], {
    env: {
      ...process.env, DALSTON_API_KEY: API_KEY, DALSTON_TOPIC_PREFIX: prefix, DALSTON_KAFKA_BROKERS: brokers, DALSTON_GATEWAY_PORT: String(port),
      DALSTON_GATEWAY_ID: `bench-${port}`, DALSTON_REALTIME_IDLE_TIMEOUT_SECONDS: '86400', DALSTON_REALTIME_SESSIONS_PER_ENGINE: '100000',
      DALSTON_REALTIME_MAX_SESSIONS_PER_KEY: '1000000', DALSTON_REALTIME_RETENTION: 'false', DALSTON_LOG_LEVEL: 'warn', DALSTON_OTEL_ENABLED: 'false',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const pid = gateway.pid ?? 0;
  let probeWaiter: ((m: Probe) => void) | undefined;
  let errTail = '';
  gateway.stderr?.on('data', (chunk: Buffer) => {
    errTail += chunk.toString('utf8');
    let nl: number;
    while ((nl = errTail.indexOf('\n')) >= 0) {
      const line = errTail.slice(0, nl);
      errTail = errTail.slice(nl + 1);
      if (line.startsWith('GC_PROBE ')) probeWaiter?.(JSON.parse(line.slice(9)) as Probe);
      else if (line.trim() !== '') process.stderr.write(`${line}\n`);
    }
  });
  /** Full GC in the gateway, then its memory. */
  const measure = () => new Promise<Probe>((resolve) => {
    probeWaiter = resolve;
    gateway.kill('SIGUSR2');
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const up = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok).catch(() => false);
    if (up) break;
    if (Date.now() > deadline || gateway.exitCode !== null) throw new Error('gateway did not start');
    await sleep(250);
  }
  // A few sessions first so lazily loaded code paths are in the baseline, not in the per-connection figure.
  const warm = await Promise.all(Array.from({ length: 20 }, () => new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/audio/transcriptions/stream`, { headers: { authorization: `Bearer ${API_KEY}` } });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  })));
  for (const ws of warm) ws.close(1000);
  await sleep(3000);
  const base = await measure();
  const baselineKb = base.rss / 1024;
  console.log(`gateway pid ${pid}, idle RSS ${(baselineKb / 1024).toFixed(1)} MB`);
  const baselineFiles = await openFiles(pid);

  const url = `ws://127.0.0.1:${port}/v1/audio/transcriptions/stream?encoding=pcm_s16le&sample_rate=16000`;
  const per = Math.ceil(target / clients);
  const reports = new Map<number, ClientReport>();
  const finished = new Set<number>();
  const t0 = Date.now();
  const children = Array.from({ length: clients }, (_, i) => {
    const n = Math.min(per, target - i * per);
    const child = fork(new URL(import.meta.url).pathname, ['--client', url, String(n), String(Math.ceil(rate / clients))], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    child.on('message', (m: ClientReport) => {
      reports.set(i, m);
      if (m.type === 'done') finished.add(i);
    });
    return child;
  });
  const total = () => [...reports.values()].reduce((a, r) => ({ open: a.open + r.open, failed: a.failed + r.failed, done: finished.size }), { open: 0, failed: 0, done: 0 });
  let last = '';
  while (total().done < clients) {
    await sleep(1000);
    const t = total();
    const line = `open ${t.open}  failed ${t.failed}  gateway RSS ${Math.round((await rssKb(pid)) / 1024)} MB`;
    if (line !== last) console.log(line);
    last = line;
    if (gateway.exitCode !== null) throw new Error(`gateway exited (${gateway.exitCode})`);
  }
  const rampSeconds = (Date.now() - t0) / 1000;
  // Settle (the session starts' Kafka sends finish), then a full GC in the gateway: what the held connections cost,
  // not the ramp's garbage.
  await sleep(10_000);
  const heldProbe = await measure();
  const heldKb = heldProbe.rss / 1024;
  const held = total().open;
  const files = await openFiles(pid);
  const status = (await fetch(`http://127.0.0.1:${port}/v1/realtime/status`, { headers: { authorization: `Bearer ${API_KEY}` } }).then((r) => r.json())) as Record<string, unknown>;
  const errors: Record<string, number> = {};
  for (const r of reports.values()) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  const perConnBytes = ((heldKb - baselineKb) * 1024) / Math.max(1, held);
  const limit = total().failed === 0
    ? `none reached: all ${target} requested connections held (the machine's 20,000 open files per process bounds one gateway at about ${20_000 - baselineFiles} sockets)`
    : `failures: ${JSON.stringify(errors)}`;
  const result = {
    at: new Date().toISOString(), target, clients, rate, held, failed: total().failed, rampSeconds,
    gateway: {
      baselineRssMb: baselineKb / 1024, heldRssMb: heldKb / 1024, rssPerConnectionBytes: Math.round(perConnBytes), openFiles: files, baselineOpenFiles: baselineFiles, status,
      heapPerConnectionBytes: Math.round((heldProbe.heapUsed - base.heapUsed) / Math.max(1, held)),
      externalPerConnectionBytes: Math.round((heldProbe.external - base.external) / Math.max(1, held)),
      nativePerConnectionBytes: Math.round((heldProbe.rss - heldProbe.heapTotal - (base.rss - base.heapTotal)) / Math.max(1, held)),
      baseline: base, held: heldProbe,
    },
    sessionMessagesSeenByEngine: inputs, errors, limit,
  };
  console.log('\nidle real-time connections on one gateway process');
  console.log(`  held                 ${held} of ${target} (${total().failed} failed), ramp ${rampSeconds.toFixed(1)} s`);
  console.log(`  gateway RSS          ${(baselineKb / 1024).toFixed(1)} MB idle → ${(heldKb / 1024).toFixed(1)} MB holding them`);
  console.log(`  per connection       ${Math.round(perConnBytes)} bytes RSS (goal ≤ 4096): JS heap ${result.gateway.heapPerConnectionBytes}, outside the JS heap ${result.gateway.nativePerConnectionBytes}`);
  console.log(`  gateway open files   ${files}`);
  console.log(`  status               active ${String(status['active_sessions'])}, live engines ${String(status['live_engines'])}`);
  console.log(`  limit                ${limit}`);
  const dir = join(REPO_ROOT, 'load-tests', 'results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `idle-sockets-${result.at.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`  written              ${file}`);

  for (const c of children) c.send('exit');
  await sleep(1000);
  gateway.kill('SIGTERM');
  await new Promise((r) => gateway.once('exit', r));
  await engine.close();
  await streams.close();
}

if (process.argv[2] === '--client') {
  void clientMain(process.argv[3] ?? '', Number(process.argv[4]), Number(process.argv[5]));
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
