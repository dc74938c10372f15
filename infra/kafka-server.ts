/**
 * Runs a real Apache Kafka broker for development and tests: jars resolved once from Maven Central through
 * infra/kafka/pom.xml, then one JVM in KRaft combined mode (broker + controller) on 127.0.0.1.
 *
 * The JVM never outlives us:
 * - Ctrl-C in a terminal: the JVM is spawned with `detached: false`, so it is in our process group and gets the
 *   terminal's SIGINT too; Kafka shuts down cleanly on it.
 * - Our process dies any other way (SIGKILL, SIGTERM, crash): the JVM runs under `setpriv --pdeathsig SIGTERM`
 *   (util-linux), so the kernel sends it SIGTERM, and Kafka shuts down cleanly, when its parent dies.
 * - We exit without calling stop() (process.exit, uncaught error): an 'exit' hook SIGKILLs it synchronously.
 * Where setpriv is missing only the first and last hold; a SIGKILLed parent would then orphan the broker.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { access, mkdir, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT } from '../core/config.js';
import { ConfigError, DependencyUnavailableError, TimeoutError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { createKafka, describeCluster } from '../streams/kafka-client.js';
import { isPortTaken } from './ports.js';

/** Java or Maven missing, or the broker's jars could not be resolved: an operator must act. */
export class KafkaSetupError extends ConfigError {
  override readonly code: string = 'DALSTON_ERR_KAFKA_SETUP';
}

export const KAFKA_POM = join(REPO_ROOT, 'infra', 'kafka', 'pom.xml');
const MARKER = '.complete.json';
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
const LOG_TAIL_LINES = 30;

export interface KafkaInstall {
  readonly version: string;
  readonly libDir: string;
}

export interface EnsureKafkaOptions {
  /** Cache root; jars go to `<cacheDir>/kafka-<version>/libs`. */
  readonly cacheDir: string;
  readonly log: Logger;
  /** @default infra/kafka/pom.xml */
  readonly pomPath?: string;
}

/** The Kafka version the pom pins (its `kafka.version` property). */
export async function kafkaVersionFromPom(pomPath: string = KAFKA_POM): Promise<string> {
  const pom = await readFile(pomPath, 'utf8');
  const m = /<kafka\.version>\s*([^<\s]+)\s*<\/kafka\.version>/.exec(pom);
  if (!m?.[1]) throw new KafkaSetupError(`${pomPath} has no <kafka.version> property`);
  return m[1];
}

/**
 * Resolves the broker's jars with Maven unless a complete copy for this pom is cached. Idempotent, and safe
 * when two processes race (each resolves into its own folder; the first rename wins).
 */
