/**
 * `./dalston up` as a user runs it: it brings the whole stack up (real Kafka and ClickHouse under its own
 * DALSTON_HOME), /health answers, Ctrl-C (SIGINT) stops everything and leaves no process behind. And a taken
 * port ends set-up with one clear error line, not a stack trace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../core/config.js';
import { freePortPair } from '../../infra/ports.js';
import { processesMentioning } from '../../harness/kafka-fixture.js';
import { synthesizeFile } from '../../harness/speech-fixtures.js';

/** A fresh DALSTON_HOME that shares the checkout's caches and models (installing them again would only cost time). */
async function freshHome(tag: string): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), tag));
  const shared = process.env['DALSTON_HOME'] ?? join(REPO_ROOT, '.dalston');
  await symlink(join(shared, 'cache'), join(home, 'cache'));
  await symlink(join(shared, 'models'), join(home, 'models'));
  return home;
}

/** Runs a command to completion; resolves with its stdout, rejects with its stderr on a non-zero exit. */
function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, [...args], { cwd: REPO_ROOT, env, timeout: 120_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}

/** Distinct pairs (p, p+1) outside the ephemeral range: Kafka and ClickHouse also take the port after theirs. */
async function ports(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) {
    const p = await freePortPair();
    if (![...out].some((q) => Math.abs(q - p) < 2)) out.add(p);
  }
  return [...out];
}

function cliEnv(home: string, p: number[]): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('DALSTON_')) delete env[k];
  return {
    ...env,
    DALSTON_HOME: home,
    DALSTON_GATEWAY_PORT: String(p[0]), DALSTON_ACTORS_PORT: String(p[1]), DALSTON_ENGINE_PORT: String(p[2]),
    DALSTON_REALTIME_ENGINE_PORT: String(p[3]), DALSTON_SUPERVISOR_PORT: String(p[4]),
    DALSTON_KAFKA_PORT: String(p[5]), DALSTON_CLICKHOUSE_PORT: String(p[6]),
    ...(p[7] !== undefined ? { DALSTON_WEBHOOKS_PORT: String(p[7]) } : {}),
  };
}

interface JobBody {
  status: string;
  stages: { stage: string; status: string; engine_id: string; retries: number }[];
}

async function pidOf(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
  return ((await res.json()) as { pid: number }).pid;
}

