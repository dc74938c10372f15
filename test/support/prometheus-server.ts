/**
 * Debian's Prometheus for tests: started on a free loopback port with a temp config and storage, stopped (and its
 * directory removed) afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../infra/ports.js';

export interface PrometheusServer {
  readonly url: string;
  readonly child: ChildProcess;
  readonly dir: string;
}

export interface PrometheusOptions {
  /** e.g. '1s' or '15s'. */
  readonly scrapeInterval: string;
  readonly ruleFiles: readonly string[];
  /** Scrape jobs: name → loopback ports. `self` scrapes this Prometheus itself. */
  readonly jobs: Readonly<Record<string, readonly number[] | 'self'>>;
}

/**
 * A port chosen free can be taken before Prometheus binds it (a client connection's local port, another test
 * process): it then exits, and is started again on another port. Readiness is asked of our own Prometheus (its
 * storage path), never of whatever else answers on the port.
 */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  for (let attempt = 1; ; attempt++) {
    const started = await startOnce(options);
    if ('url' in started) return started;
    if (attempt >= 3 || !/address already in use/.test(started.log)) throw started.error;
  }
}

async function startOnce(options: PrometheusOptions): Promise<PrometheusServer | { readonly error: Error; readonly log: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'dalston-prom-'));
  const port = await freePort();
  const jobs = Object.entries(options.jobs).map(([name, ports]) => {
    const targets = ports === 'self' ? [port] : ports;
    return `  - job_name: ${name}\n    static_configs:\n      - targets: [${targets.map((p) => `"127.0.0.1:${p}"`).join(', ')}]\n`;
  }).join('');
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: ${options.scrapeInterval}\n  evaluation_interval: ${options.scrapeInterval}\n` +
      `rule_files:\n${options.ruleFiles.map((f) => `  - ${JSON.stringify(f)}\n`).join('')}scrape_configs:\n${jobs}`,
  );
  const storage = join(dir, 'data');
  const child = spawn('/usr/bin/prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${storage}`, `--web.listen-address=127.0.0.1:${port}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const ours = async (): Promise<boolean> => {
    const res = await fetch(`${url}/api/v1/status/flags`);
    const flags = (await res.json()) as { data?: Record<string, string> };
    return res.ok && flags.data?.['storage.tsdb.path'] === storage && (await fetch(`${url}/-/ready`)).ok;
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      rmSync(dir, { recursive: true, force: true });
      return { error: new Error(`prometheus exited (${child.exitCode}): ${log}`), log };
    }
    if (await ours().catch(() => false)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`prometheus not ready in 30 s: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, child, dir };
}

export async function stopPrometheus(p: PrometheusServer): Promise<void> {
  if (p.child.exitCode === null) {
    const exited = new Promise<void>((resolve) => p.child.once('exit', () => resolve()));
    p.child.kill('SIGTERM');
    const timer = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(p.dir, { recursive: true, force: true });
}
