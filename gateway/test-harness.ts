/**
 * A gateway on an ephemeral loopback port with in-memory ports, a real filesystem artifact store in a temporary
 * directory and a log recorder: shared by the gateway's unit tests.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { ManualClock } from '../core/clock.js';
import type { LogFields, Logger } from '../core/logger.js';
import { FsArtifactStore } from '../storage/index.js';
import { createGatewayApp, type GatewayApp, type GatewayDeps } from './gateway-app.js';
import { InMemoryJobReader, RecordingPublisher } from './memory-ports.js';
import { accessOf } from './route-access.js';

export const TEST_API_KEY = 'dk_test_0123456789abcdef';

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

/** A Logger that keeps every line (bindings merged into fields) for assertions. */
export function recordingLogger(lines: LogLine[], bindings: LogFields = {}): Logger {
  const at = (level: LogLine['level']) => (fields: LogFields, msg: string) => {
    lines.push({ level, msg, fields: { ...bindings, ...fields } });
  };
  return {
    debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'),
    child: (more) => recordingLogger(lines, { ...bindings, ...more }),
  };
}

export interface Harness {
  readonly app: GatewayApp;
  readonly base: string;
  readonly store: FsArtifactStore;
  readonly reader: InMemoryJobReader;
  readonly publisher: RecordingPublisher;
  readonly registry: Registry;
  readonly clock: ManualClock;
  readonly logs: LogLine[];
  readonly dir: string;
  /** fetch against the gateway with the test key unless `auth: false`. */
  request(path: string, init?: RequestInit & { auth?: boolean }): Promise<Response>;
  /** Every file under the artifact store's root, partial ones (`.tmp`) included, relative to it. */
  storedFiles(): Promise<string[]>;
  /** Closes the gateway (in-flight requests get `graceMs`) and removes the temporary directory. */
  close(graceMs?: number): Promise<void>;
}

export interface HarnessOptions extends Partial<Pick<GatewayDeps, 'renderers' | 'readinessChecks' | 'admission' | 'keys' | 'limiter'>> {
  uploadMaxBytes?: number;
  /** DALSTON_URL_ALLOW_HOSTS. @default none */
  urlAllowHosts?: readonly string[];
  /** DALSTON_URL_FETCH_TIMEOUT_SECONDS. @default 300 */
  urlFetchTimeoutSeconds?: number;
  /** Serve HTTPS/WSS with these PEM files (then `base` is https://). */
  tls?: { certFile: string; keyFile: string };
  /** DALSTON_BODY_IDLE_TIMEOUT_SECONDS. @default 60 */
  bodyIdleTimeoutSeconds?: number;
  /** Data directory of the installed models: GET /v1/models, and jobs for models not installed there are refused. */
  modelsHomeDir?: string;
  /** DALSTON_TRANSCRIBE_ENGINE (the default model), with modelsHomeDir. */
  transcribeEngine?: string;
  /** A logger of the test's own (then `logs` stays empty). @default a recorder into `logs` */
  log?: Logger;
}

export async function startHarness(overrides: HarnessOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'dalston-gw-'));
  const artifacts = join(dir, 'artifacts');
  await mkdir(artifacts);
  const store = new FsArtifactStore(artifacts);
  const reader = new InMemoryJobReader();
  const publisher = new RecordingPublisher();
  const registry = new Registry();
  const clock = new ManualClock(Date.UTC(2026, 10, 28, 10, 0, 0));
  const logs: LogLine[] = [];
  const app = createGatewayApp({
    config: {
      apiKey: TEST_API_KEY, uploadMaxBytes: overrides.uploadMaxBytes ?? 10 * 1024 * 1024,
      ...(overrides.urlAllowHosts ? { urlAllowHosts: overrides.urlAllowHosts } : {}),
      ...(overrides.urlFetchTimeoutSeconds ? { urlFetchTimeoutSeconds: overrides.urlFetchTimeoutSeconds } : {}),
      ...(overrides.tls ? { tlsCertFile: overrides.tls.certFile, tlsKeyFile: overrides.tls.keyFile } : {}),
      ...(overrides.bodyIdleTimeoutSeconds !== undefined ? { bodyIdleTimeoutSeconds: overrides.bodyIdleTimeoutSeconds } : {}),
      ...(overrides.transcribeEngine !== undefined ? { transcribeEngine: overrides.transcribeEngine } : {}),
    },
    ...(overrides.modelsHomeDir !== undefined ? { modelsHomeDir: overrides.modelsHomeDir } : {}),
    log: overrides.log ?? recordingLogger(logs),
    registry, publisher, reader, store, clock,
    // Routes a test adds of its own (under /v1/test/) take any key; every product route keeps its table entry.
    routeAccess: (method, template) => (template.startsWith('/v1/test/') ? 'any' : accessOf(method, template)),
    ...(overrides.keys ? { keys: overrides.keys } : {}),
    ...(overrides.limiter ? { limiter: overrides.limiter } : {}),
    readinessChecks: overrides.readinessChecks ?? { kafka: async () => undefined },
    ...(overrides.renderers ? { renderers: overrides.renderers } : {}),
    ...(overrides.admission ? { admission: overrides.admission } : {}),
  });
  const port = await app.listen(0, '127.0.0.1');
  const base = `${overrides.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  return {
    app, base, store, reader, publisher, registry, clock, logs, dir,
    request(path, init = {}) {
      const { auth = true, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (auth && !headers.has('authorization')) headers.set('authorization', `Bearer ${TEST_API_KEY}`);
      return fetch(`${base}${path}`, { ...rest, headers });
    },
    storedFiles: async () => (await readdir(artifacts, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile()).map((e) => relative(artifacts, join(e.parentPath, e.name))).sort(),
    async close(graceMs = 200) {
      await app.close(graceMs);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A real WAV made by sox: `seconds` of a 440 Hz sine, 16 kHz mono 16-bit. */
export async function makeWav(dir: string, seconds = 1): Promise<string> {
  const path = join(dir, `sine-${seconds}.wav`);
  await promisify(execFile)('sox', ['-n', '-r', '16000', '-c', '1', '-b', '16', path, 'synth', String(seconds), 'sine', '440']);
  return path;
}

/**
 * Retries an assertion until it passes or `ms` elapse: the request's metrics, log line and span end when the
 * response closes on the server, which can be a moment after the client has read the body.
 */
export async function eventually<T>(check: () => T, ms = 2000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
