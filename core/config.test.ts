import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './errors.js';
import { REPO_ROOT, VARIABLES, loadConfig, type DalstonConfig } from './config.js';
import { parseFaultPlan } from '../engines/runtime/fault-injection.js';
import { resolveGatewayId } from '../gateway/realtime/gateway-id.js';
import { parseTenantLimits } from '../gateway/limits/tenant-limits.js';

type Key = keyof typeof VARIABLES;

/** One row per variable: what it parses to by default, one valid value, and values start-up must refuse. */
interface Case {
  /** The parsed default, written out here so a changed default (or parser) fails this test, not only the README check. */
  readonly default: unknown;
  /** A valid value other than the default, and what it parses to. */
  readonly valid: readonly [raw: string, parsed: unknown];
  /** Other variables the valid value needs (a certificate needs its key). */
  readonly with?: Readonly<Record<string, string>>;
  /**
   * Values refused at start-up with an error whose message starts with the variable's name; or, for free text that
   * has no invalid value, the reason why.
   */
  readonly invalid: readonly string[] | { readonly freeText: string };
  /**
   * The start-up check that refuses `invalid`, when it is made by the process that reads the variable rather than by
   * loadConfig (the grammar belongs to that process's room).
   */
  readonly checkedBy?: (config: DalstonConfig) => unknown;
}

const here = new URL(import.meta.url).pathname; // any readable file serves as a certificate for the check
const port = (def: number, valid: number): Case => ({ default: def, valid: [String(valid), valid], invalid: ['eighty', '65536', '-1', '80.5'] });
const FREE = (why: string) => ({ freeText: why });

