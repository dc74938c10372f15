/**
 * Issue 11, defect 18: the compose deployment's Kafka settings, run for real. The broker is Apache Kafka from the
 * run's Maven jars, started with compose/kafka/server.properties (only addresses and the data directory changed for
 * this machine) and formatted with the SCRAM user exactly as compose/kafka/start-sasl.sh does. Dalston's own Kafka
 * client (streams/) with DALSTON_KAFKA_SASL_MECHANISM=scram-sha-512 connects, creates a topic and round-trips a
 * message; a client without credentials, or with a wrong password, gets nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, loadConfig, kafkaSasl } from '../../core/config.js';
import { ConfigError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { ensureKafkaInstalled } from '../../infra/kafka-server.js';
import { freePortPair } from '../../infra/ports.js';
import { createKafka } from '../../streams/kafka-client.js';

const USER = 'dalston';
const PASSWORD = `test-${randomUUID().replace(/-/g, '')}`;

let dir = '';
let broker: ChildProcess | undefined;
let bootstrap = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dalston-kafka-sasl-'));
  const { libDir } = await ensureKafkaInstalled({ cacheDir: join(REPO_ROOT, '.dalston', 'cache'), log: silentLogger });
  const port = await freePortPair();
  bootstrap = `127.0.0.1:${port}`;
  // The compose file's properties, with this machine's addresses: what is tested is its security settings.
  const template = await readFile(join(REPO_ROOT, 'compose', 'kafka', 'server.properties'), 'utf8');
  const props = template
    .replaceAll('@KAFKA_USER@', USER).replaceAll('@KAFKA_PASSWORD@', PASSWORD)
    .replace('listeners=SASL_PLAINTEXT://:9092,CONTROLLER://localhost:9093', `listeners=SASL_PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${port + 1}`)
    .replace('advertised.listeners=SASL_PLAINTEXT://kafka:9092', `advertised.listeners=SASL_PLAINTEXT://${bootstrap}`)
    .replace('controller.quorum.voters=1@localhost:9093', `controller.quorum.voters=1@127.0.0.1:${port + 1}`)
    .replace('log.dirs=/var/lib/kafka/data', `log.dirs=${join(dir, 'data')}`);
  assert.match(props, new RegExp(`listeners=SASL_PLAINTEXT://127.0.0.1:${port},`), 'the template still has the listeners line this test rewrites');
  const propsFile = join(dir, 'server.properties');
  await writeFile(propsFile, props);
  const jvm = ['-Xmx384m', '-Xms384m', '-cp', `${libDir}/*`];
  // As start-sasl.sh: format once with the SCRAM user, then start.
  const format = spawnSync('java', [...jvm, 'kafka.tools.StorageTool', 'format', '--ignore-formatted', '-t', randomUUID().replace(/-/g, '').slice(0, 22), '-c', propsFile,
    '--add-scram', `SCRAM-SHA-512=[name=${USER},password=${PASSWORD}]`], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(format.status, 0, `${format.stdout}${format.stderr}`);
  broker = spawn('java', [...jvm, 'kafka.Kafka', propsFile], { stdio: 'ignore' });
});

after(async () => {
  if (broker && broker.exitCode === null) {
    broker.kill('SIGKILL');
    await new Promise((r) => broker?.once('exit', r));
  }
  await rm(dir, { recursive: true, force: true });
});

/** Dalston's client as a service configured by the compose file gets it (core/config → streams/). */
function client(env: Record<string, string>) {
  const config = loadConfig({ DALSTON_HOME: dir, ...env });
  return createKafka({ brokers: [bootstrap], clientId: 'sasl-test', log: silentLogger, sasl: kafkaSasl(config), retries: 0, connectionTimeoutMs: 3000, requestTimeoutMs: 5000 });
}
const scram = (password: string) => ({ DALSTON_KAFKA_SASL_MECHANISM: 'scram-sha-512', DALSTON_KAFKA_USERNAME: USER, DALSTON_KAFKA_PASSWORD: password });

void test('with the compose credentials Dalston\'s client authenticates (SCRAM-SHA-512), creates a topic and round-trips a message', { timeout: 120_000 }, async () => {
  const kafka = client(scram(PASSWORD));
  const admin = kafka.admin();
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      await admin.connect();
      await admin.describeCluster();
      break;
    } catch (err) {
      await admin.disconnect().catch(() => undefined);
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  await admin.createTopics({ topics: [{ topic: 'sasl-check', numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic: 'sasl-check', messages: [{ key: 'k', value: 'authenticated' }] });
  await producer.disconnect();
  const offsets = await admin.fetchTopicOffsets('sasl-check');
  assert.equal(offsets[0]?.high, '1', 'the message was written');
  await admin.disconnect();
});

void test('without credentials, or with a wrong password, the broker gives nothing', { timeout: 60_000 }, async () => {
  for (const [what, env] of [['no SASL', {}], ['a wrong password', scram('wrong-password-123')]] as const) {
    const admin = client(env).admin();
    await assert.rejects(async () => {
      await admin.connect();
      await admin.listTopics();
    }, `${what} is refused`);
    await admin.disconnect().catch(() => undefined);
  }
});

void test('a SASL mechanism without a user and password stops the process at start-up', () => {
  assert.throws(() => loadConfig({ DALSTON_KAFKA_SASL_MECHANISM: 'scram-sha-512', DALSTON_KAFKA_USERNAME: USER }),
    (e: unknown) => e instanceof ConfigError && /DALSTON_KAFKA_SASL_MECHANISM=scram-sha-512 needs DALSTON_KAFKA_USERNAME and DALSTON_KAFKA_PASSWORD/.test(e.message));
  assert.equal(kafkaSasl(loadConfig({})), undefined, 'no SASL by default (./dalston up, loopback)');
});
