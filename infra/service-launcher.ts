/**
 * Starts Dalston's own processes (gateway, actor host, engines) as children, each with the telemetry preloads,
 * its JSON log in a file, and a health check to wait on. Used by `./dalston up` and by end-to-end tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { REPO_ROOT } from '../core/config.js';
import { SERVICE } from '../core/observability-names.js';
import { SetupError } from './errors.js';
import { freePort } from './ports.js';

export type ServiceKind = 'gateway' | 'actors' | 'engine' | 'realtime' | 'webhooks';

export interface ServiceSpec {
  /** Unique name: log file and messages. */
  readonly name: string;
  readonly kind: ServiceKind;
  readonly port: number;
  /** For engines. */
  readonly engineId?: string;
  /** Extra environment for this process only. */
  readonly env?: Readonly<Record<string, string>>;
}

const ENTRY: Record<ServiceKind, string> = { gateway: 'gateway/main.js', actors: 'actors/main.js', engine: 'engines/main.js', realtime: 'engines/realtime/main.js', webhooks: 'webhooks/main.js' };
const PORT_VAR: Record<ServiceKind, string> = { gateway: 'DALSTON_GATEWAY_PORT', actors: 'DALSTON_ACTORS_PORT', engine: 'DALSTON_ENGINE_PORT', realtime: 'DALSTON_REALTIME_ENGINE_PORT', webhooks: 'DALSTON_WEBHOOKS_PORT' };
const SERVICE_NAME: Record<ServiceKind, string> = { gateway: SERVICE.gateway, actors: SERVICE.orchestrator, engine: SERVICE.engine, realtime: SERVICE.realtime, webhooks: SERVICE.webhooks };

export class ServiceProcess {
  readonly exited: Promise<number | null>;
  #exitCode: number | null | undefined;

  /** The certificate a gateway serves HTTPS with (then /health is probed over https, trusting it). */
  readonly #tlsCertFile: string | undefined;

  constructor(readonly spec: ServiceSpec, readonly child: ChildProcess, readonly logFile: string, tlsCertFile?: string) {
    this.#tlsCertFile = tlsCertFile;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      this.#exitCode = code ?? (signal ? null : 0);
      resolve(this.#exitCode);
    }));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.#exitCode === undefined;
  }

  /** Polls GET /health until it answers 200; fails early if the process exits. */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new SetupError(`${this.spec.name} exited during start-up (code ${String(this.#exitCode)}); see ${this.logFile}`);
      try {
        if (await this.#healthy()) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new SetupError(`${this.spec.name} did not answer /health on port ${this.spec.port} within ${timeoutMs} ms; see ${this.logFile}`);
  }

  /**
   * /health answers 200 with our child's pid. Another process may answer on the port (it took the port between its
   * choice and our child's bind): that is not our service, which will exit for want of its port.
   */
  async #healthy(): Promise<boolean> {
    const { status, body } = await this.#health();
    if (status !== 200) return false;
    const answer = JSON.parse(body) as { pid?: unknown };
    return answer.pid === this.pid;
  }

  async #health(): Promise<{ status: number; body: string }> {
    if (this.#tlsCertFile === undefined) {
      const res = await fetch(`http://127.0.0.1:${this.spec.port}/health`, { signal: AbortSignal.timeout(1000) });
      return { status: res.status, body: await res.text() };
    }
    const ca = readFileSync(this.#tlsCertFile);
    return new Promise((resolve, reject) => {
      const req = httpsGet({ host: '127.0.0.1', port: this.spec.port, path: '/health', ca, timeout: 1000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
  }

  /** True when the process exited because its port was taken. */
  lostItsPort(): boolean {
    if (this.running) return false;
    try {
      return /EADDRINUSE|address (already )?in use/.test(readFileSync(this.logFile, 'utf8').slice(-20_000));
    } catch {
      return false;
    }
  }

  /** SIGTERM (drain), then SIGKILL after timeoutMs. Resolves when the process is gone. */
  async stop(timeoutMs = 30_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL now: crash tests. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * Launches a service on a free loopback port and waits until it is healthy. A port chosen free can be taken before
 * the child binds it (by a client connection's local port, or another test process): the child then exits, and it
 * is launched again on another port. For tests and benches; `./dalston up` uses configured ports and fails instead.
 */
export async function launchOnFreePort(
  spec: Omit<ServiceSpec, 'port'>, options: LaunchOptions, timeoutMs: number, pickPort: () => Promise<number> = () => freePort(),
): Promise<ServiceProcess> {
  for (let attempt = 1; ; attempt++) {
    const svc = launchService({ ...spec, port: await pickPort() }, options);
    try {
      await svc.waitHealthy(timeoutMs);
      return svc;
    } catch (err) {
      await svc.kill();
      if (attempt >= 3 || !svc.lostItsPort()) throw err;
    }
  }
}

/** Safety net: if our process exits without stopping its children, they must not outlive it (one hook for all). */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

export interface LaunchOptions {
  /** DALSTON_* settings shared by every process (brokers, ClickHouse, prefix, home, key). */
  readonly env: Readonly<Record<string, string>>;
  readonly logDir: string;
}

export function launchService(spec: ServiceSpec, options: LaunchOptions): ServiceProcess {
  mkdirSync(options.logDir, { recursive: true });
  const logFile = join(options.logDir, `${spec.name}.log`);
  const fd = openSync(logFile, 'a');
  const dist = join(REPO_ROOT, 'dist');
  const child = spawn(
    process.execPath,
    [
      '--enable-source-maps',
      '--import', join(dist, 'core/telemetry/register-hooks.js'),
      '--import', join(dist, 'core/telemetry/start-telemetry.js'),
      join(dist, ENTRY[spec.kind]),
    ],
    {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        ...options.env,
        ...spec.env,
        [PORT_VAR[spec.kind]]: String(spec.port),
        DALSTON_SERVICE_NAME: SERVICE_NAME[spec.kind],
        ...(spec.engineId ? { DALSTON_ENGINE_ID: spec.engineId } : {}),
      },
      stdio: ['ignore', fd, fd],
    },
  );
  closeSync(fd);
  live.add(child);
  child.once('exit', () => live.delete(child));
  // The child's own environment decides whether it serves TLS (`./dalston up` passes the shell's through).
  const tlsCertFile = spec.env?.['DALSTON_TLS_CERT_FILE'] ?? options.env['DALSTON_TLS_CERT_FILE'] ?? process.env['DALSTON_TLS_CERT_FILE'];
  return new ServiceProcess(spec, child, logFile, spec.kind === 'gateway' && tlsCertFile ? tlsCertFile : undefined);
}
