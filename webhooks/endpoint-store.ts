/**
 * Tenant webhook endpoints, on the compacted one-partition `webhooks.endpoints` topic: every gateway (the webhooks
 * API) and every webhook worker (delivery) holds all of them in memory and tails the topic, so an endpoint created,
 * edited, rotated or deleted through any gateway is what the next delivery uses. Signing secrets are sealed under
 * DALSTON_API_KEY: the worker must sign with them, so they cannot be hashed like API keys.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from '../core/logger.js';
import { sealSecret, unsealSecret } from '../core/sealed-secret.js';
import {
  CompactedTopicTail, WEBHOOK_ENDPOINTS, decodeWebhookEndpointRecord, encodeJsonRecord,
  type SealedWebhookSecret, type TailConnection, type WebhookEndpointRecord,
} from '../streams/index.js';
import { WEBHOOK_SECRET_PREFIX } from './webhook-signature.js';

const SEAL_PURPOSE = 'webhooks.endpoints';

export function sealWebhookSecret(secret: string, bootstrapKey: string, now: number): SealedWebhookSecret {
  return { sealed: sealSecret(secret, bootstrapKey, SEAL_PURPOSE), createdAt: now };
}

/** The secrets an attempt at `now` is signed with, newest first: the current one and those still in their overlap. */
export function liveSecrets(endpoint: WebhookEndpointRecord, bootstrapKey: string, now: number): string[] {
  return endpoint.secrets
    .filter((s) => s.expiresAt === undefined || s.expiresAt > now)
    .map((s) => unsealSecret(s.sealed, bootstrapKey, SEAL_PURPOSE))
    .filter((s): s is string => s !== undefined);
}

/**
 * The secret a tenant's per-job `webhook_url` deliveries are signed with: derived from DALSTON_API_KEY and the
 * tenant, so it needs no store, and the same on every worker. `GET /v1/webhooks/job-signing-secret` shows it.
 */
export function jobWebhookSecret(bootstrapKey: string, tenantId: string): string {
  return `${WEBHOOK_SECRET_PREFIX}${createHmac('sha256', bootstrapKey).update(`dalston job webhook secret v1\0${tenantId}`, 'utf8').digest('base64')}`;
}

/** The endpoints as read from the topic (latest record per endpoint). */
export class EndpointTable {
  readonly #byId = new Map<string, WebhookEndpointRecord>();

  protected apply(r: WebhookEndpointRecord): void {
    this.#byId.set(r.endpointId, r);
  }

  /** Deleted endpoints included: the caller decides (the API shows them as absent). */
  get(endpointId: string): WebhookEndpointRecord | undefined {
    return this.#byId.get(endpointId);
  }

  /** The live endpoints of one tenant, or of all when `tenantId` is undefined, oldest first. */
  list(tenantId: string | undefined): WebhookEndpointRecord[] {
    return [...this.#byId.values()]
      .filter((e) => e.deletedAt === undefined && (tenantId === undefined || e.tenantId === tenantId))
      .sort((a, b) => a.createdAt - b.createdAt);
  }
}

export interface EndpointStore {
  get(endpointId: string): WebhookEndpointRecord | undefined;
  list(tenantId: string | undefined): WebhookEndpointRecord[];
  /** Resolves once this process reads the record back. */
  put(record: WebhookEndpointRecord): Promise<void>;
}

export class KafkaEndpointStore extends EndpointTable implements EndpointStore {
  readonly #tail: CompactedTopicTail<WebhookEndpointRecord>;
  readonly #log: Logger;

  constructor(o: TailConnection) {
    super();
    this.#log = o.log;
    this.#tail = new CompactedTopicTail<WebhookEndpointRecord>({
      ...o, topic: WEBHOOK_ENDPOINTS, decode: decodeWebhookEndpointRecord, apply: (r) => this.apply(r), what: 'the webhook endpoint store',
    });
  }

  async start(): Promise<void> {
    await this.#tail.start();
    this.#log.info({ endpoints: this.list(undefined).length }, 'webhook endpoints loaded');
  }

  close(): Promise<void> {
    return this.#tail.close();
  }

  put(record: WebhookEndpointRecord): Promise<void> {
    return this.#tail.write(record.endpointId, encodeJsonRecord(record));
  }
}