/** Typed by key: a variable added to VARIABLES without a row here does not compile (and the test below also checks). */
const CASES: { readonly [K in Key]: Case } = {
  home: { default: '.dalston', valid: ['/srv/dalston data', '/srv/dalston data'], invalid: FREE('any path') },
  kafkaBrokers: { default: ['127.0.0.1:9092'], valid: ['k1:9092, k2:19092', ['k1:9092', 'k2:19092']], invalid: ['no-port', 'host:port', 'a:1:2', ','] },
  kafkaPort: port(9092, 19092),
  topicPrefix: { default: 'dalston.', valid: ['stack-2.', 'stack-2.'], invalid: ['has space', 'a/b'] },
  clickhouseUrl: { default: 'http://127.0.0.1:8123', valid: ['https://ch.example:8443/', 'https://ch.example:8443'], invalid: ['ftp://ch:21', '127.0.0.1:8123', 'not a url'] },
  clickhouseUser: { default: 'default', valid: ['dalston_rw', 'dalston_rw'], invalid: FREE('any user name') },
  clickhousePassword: { default: undefined, valid: ['p@ss word', 'p@ss word'], invalid: FREE('any password') },
  kafkaSaslMechanism: {
    default: 'none', valid: ['scram-sha-512', 'scram-sha-512'], with: { DALSTON_KAFKA_USERNAME: 'u', DALSTON_KAFKA_PASSWORD: 'p' },
    // 'plain' is a mechanism, but without DALSTON_KAFKA_USERNAME/PASSWORD it is refused, naming this variable.
    invalid: ['SCRAM-SHA-512', 'gssapi', 'plain'],
  },
  kafkaUsername: { default: undefined, valid: ['svc', 'svc'], invalid: FREE('any user name') },
  kafkaPassword: { default: undefined, valid: ['pw', 'pw'], invalid: FREE('any password') },
  clickhouseDatabase: { default: 'dalston', valid: ['dalston_test2', 'dalston_test2'], invalid: ['dal-ston', '2db', 'db;DROP'] },
  clickhousePort: port(8123, 18123),
  apiKey: { default: undefined, valid: ['dk_abc', 'dk_abc'], invalid: FREE('any key') },
  gatewayPort: { default: 8000, valid: ['0', 0], invalid: ['eighty', '65536', '8000.5'] },
  bindHost: { default: '127.0.0.1', valid: ['0.0.0.0', '0.0.0.0'], invalid: FREE('an address or host name; a bad one fails at bind') },
  tlsCertFile: { default: undefined, valid: [here, here], with: { DALSTON_TLS_KEY_FILE: here }, invalid: ['/nonexistent/cert.pem'] },
  tlsKeyFile: { default: undefined, valid: [here, here], with: { DALSTON_TLS_CERT_FILE: here }, invalid: ['/nonexistent/key.pem'] },
  supervisorPort: port(8099, 18099),
  actorsPort: port(8001, 18001),
  enginePort: port(8010, 18010),
  logLevel: { default: 'info', valid: ['debug', 'debug'], invalid: ['verbose', 'INFO'] },
  storageBackend: { default: 'fs', valid: ['s3', 's3'], invalid: ['ftp'] },
  s3Bucket: { default: 'dalston', valid: ['audio-eu', 'audio-eu'], invalid: FREE('any bucket name') },
  s3Endpoint: { default: undefined, valid: ['http://127.0.0.1:9000/', 'http://127.0.0.1:9000'], invalid: ['minio:9000', 's3://bucket'] },
  s3Region: { default: 'us-east-1', valid: ['eu-west-1', 'eu-west-1'], invalid: FREE('any region') },
  transcribeEngine: { default: 'stt-batch-transcribe-onnx-moonshine-tiny', valid: ['stt-batch-transcribe-pocketsphinx-en-us', 'stt-batch-transcribe-pocketsphinx-en-us'], invalid: FREE('an engine id; `up` refuses one it does not start') },
  retryBaseDelayMs: { default: 1000, valid: ['0', 0], invalid: ['-1', '3600001', '1.5', 'soon'] },
  faultInjection: {
    default: undefined, valid: ['slow:250', 'slow:250'],
    invalid: ['explode', 'slow', 'slow:', 'slow:-5', 'slow:1.5', 'hang:3', 'fail-attempts:x', 'fail-attempts:'],
    checkedBy: (c) => (c.faultInjection === undefined ? undefined : parseFaultPlan(c.faultInjection)), // at engine start (engines/main.ts)
  },
  engineConcurrency: { default: 1, valid: ['64', 64], invalid: ['0', '65', '2.5', 'many'] },
  maxQueuedTasks: { default: 10000, valid: ['0', 0], invalid: ['-1', '1.5', 'lots'] },
  chunkSeconds: { default: 600, valid: ['0', 0], invalid: ['29', '-1', 'ten', '86401'] },
  onnxThreads: { default: 1, valid: ['2', 2], invalid: ['0', '65', '1.5', 'all'] },
  taskMaxRetries: { default: 2, valid: ['10', 10], invalid: ['-1', '11', '1.5', 'two'] },
  taskMinTimeoutSeconds: { default: 60, valid: ['1.5', 1.5], invalid: ['0', '86401', 'sixty', 'Infinity'] },
  taskQueueTimeoutSeconds: { default: 1800, valid: ['604800', 604800], invalid: ['0', '604801'] },
  jobStateRetentionSeconds: { default: 3600, valid: ['2592000', 2592000], invalid: ['0.5', '2592001'] },
  engineDrainSeconds: { default: 30, valid: ['0', 0], invalid: ['-1', '3601', 'x'] },
  tenantLimits: {
    default: undefined, valid: ['*:requests_per_minute=600;acme:requests_per_minute=0', '*:requests_per_minute=600;acme:requests_per_minute=0'],
    invalid: ['acme', 'acme:rpm=5', 'acme:requests_per_minute=-1', 'Acme:requests_per_minute=1', 'a:requests_per_minute=1;a:requests_per_minute=2'],
    checkedBy: (c) => parseTenantLimits(c.tenantLimits ?? ''), // at gateway start
  },
  gatewayId: {
    default: undefined, valid: ['gw-1_a', 'gw-1_a'], invalid: ['gw 1', 'gw.1', 'x'.repeat(65)],
    checkedBy: (c) => resolveGatewayId(c.gatewayId, 'host', 8000), // at gateway start
  },
  realtimeEnginePort: port(8090, 18090),
  realtimeEngines: { default: 1, valid: ['0', 0], invalid: ['-1', '65'] },
  realtimeEngineQueueFrames: { default: 3000, valid: ['10', 10], invalid: ['9', '1000001'] },
  realtimeDecodeConcurrency: { default: 1, valid: ['4', 4], invalid: ['0', '65'] },
  realtimePartialMaxWaitMs: { default: 500, valid: ['0', 0], invalid: ['-1', '60001'] },
  realtimePartialSkipBehindMs: { default: 1000, valid: ['1', 1], invalid: ['0', '3600001'] },
  realtimeSessionsPerEngine: { default: 16, valid: ['100000', 100000], invalid: ['0', '100001'] },
  realtimeModel: { default: 'moonshine-tiny', valid: ['whisper-base', 'whisper-base'], invalid: FREE('a model id; the engine reports one it cannot load') },
  realtimeMaxSessionsPerKey: { default: 32, valid: ['1', 1], invalid: ['0', '1000001'] },
  realtimeIdleTimeoutSeconds: { default: 30, valid: ['86400', 86400], invalid: ['0.5', '86401'] },
  realtimeMaxSessionSeconds: { default: 14400, valid: ['60', 60], invalid: ['0', '604801'] },
  realtimeMaxFrameBytes: { default: 262144, valid: ['1024', 1024], invalid: ['1023', '16777217', '1e3'] },
  realtimeLagWarnSeconds: { default: 3, valid: ['0.1', 0.1], invalid: ['0.09', '3601'] },
  realtimeLagCloseSeconds: { default: 5, valid: ['3600', 3600], invalid: ['0', '3600.5'] },
  realtimeRetention: { default: true, valid: ['off', false], invalid: ['maybe', '2'] },
  realtimeEndGraceSeconds: { default: 30, valid: ['1', 1], invalid: ['0', '86401'] },
  realtimeTokenTtlSeconds: { default: 60, valid: ['1', 1], invalid: ['0', '61'] },
  heartbeatSeconds: { default: 5, valid: ['0.1', 0.1], invalid: ['0', '601', 'fast'] },
  uploadMaxBytes: { default: 1073741824, valid: [String(2 ** 40), 2 ** 40], invalid: ['0', String(2 ** 40 + 1), '1.5'] },
  urlAllowHosts: {
    default: undefined, valid: ['minio.internal, 10.0.0.0/8, ::1', ['minio.internal', '10.0.0.0/8', '::1']],
    invalid: ['10.0.0.0/33', 'host/8', '10.0.0.0/8/1', '::1/129'],
  },
  bodyIdleTimeoutSeconds: { default: 60, valid: ['3600', 3600], invalid: ['0', '3601'] },
  urlFetchTimeoutSeconds: { default: 300, valid: ['1', 1], invalid: ['0', '86401'] },
  openAiModelAliases: {
    default: new Map([['whisper-1', 'auto'], ['gpt-4o-transcribe', 'auto'], ['gpt-4o-mini-transcribe', 'auto']]),
    valid: ['whisper-1=moonshine-tiny, fast=auto', new Map([['whisper-1', 'moonshine-tiny'], ['fast', 'auto']])],
    invalid: ['whisper-1', 'a=auto,a=auto', '=auto'],
  },
  kafkaInlineAudioMaxBytes: { default: 786432, valid: ['1', 1], invalid: ['0', String(64 * 1024 * 1024 + 1)] },
  webhooksPort: port(8002, 18002),
  webhookAllowHosts: { default: undefined, valid: ['127.0.0.1, hooks.internal', ['127.0.0.1', 'hooks.internal']], invalid: ['10.0.0.0/33', '::1/129'] },
  webhookRetryBaseSeconds: { default: 5, valid: ['0.2', 0.2], invalid: ['0', '86401', 'soon'] },
  webhookRetryMaxSeconds: { default: 3600, valid: ['60', 60], invalid: ['0', String(7 * 86400 + 1)] },
  webhookMaxAttempts: { default: 15, valid: ['4', 4], invalid: ['0', '101', '2.5'] },
  webhookTimeoutSeconds: { default: 15, valid: ['0.5', 0.5], invalid: ['0', '301'] },
  webhookMaxInFlight: { default: 32, valid: ['1', 1], invalid: ['0', '1.5'] },
  webhookSecretOverlapSeconds: { default: 86400, valid: ['0', 0], invalid: ['-1', String(30 * 86400 + 1)] },
  purgeIntervalSeconds: { default: 60, valid: ['0.5', 0.5], invalid: ['0', '86401', 'often'] },
  syncTimeoutSeconds: { default: 600, valid: ['86400', 86400], invalid: ['0', '86401'] },
  engines: { default: 'auto', valid: ['audio-prepare, merge', 'audio-prepare, merge'], invalid: FREE('engine ids; an unknown one fails its engine\'s start (DALSTON_ENGINE_ID)') },
  otelEnabled: { default: false, valid: ['true', true], invalid: ['enabled'] },
  cloudMetadata: { default: 'none', valid: ['aws', 'aws'], invalid: ['gcp'] },
  imdsEndpoint: { default: 'http://169.254.169.254', valid: ['http://127.0.0.1:1338', 'http://127.0.0.1:1338'], invalid: ['169.254.169.254'] },
  serviceName: { default: undefined, valid: ['dalston-engine', 'dalston-engine'], invalid: ['dalston-web'] },
  engineId: { default: undefined, valid: ['merge', 'merge'], invalid: FREE('an engine id; the engine registry refuses an unknown one at start') },
  otelSpanStore: { default: 'none', valid: ['clickhouse', 'clickhouse'], invalid: ['jaeger'] },
};

