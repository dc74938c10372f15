/**
 * `./dalston keys create|list|revoke`: API keys from the command line, for the first admin key of a tenant and for
 * operators without an admin key at hand. It writes to the running stack's `auth.keys` topic (start it with
 * `./dalston up`), exactly as `POST /v1/keys` does, and audits what it does; the new key is printed once.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, DependencyUnavailableError } from '../core/errors.js';
import { kafkaSasl, type DalstonConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { connectStreams, tailConnection } from '../streams/index.js';
import { KafkaJobPublisher } from '../gateway/adapters/kafka-job-publisher.js';
import { KafkaKeyStore } from '../gateway/adapters/kafka-key-store.js';
import { issueKey, keyView, parseExpiry, parseKeyName, parseScopes, parseTenantId } from '../gateway/keys/key-issuance.js';
import { keyAuditEvent } from '../gateway/keys/key-routes.js';
import { newRequestId } from '../gateway/ids.js';

export const KEYS_USAGE = `usage: ./dalston keys create --tenant NAME --scopes SCOPE[,SCOPE…] [--name TEXT] [--expires-in SECONDS]
       ./dalston keys list [--tenant NAME]
       ./dalston keys revoke KEY_ID
  scopes: jobs:read, jobs:write, realtime, webhooks, admin (admin implies the others within its tenant)
  The stack must be running (./dalston up); the key is printed once and stored only as a salted hash.
`;

/** The bootstrap key, as `./dalston up` resolves it: it seals each key's Kafka signing secret. */
async function bootstrapKey(config: DalstonConfig): Promise<string> {
  if (config.apiKey) return config.apiKey;
  const file = join(config.homeDir, 'api-key');
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  throw new ConfigError(`no DALSTON_API_KEY and no ${file}: start the stack once with ./dalston up`);
}

export async function keys(config: DalstonConfig, log: Logger, argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: [...rest], allowPositionals: true,
    options: { tenant: { type: 'string' }, scopes: { type: 'string' }, name: { type: 'string' }, 'expires-in': { type: 'string' } },
  });
  if (sub !== 'create' && sub !== 'list' && sub !== 'revoke') {
    process.stderr.write(KEYS_USAGE);
    return 2;
  }
  const bootstrap = await bootstrapKey(config);
  const quiet = log.child({ component: 'keys' });
  // The Kafka `./dalston up` started (on DALSTON_KAFKA_PORT), unless DALSTON_KAFKA_BROKERS names another.
  const brokers = process.env['DALSTON_KAFKA_BROKERS'] ? config.kafkaBrokers : [`127.0.0.1:${config.kafkaPort}`];
  let streams;
  try {
    streams = await connectStreams({ sasl: kafkaSasl(config), brokers, clientId: 'dalston-keys', topicPrefix: config.topicPrefix, log: quiet });
  } catch (err) {
    throw new DependencyUnavailableError(`Kafka at ${brokers.join(',')} did not answer (${err instanceof Error ? err.message : String(err)}); start the stack with ./dalston up`);
  }
  const store = new KafkaKeyStore(tailConnection(streams, config.topicPrefix, quiet, 'cli-keys'));
  try {
    await store.start();
    const now = Date.now();
    const actor = { keyId: 'cli' };
    const request = { requestId: newRequestId(), traceId: undefined };
    const audit = new KafkaJobPublisher(streams.producer, config.topicPrefix);
    if (sub === 'list') {
      const tenant = values.tenant !== undefined ? parseTenantId(values.tenant) : undefined;
      process.stdout.write(`${JSON.stringify({ data: store.list(tenant).map((r) => keyView(r, store.lastUsed(r.keyId), now)) }, null, 2)}\n`);
      return 0;
    }
    if (sub === 'revoke') {
      const id = positionals[0];
      const record = id !== undefined ? store.get(id) : undefined;
      if (!record) {
        process.stderr.write(`dalston: no API key ${id ?? '(give its id)'}\n`);
        return 1;
      }
      const revoked = record.revokedAt !== undefined ? record : { ...record, revokedAt: now };
      if (record.revokedAt === undefined) {
        await audit.publishAudit(keyAuditEvent('api_key.revoked', actor, revoked, request, now));
        await store.put(revoked);
      }
      process.stdout.write(`${JSON.stringify(keyView(revoked, store.lastUsed(record.keyId), now), null, 2)}\n`);
      return 0;
    }
    if (values.tenant === undefined || values.scopes === undefined) {
      process.stderr.write(KEYS_USAGE);
      return 2;
    }
    const expiresIn = values['expires-in'];
    const { key, record } = issueKey({
      tenantId: parseTenantId(values.tenant), name: parseKeyName(values.name ?? `${values.tenant} key`), scopes: parseScopes(values.scopes),
      expiresAt: parseExpiry(expiresIn !== undefined ? { expires_in_seconds: Number(expiresIn) } : {}, now),
    }, { bootstrapKey: bootstrap, createdBy: 'cli', now });
    await audit.publishAudit(keyAuditEvent('api_key.created', actor, record, request, now));
    await store.put(record);
    process.stdout.write(`${JSON.stringify({ ...keyView(record, undefined, now), key }, null, 2)}\n`);
    process.stderr.write('Keep the key now: it is not stored and cannot be shown again.\n');
    return 0;
  } finally {
    await store.close();
    await streams.close();
  }
}
