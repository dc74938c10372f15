/**
 * A job's webhook request: its own `webhook_url` and `webhook_metadata` (native API), or ElevenLabs' `webhook=true`
 * with an optional `webhook_id`. Parsing is pure; the check against the tenant's endpoints and the SSRF policy runs
 * when the job is queued, before anything is published, so a refused target leaves no job behind.
 */
import type { UrlAllowList } from '../../core/network-policy.js';
import type { JobWebhook, WebhookEndpointRecord } from '../../streams/index.js';
import { HttpError, badRequest } from '../errors.js';
import { checkWebhookUrl } from './webhook-target.js';

/** ElevenLabs' limit on `webhook_metadata`. */
export const WEBHOOK_METADATA_MAX_BYTES = 16_384;

/** What a server with webhooks offers job submission. */
export interface JobWebhooks {
  readonly allow: UrlAllowList;
  readonly endpoints: { get(endpointId: string): WebhookEndpointRecord | undefined; list(tenantId: string | undefined): WebhookEndpointRecord[] };
}

/**
 * `webhook_metadata`: a JSON object, echoed in the payload's `data.webhook_metadata`. Carried base64url-encoded: the
 * job's parameters are stored as JSON text that ClickHouse reads with visitParam* (which would find a key such as
 * `retentionSeconds` inside the metadata as readily as the job's own).
 */
export function parseWebhookMetadata(raw: string, field = 'webhook_metadata'): string {
  if (Buffer.byteLength(raw) > WEBHOOK_METADATA_MAX_BYTES) throw badRequest(`${field} is larger than ${WEBHOOK_METADATA_MAX_BYTES} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw badRequest(`${field} must be a JSON object`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badRequest(`${field} must be a JSON object`);
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** The webhook as the job will carry it: the URL checked and normalised, a named endpoint known to the tenant. */
export async function checkedJobWebhook(webhook: JobWebhook | undefined, tenantId: string, webhooks: JobWebhooks | undefined): Promise<JobWebhook | undefined> {
  if (webhook === undefined) return undefined;
  if (!webhooks) {
    if (webhook.url !== undefined) throw new HttpError(501, 'not_implemented', 'webhooks are not available on this server');
    return webhook;
  }
  const checked: { -readonly [K in keyof JobWebhook]: JobWebhook[K] } = { ...webhook };
  if (webhook.url !== undefined) checked.url = await checkWebhookUrl(webhook.url, webhooks.allow, 'webhook_url');
  if (webhook.endpoints === 'one') {
    const e = webhook.endpointId !== undefined ? webhooks.endpoints.get(webhook.endpointId) : undefined;
    if (!e || e.tenantId !== tenantId || e.deletedAt !== undefined) throw badRequest(`webhook_id ${JSON.stringify((webhook.endpointId ?? '').slice(0, 80))} is not a webhook endpoint of this tenant`);
    if (!e.enabled) throw badRequest(`webhook endpoint ${e.endpointId} is disabled`);
  }
  return checked;
}

/** ElevenLabs' `webhook=true` without `webhook_id`: some enabled endpoint of the tenant must hear of the job. */
export function requireSomeEndpoint(tenantId: string, webhooks: JobWebhooks | undefined): void {
  if (!webhooks) throw new HttpError(501, 'not_implemented', 'webhooks are not available on this server');
  if (!webhooks.endpoints.list(tenantId).some((e) => e.enabled)) throw badRequest('webhook=true needs an enabled webhook endpoint: register one with POST /v1/webhooks');
}