test('every DALSTON_* variable: its default, a valid value, and invalid values refused at start-up naming the variable', async (t) => {
  assert.deepEqual(Object.keys(CASES).sort(), Object.keys(VARIABLES).sort(), 'one case per variable');
  const defaults = loadConfig({});
  for (const key of Object.keys(VARIABLES) as Key[]) {
    const spec = VARIABLES[key];
    const c = CASES[key];
    await t.test(spec.name, () => {
      assert.deepEqual(defaults[key], c.default, 'default');
      assert.deepEqual(loadConfig({ [spec.name]: '' })[key], c.default, 'an empty value means unset');
      const [raw, parsed] = c.valid;
      const config = loadConfig({ ...c.with, [spec.name]: raw });
      assert.deepEqual(config[key], parsed, `valid value ${raw}`);
      assert.doesNotThrow(() => c.checkedBy?.(config));
      if ('freeText' in c.invalid) return;
      const invalid: readonly string[] = c.invalid;
      assert.ok(invalid.length > 0);
      for (const bad of invalid) {
        assert.throws(() => {
          const loaded = loadConfig({ [spec.name]: bad });
          if (!c.checkedBy) assert.fail(`${spec.name}=${bad} was accepted as ${JSON.stringify(loaded[key])}`);
          c.checkedBy(loaded);
        }, (e: unknown) => e instanceof (c.checkedBy ? Error : ConfigError) && e.message.startsWith(spec.name), `${spec.name}=${bad} is refused`);
      }
    });
  }
});

