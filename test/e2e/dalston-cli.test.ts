/**
 * `./dalston up` as a user runs it: it brings the whole stack up (real Kafka and ClickHouse under its own
 * DALSTON_HOME), /health answers, Ctrl-C (SIGINT) stops everything and leaves no process behind. And a taken
 * port ends set-up with one clear error line, not a stack trace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../core/config.js';
import { freePortPair } from '../../infra/ports.js';
import { processesMentioning } from '../integration/kafka-fixture.js';

/** A fresh DALSTON_HOME that shares the checkout's caches and models (installing them again would only cost time). */
async function freshHome(tag: string): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), tag));
  const shared = process.env['DALSTON_HOME'] ?? join(REPO_ROOT, '.dalston');
  await symlink(join(shared, 'cache'), join(home, 'cache'));
  await symlink(join(shared, 'models'), join(home, 'models'));
  return home;
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
    DALSTON_KAFKA_PORT: String(p[5]), DALSTON_CLICKHOUSE_PORT: String(p[6]),
  };
}

test('./dalston up: health answers, Ctrl-C stops everything, no process left behind', { timeout: 240_000 }, async (t) => {
  const home = await freshHome('dalston-up-');
  const p = await ports(7);
  const child = spawn(join(REPO_ROOT, 'dalston'), ['up'], { cwd: REPO_ROOT, env: cliEnv(home, p), stdio: ['ignore', 'pipe', 'pipe'] });
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
    for (const port of [p[1], p[2]]) assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
    assert.ok(processesMentioning(home).length >= 2, 'Kafka and ClickHouse run with data under DALSTON_HOME');
    t.diagnostic(out.split('\n').filter((l) => /Kafka|ClickHouse|API:/.test(l)).join(' | '));
  } finally {
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