/** Waits until the service on `port` answers /health with a pid other than `old` (it was restarted). */
async function restarted(port: number, old: number, timeoutMs = 90_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const pid = await pidOf(port).catch(() => undefined);
    if (pid !== undefined && pid !== old) return pid;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the service on port ${port} did not come back within ${timeoutMs} ms`);
}

test('./dalston up: health answers; a SIGKILLed actor host and engine are restarted mid-job, the job completes once and the gateway never stops answering; Ctrl-C stops everything', { timeout: 360_000 }, async (t) => {
  const home = await freshHome('dalston-up-');
  const p = await ports(8);
  const [gatewayPort = 0, actorsPort = 0, enginePort0 = 0, , supervisorPort = 0, , clickhousePort = 0, webhooksPort = 0] = p;
  // Every engine task takes 5 s more, so the job is still running when its processes are killed.
  // Beats every second: the killed engine's task is presumed lost after 3 s instead of 15.
  const env = {
    ...cliEnv(home, p), DALSTON_FAULT_INJECTION: 'slow:5000', DALSTON_ENGINE_HEARTBEAT_SECONDS: '1',
    DALSTON_ENGINES: 'audio-prepare,stt-batch-transcribe-onnx-moonshine-tiny,merge',
  };
  const child = spawn(join(REPO_ROOT, 'dalston'), ['up'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  /** The gateway prober's loop runs while this is true; a failed assertion must stop it too (finally below). */
  let probing = false;
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 180_000;
    while (!out.includes('Dalston is up') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 200));
    assert.ok(out.includes('Dalston is up'), `up did not finish:\n${out}`);
    const health = await fetch(`http://127.0.0.1:${p[0]}/health`);
    assert.equal(health.status, 200);
    const ready = await fetch(`http://127.0.0.1:${p[0]}/ready`);
    assert.equal(ready.status, 200, await ready.text());
    for (const port of [p[1], p[2], webhooksPort]) assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
    assert.ok(processesMentioning(home).length >= 2, 'Kafka and ClickHouse run with data under DALSTON_HOME');
    t.diagnostic(out.split('\n').filter((l) => /Kafka|ClickHouse|API:/.test(l)).join(' | '));

    // Issue 10: `./dalston keys` issues a tenant's key into the running stack (shown once), lists and revokes it.
    const created1 = await run(join(REPO_ROOT, 'dalston'), ['keys', 'create', '--tenant', 'cli-tenant', '--scopes', 'jobs:read', '--name', 'from the CLI'], env);
    const issued = JSON.parse(created1) as { id: string; key: string; tenant: string; scopes: string[]; status: string };
    assert.equal(issued.tenant, 'cli-tenant');
    assert.deepEqual(issued.scopes, ['jobs:read']);
    assert.match(issued.key, /^dk_[0-9a-f]{16}_/);
    const asKey = { authorization: `Bearer ${issued.key}` };
    const listJobs = `http://127.0.0.1:${gatewayPort}/v1/audio/transcriptions`;
    assert.equal((await fetch(listJobs, { headers: asKey })).status, 200, 'the new key works on the gateway at once');
    assert.equal((await fetch(listJobs, { method: 'POST', headers: asKey })).status, 403, 'within its scopes only');
    const cli = join(REPO_ROOT, 'dist', 'cli', 'main.js');
    await run(process.execPath, [cli, 'keys', 'revoke', issued.id], env);
    let refusedAfter = -1;
    for (const t0 = Date.now(); Date.now() - t0 < 2000; await new Promise((r) => setTimeout(r, 20))) {
      if ((await fetch(listJobs, { headers: asKey })).status === 401) {
        refusedAfter = Date.now() - t0;
        break;
      }
    }
    assert.ok(refusedAfter >= 0, 'revoked: refused by the gateway within 2 s');
    const listed = JSON.parse(await run(process.execPath, [cli, 'keys', 'list', '--tenant', 'cli-tenant'], env)) as { data: { id: string; status: string }[] };
    assert.deepEqual(listed.data.map((k) => [k.id, k.status]), [[issued.id, 'revoked']]);
    assert.equal(listed.data.some((k) => 'key' in k), false, 'a listing never shows the key');

    // Issue 11, defect 17: the supervisor restarts crashed services instead of stopping the stack.
    const key = /API key:\s+(\S+)/.exec(out)?.[1] ?? '';
    const api = `http://127.0.0.1:${gatewayPort}/v1/audio/transcriptions`;
    const auth = { authorization: `Bearer ${key}` };
    let probes = 0;
    const failedProbes: string[] = [];
    probing = true;
    const prober = (async () => {
      while (probing) {
        probes++;
        const status = await fetch(`http://127.0.0.1:${gatewayPort}/health`, { signal: AbortSignal.timeout(2000) }).then((r) => String(r.status), (e: unknown) => String(e));
        if (status !== '200') failedProbes.push(status);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const fd = new FormData();
    fd.append('file', new Blob([await readFile(await synthesizeFile('the supervisor brings the actor host back'))], { type: 'audio/wav' }), 'speech.wav');
    const created = await fetch(api, { method: 'POST', headers: auth, body: fd });
    assert.equal(created.status, 201, await created.clone().text());
    const jobId = ((await created.json()) as { id: string }).id;
    const job = async (): Promise<JobBody> => (await (await fetch(`${api}/${jobId}`, { headers: auth })).json()) as JobBody;

    // Killed at once (the job waits in Kafka for the new host); the engine is killed as soon as its task runs,
    // whether or not the restarted actor host answers /health yet (its consumer groups take a while to rebalance).
    const actorsPid = await pidOf(actorsPort);
    process.kill(actorsPid, 'SIGKILL');
    t.diagnostic(`actor host ${actorsPid} SIGKILLed with job ${jobId} ${(await job()).status}`);
    // The engine's own log says when it took the task (the job's rows reach ClickHouse only once the restarted host
    // has rejoined all its groups, which can be after the task ended).
    const engineLog = join(home, 'logs', 'engine-stt-batch-transcribe-onnx-moonshine-tiny.log');
    const transcribing = async (): Promise<boolean> => (await readFile(engineLog, 'utf8').catch(() => ''))
      .split('\n').some((l) => l.includes('"task started"') && l.includes(jobId));
    const runDeadline = Date.now() + 120_000;
    while (!(await transcribing()) && Date.now() < runDeadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(await transcribing(), 'the transcribe task runs under the restarted actor host');
    const enginePort = enginePort0 + 1; // DALSTON_ENGINES order: audio-prepare, the transcribe engine, merge
    const enginePid = await pidOf(enginePort);
    process.kill(enginePid, 'SIGKILL');
    const [actorsPid2, enginePid2] = await Promise.all([restarted(actorsPort, actorsPid), restarted(enginePort, enginePid)]);
    t.diagnostic(`transcribe engine ${enginePid} SIGKILLed mid-task; back as ${enginePid2}; actor host back as ${actorsPid2}`);

    let final = await job();
    const end = Date.now() + 120_000;
    while (!['completed', 'failed', 'cancelled'].includes(final.status) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 500));
      final = await job();
    }
    assert.equal(final.status, 'completed', JSON.stringify(final));
    const completions = async (): Promise<number> => {
      const q = `SELECT count() FROM dalston.audit_events WHERE job_id = '${jobId}' AND event_type = 'job.completed' FORMAT TSV`;
      return Number((await (await fetch(`http://127.0.0.1:${clickhousePort}/?query=${encodeURIComponent(q)}`)).text()).trim());
    };
    const sinkDeadline = Date.now() + 30_000;
    while ((await completions()) === 0 && Date.now() < sinkDeadline) await new Promise((r) => setTimeout(r, 300));
    await new Promise((r) => setTimeout(r, 3000)); // a duplicate, if one were produced, lands in the same batches
    assert.equal(await completions(), 1, 'the job completed exactly once');
    probing = false;
    await prober;
    assert.ok(probes > 50, `the gateway was probed throughout (${probes} probes)`);
    assert.deepEqual(failedProbes, [], 'the gateway answered /health 200 throughout');
    const metrics = await (await fetch(`http://127.0.0.1:${supervisorPort}/metrics`)).text();
    assert.match(metrics, /dalston_supervisor_restarts_total\{service="actors"\} 1/);
    assert.match(metrics, /dalston_supervisor_restarts_total\{service="engine-stt-batch-transcribe-onnx-moonshine-tiny"\} 1/);
    assert.match(out, /a service exited unexpectedly; restarting it/);
    t.diagnostic(`job ${jobId} completed once; ${probes} gateway probes, all 200; stages ${JSON.stringify(final.stages.map((s) => [s.stage, s.retries]))}`);
  } finally {
    probing = false;
    child.kill('SIGINT');
  }
  const code = await exited;
  assert.equal(code, 0, `clean exit after Ctrl-C:\n${out.slice(-2000)}`);
  // Give the kernel a moment to reap, then nothing that mentions this home (Kafka, ClickHouse, services) may remain.
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(processesMentioning(home), [], 'no process left behind');
  assert.deepEqual(processesMentioning(`DALSTON_GATEWAY_PORT=${p[0]}`), []);
  await rm(home, { recursive: true, force: true });
});

test('a taken port ends set-up with one clear error line', async () => {
  const home = await freshHome('dalston-up-busy-');
  const p = await ports(7);
  const blocker = createServer().listen(p[0], '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  try {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/cli/main.js'), 'up'], { cwd: REPO_ROOT, env: cliEnv(home, p), stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 1);
    const lines = err.trim().split('\n');
    assert.equal(lines.length, 1, `one line, got:\n${err}`);
    assert.match(lines[0] ?? '', new RegExp(`^dalston: port ${p[0]} \\(gateway\\) is already in use`));
    assert.doesNotMatch(err, /\n\s+at /, 'no stack trace');
  } finally {
    blocker.close();
    await rm(home, { recursive: true, force: true });
  }
});