test('TLS files: both or neither, each readable; the error names the variable', () => {
  assert.throws(() => loadConfig({ DALSTON_TLS_CERT_FILE: here }),
    (e: unknown) => e instanceof ConfigError && /^DALSTON_TLS_KEY_FILE must be set when DALSTON_TLS_CERT_FILE is/.test(e.message));
  assert.throws(() => loadConfig({ DALSTON_TLS_KEY_FILE: here }),
    (e: unknown) => e instanceof ConfigError && /^DALSTON_TLS_CERT_FILE must be set when DALSTON_TLS_KEY_FILE is/.test(e.message));
  assert.throws(() => loadConfig({ DALSTON_TLS_CERT_FILE: '/nonexistent/cert.pem', DALSTON_TLS_KEY_FILE: here }),
    (e: unknown) => e instanceof ConfigError && /^DALSTON_TLS_CERT_FILE must name a readable file, got "\/nonexistent\/cert.pem" \(ENOENT\)/.test(e.message));
});

test('the README documents every variable with exactly its default', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  for (const spec of Object.values(VARIABLES)) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${spec.name}\` |`));
    assert.ok(row, `${spec.name} is documented`);
    const documented = row.split(' | ')[1];
    assert.equal(documented, spec.default === undefined ? '(unset)' : `\`${spec.default}\``, `${spec.name}'s documented default`);
  }
});
