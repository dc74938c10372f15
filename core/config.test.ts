import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './errors.js';
import { REPO_ROOT, VARIABLES, loadConfig } from './config.js';

test('defaults load; a bad value names its variable', () => {
  const c = loadConfig({});
  assert.equal(c.gatewayPort, 8000);
  assert.deepEqual(c.kafkaBrokers, ['127.0.0.1:9092']);
  assert.equal(c.apiKey, undefined);
  assert.throws(() => loadConfig({ DALSTON_GATEWAY_PORT: 'eighty' }), (e: unknown) => e instanceof ConfigError && /DALSTON_GATEWAY_PORT/.test(e.message));
  assert.throws(() => loadConfig({ DALSTON_KAFKA_BROKERS: 'no-port' }), /DALSTON_KAFKA_BROKERS/);
  assert.throws(() => loadConfig({ DALSTON_STORAGE_BACKEND: 'ftp' }), /DALSTON_STORAGE_BACKEND must be one of fs, s3/);
  assert.deepEqual([...loadConfig({ DALSTON_OPENAI_MODEL_ALIASES: 'whisper-1=moonshine-tiny, fast=auto' }).openAiModelAliases], [['whisper-1', 'moonshine-tiny'], ['fast', 'auto']]);
  assert.throws(() => loadConfig({ DALSTON_OPENAI_MODEL_ALIASES: 'whisper-1' }), /DALSTON_OPENAI_MODEL_ALIASES must be alias=model pairs/);
  assert.throws(() => loadConfig({ DALSTON_OPENAI_MODEL_ALIASES: 'a=auto,a=auto' }), /names alias "a" twice/);
});

test('TLS files: both or neither, each readable; the error names the variable', () => {
  const here = new URL(import.meta.url).pathname; // any readable file will do for the check
  const both = loadConfig({ DALSTON_TLS_CERT_FILE: here, DALSTON_TLS_KEY_FILE: here });
  assert.equal(both.tlsCertFile, here);
  assert.equal(both.tlsKeyFile, here);
  assert.equal(loadConfig({}).tlsCertFile, undefined);
  assert.throws(() => loadConfig({ DALSTON_TLS_CERT_FILE: here }),
    (e: unknown) => e instanceof ConfigError && /^DALSTON_TLS_KEY_FILE must be set when DALSTON_TLS_CERT_FILE is/.test(e.message));
  assert.throws(() => loadConfig({ DALSTON_TLS_KEY_FILE: here }),
    (e: unknown) => e instanceof ConfigError && /^DALSTON_TLS_CERT_FILE must be set when DALSTON_TLS_KEY_FILE is/.test(e.message));
  assert.throws(() => loadConfig({ DALSTON_TLS_CERT_FILE: '/nonexistent/cert.pem', DALSTON_TLS_KEY_FILE: here }),
    (e: unknown) => e instanceof ConfigError && /^DALSTON_TLS_CERT_FILE must name a readable file, got "\/nonexistent\/cert.pem" \(ENOENT\)/.test(e.message));
});

test('the README documents every variable with its default', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  for (const spec of Object.values(VARIABLES)) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${spec.name}\` |`));
    assert.ok(row, `${spec.name} is documented`);
    if (spec.default !== undefined) assert.ok(row.includes(`\`${spec.default}\``), `${spec.name} documents its default ${spec.default}`);
  }
});
