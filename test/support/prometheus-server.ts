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

export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
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
  const child = spawn('/usr/bin/prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${log}`);
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
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