export async function ensureKafkaInstalled(opts: EnsureKafkaOptions): Promise<KafkaInstall> {
  const pomPath = opts.pomPath ?? KAFKA_POM;
  const version = await kafkaVersionFromPom(pomPath);
  const pomHash = createHash('sha256').update(await readFile(pomPath)).digest('hex');
  const home = resolve(opts.cacheDir, `kafka-${version}`);
  const libDir = join(home, 'libs');
  if (await isComplete(home, pomHash)) return { version, libDir };

  requireCommand('java', ['-version'], 'Java (JDK/JRE 17+) is needed to run Kafka: install openjdk-17-jre-headless');
  requireCommand('mvn', ['-v'], 'Maven is needed to fetch the Kafka jars: install maven');
  await mkdir(home, { recursive: true });
  const staging = join(home, `libs.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  opts.log.info({ version, lib_dir: libDir }, 'resolving Kafka jars with Maven (first run only)');
  const started = Date.now();
  const res = await runCapture('mvn', ['-q', '-B', '-f', pomPath, 'dependency:copy-dependencies', `-DoutputDirectory=${staging}`]);
  if (res.code !== 0) {
    await rm(staging, { recursive: true, force: true });
    const why = res.output.split('\n').find((l) => l.includes('[ERROR]'))?.replace(/^.*\[ERROR\]\s*/, '') ?? lastLine(res.output);
    throw new KafkaSetupError(`Maven could not resolve Kafka ${version} (${pomPath}): ${why}`);
  }
  const jars = (await readdir(staging)).filter((f) => f.endsWith('.jar'));
  if (!jars.some((j) => j.startsWith(`kafka_2.13-${version}`))) {
    await rm(staging, { recursive: true, force: true });
    throw new KafkaSetupError(`Maven finished but kafka_2.13-${version}.jar is missing from ${staging}`);
  }
  if (!(await isComplete(home, pomHash))) {
    await rm(libDir, { recursive: true, force: true });
    try {
      await rename(staging, libDir);
      await writeFile(join(home, MARKER), JSON.stringify({ version, pomSha256: pomHash, jars: jars.length }) + '\n');
    } catch (err) {
      // Another process won the race between our check and rename; its copy is as good as ours.
      if (!(await isComplete(home, pomHash))) throw err;
    }
  }
  await rm(staging, { recursive: true, force: true });
  opts.log.info({ version, jars: jars.length, ms: Date.now() - started }, 'Kafka jars ready');
  return { version, libDir };
}

async function isComplete(home: string, pomHash: string): Promise<boolean> {
  try {
    const marker = JSON.parse(await readFile(join(home, MARKER), 'utf8')) as { pomSha256?: unknown };
    if (marker.pomSha256 !== pomHash) return false;
    await access(join(home, 'libs'));
    return true;
  } catch {
    return false;
  }
}

export interface KafkaServerOptions {
  /** Holds server.properties, the KRaft log dirs, the cluster id and the broker log; reused on restart. */
  readonly dataDir: string;
  /** Client (PLAINTEXT) port on 127.0.0.1. */
  readonly port: number;
  /** KRaft controller port on 127.0.0.1. */
  readonly controllerPort: number;
  readonly libDir: string;
  readonly version: string;
  readonly log: Logger;
  /** JVM heap (-Xms = -Xmx). @default 768 */
  readonly heapMb?: number;
}

export interface KafkaServerHandle {
  /** Bootstrap servers for clients. */
  readonly brokers: string[];
  readonly version: string;
  readonly pid: number;
  /** Broker stdout/stderr (its log4j output). */
  readonly logFile: string;
  /** SIGTERM, up to 20 s for a clean shutdown, then SIGKILL. Resolves once the process is gone. Idempotent. */
  stop(): Promise<void>;
}

interface Layout {
  readonly root: string;
  readonly logDirs: string;
  readonly properties: string;
  readonly log4j: string;
  readonly clusterIdFile: string;
  readonly logFile: string;
}

function layout(dataDir: string): Layout {
  const root = resolve(dataDir);
  return {
    root,
    logDirs: join(root, 'kraft-logs'),
    properties: join(root, 'server.properties'),
    log4j: join(root, 'log4j2.properties'),
    clusterIdFile: join(root, 'cluster-id'),
    logFile: join(root, 'kafka.log'),
  };
}

/** Broker settings for one small machine (2 cores, 24 GiB) running everything: single replica, small logs. */
function serverProperties(l: Layout, port: number, controllerPort: number): string {
  const settings: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    // Static voters (not a formatted dynamic quorum), so the controller port may change between restarts.
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': l.logDirs,
    'auto.create.topics.enable': false,
    'delete.topic.enable': true,
    'num.partitions': 1,
    'default.replication.factor': 1,
    'min.insync.replicas': 1,
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 10,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 4,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'group.initial.rebalance.delay.ms': 0,
    // Small segments and a day of retention keep a dev/test data dir to megabytes.
    'log.segment.bytes': 16 * 1024 * 1024,
    'log.retention.hours': 24,
    'log.retention.bytes': 256 * 1024 * 1024,
    'log.retention.check.interval.ms': 60_000,
    'num.network.threads': 2,
    'num.io.threads': 4,
    'num.recovery.threads.per.data.dir': 1,
    'background.threads': 4,
  };
  return (
    '# Written by infra/kafka-server.ts on every start; edits are overwritten.\n' +
    Object.entries(settings)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join('\n') +
    '\n'
  );
}

const LOG4J2 = `# Written by infra/kafka-server.ts: broker logs go to stdout, which the launcher sends to kafka.log.
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
`;

/**
 * Starts the broker and resolves once it answers a metadata request. Throws ConfigError (one line) when Java is
 * missing or a port is taken; TimeoutError / DependencyUnavailableError with the broker log's tail when it does
 * not come up within 60 s or exits (the process is killed first).
 */
export async function startKafka(opts: KafkaServerOptions): Promise<KafkaServerHandle> {
  const heapMb = opts.heapMb ?? 768;
  if (opts.port === opts.controllerPort) throw new ConfigError(`Kafka client and controller ports must differ, both are ${opts.port}`);
  requireCommand('java', ['-version'], 'Java (JDK/JRE 17+) is needed to run Kafka: install openjdk-17-jre-headless');
  for (const [what, port] of [
    ['client', opts.port],
    ['controller', opts.controllerPort],
  ] as const) {
    if (await isPortTaken(port)) {
      throw new ConfigError(`Kafka ${what} port ${port} on 127.0.0.1 is already in use (another Kafka?); stop it or choose another port`);
    }
  }
  try {
    await access(join(opts.libDir, `kafka_2.13-${opts.version}.jar`));
  } catch {
    throw new KafkaSetupError(`Kafka ${opts.version} jars not found in ${opts.libDir}; run ensureKafkaInstalled first`);
  }

  const l = layout(opts.dataDir);
  await mkdir(l.logDirs, { recursive: true });
  await writeFile(l.properties, serverProperties(l, opts.port, opts.controllerPort));
  await writeFile(l.log4j, LOG4J2);
  const classpath = `${opts.libDir}/*`;
  // log4j's own shutdown hook would silence the broker's shutdown lines; Kafka flushes on its own.
  const jvm = ['-Djava.awt.headless=true', '-Dlog4j2.shutdownHookEnabled=false', `-Dlog4j2.configurationFile=${l.log4j}`, '-cp', classpath];
  const started = Date.now();

  await formatStorageOnce(l, jvm, opts.log);

  const args = [
    `-Xms${heapMb}m`,
    `-Xmx${heapMb}m`,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-XX:+ExitOnOutOfMemoryError',
    // Tag the command line so a leak check can find this broker by its data dir.
    `-Ddalston.kafka.data=${l.root}`,
    ...jvm,
    'kafka.Kafka',
    l.properties,
  ];
  const child = spawnJava(args, l.logFile);
  const pid = child.pid;
  if (pid === undefined) {
    const err = await new Promise<Error>((done) => child.once('error', done));
    throw new KafkaSetupError(`could not run java: ${err.message}`);
  }
  const exit = exited(child);
  // Safety net: a synchronous kill when our process exits without stop() (uncaught error, process.exit).
  const killOnExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = new AbortController();
        const clean = await Promise.race([
          exit.then(() => true),
          sleep(STOP_TIMEOUT_MS, false, { signal: timer.signal }).catch(() => false),
        ]);
        timer.abort();
        if (!clean) {
          opts.log.warn({ pid, stop_timeout_ms: STOP_TIMEOUT_MS }, 'Kafka did not stop after SIGTERM; sending SIGKILL');
          child.kill('SIGKILL');
          await exit;
        }
      }
      process.removeListener('exit', killOnExit);
      opts.log.info({ pid, exit: describeExit(child) }, 'kafka stopped');
    })();
    return stopping;
  };

  const brokers = [`127.0.0.1:${opts.port}`];
  try {
    await waitUntilReady(brokers, child, exit, opts.log);
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exit;
    process.removeListener('exit', killOnExit);
    const tail = await logTail(l.logFile);
    const head = err instanceof TimeoutError ? err.message : `Kafka exited during start-up (${describeExit(child)})`;
    const message = `${head}; last lines of ${l.logFile}:\n${tail}`;
    throw err instanceof TimeoutError ? new TimeoutError(message) : new DependencyUnavailableError(message, { cause: err });
  }
  opts.log.info({ brokers, version: opts.version, pid, start_ms: Date.now() - started, data_dir: l.root }, 'kafka started');
  child.once('exit', () => {
    if (stopping === undefined) opts.log.error({ pid, exit: describeExit(child), log_file: l.logFile }, 'kafka exited unexpectedly');
  });
  return { brokers, version: opts.version, pid, logFile: l.logFile, stop };
}

/** Formats the KRaft log dir once; the cluster id is kept in dataDir so a restart reuses the same cluster. */
async function formatStorageOnce(l: Layout, jvm: readonly string[], log: Logger): Promise<void> {
  try {
    await access(join(l.logDirs, 'meta.properties'));
    return;
  } catch {
    // not formatted yet
  }
  let clusterId: string;
  try {
    clusterId = (await readFile(l.clusterIdFile, 'utf8')).trim();
  } catch {
    clusterId = newClusterId();
    await writeFile(l.clusterIdFile, clusterId + '\n');
  }
  log.info({ cluster_id: clusterId, log_dirs: l.logDirs }, 'formatting Kafka storage');
  const res = await runCapture('java', [...jvm, 'kafka.tools.StorageTool', 'format', '--ignore-formatted', '-t', clusterId, '-c', l.properties]);
  if (res.code !== 0) {
    throw new KafkaSetupError(`kafka storage format failed (exit ${res.code}): ${lastLine(res.output)}`);
  }
}

/** A Kafka Uuid as base64url of 16 random bytes; Kafka rejects ids that start with '-'. */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function pdeathsigPrefix(): string[] {
  const ok = spawnSync('setpriv', ['--pdeathsig', 'SIGTERM', '--', 'true'], { stdio: 'ignore' }).status === 0;
  return ok ? ['setpriv', '--pdeathsig', 'SIGTERM', '--'] : [];
}

function spawnJava(args: readonly string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    const prefix = pdeathsigPrefix();
    const [cmd, ...rest] = [...prefix, 'java', ...args];
    // detached: false keeps the JVM in our process group, so a terminal's Ctrl-C reaches it as well; the
    // parent-death signal covers every other way our process can die.
    return spawn(cmd ?? 'java', rest, { stdio: ['ignore', fd, fd], detached: false });
  } finally {
    closeSync(fd);
  }
}

async function waitUntilReady(brokers: readonly string[], child: ChildProcess, exit: Promise<void>, log: Logger): Promise<void> {
  // The probe client's own connection errors are expected while the JVM boots: keep them at debug.
  const quiet: Logger = {
    debug: (f, m) => log.debug(f, m),
    info: (f, m) => log.debug(f, m),
    warn: (f, m) => log.debug(f, m),
    error: (f, m) => log.debug(f, m),
    child: () => quiet,
  };
  const kafka = createKafka({ brokers, clientId: 'dalston-kafka-probe', log: quiet, connectionTimeoutMs: 1000, requestTimeoutMs: 5000, retries: 0 });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let gone = false;
  void exit.then(() => {
    gone = true;
  });
  for (;;) {
    if (gone) throw new DependencyUnavailableError(`Kafka exited during start-up (${describeExit(child)})`);
    try {
      await describeCluster(kafka);
      return;
    } catch {
      if (Date.now() > deadline) throw new TimeoutError(`Kafka did not answer metadata requests on ${brokers.join(',')} within ${READY_TIMEOUT_MS / 1000} s`);
      await sleep(200);
    }
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => child.once('exit', () => done()));
}

function describeExit(child: ChildProcess): string {
  if (child.signalCode !== null) return `signal ${child.signalCode}`;
  if (child.exitCode !== null) return `exit code ${child.exitCode}`;
  return 'still running';
}

async function logTail(path: string): Promise<string> {
  try {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - 64 * 1024);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      return buf.toString('utf8').trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
    } finally {
      await fh.close();
    }
  } catch {
    return '(no broker log)';
  }
}

function requireCommand(cmd: string, args: readonly string[], hint: string): void {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  if (r.error) throw new KafkaSetupError(`${cmd} not found on PATH. ${hint}`);
}

function runCapture(cmd: string, args: readonly string[]): Promise<{ code: number; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer): void => {
      // Only the end matters for error messages; keep memory bounded.
      output = (output + d.toString('utf8')).slice(-256 * 1024);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', (err) => fail(new KafkaSetupError(`could not run ${cmd}: ${err.message}`)));
    child.once('close', (code) => done({ code: code ?? 1, output }));
  });
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter((x) => x.trim() !== '');
  return lines[lines.length - 1]?.trim() ?? '(no output)';
}
