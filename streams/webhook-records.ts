/**
 * Records of the webhook topics (UTF-8 JSON, so operators' tools can read them):
 * - `webhooks.endpoints` (compacted, keyed by endpoint id): every tenant endpoint with its signing secrets, sealed.
 * - `webhooks.deliveries` (keyed by delivery id): the durable retry schedule. Each attempt's outcome appends the next
 *   record of its delivery (the next attempt with its due time, or the end), so the latest record of a delivery is
 *   its state and a restarted worker that re-reads the uncommitted tail loses nothing and doubles no chain.
 */
import { arrayOf, bool, int, literal, object, oneOf, optional, str, union } from './validate.js';
import { SCHEMA_VERSION } from './messages.js';

/** What an endpoint may subscribe to; `*` is every one of them. */
export const WEBHOOK_EVENTS = ['transcription.completed', 'transcription.failed', 'transcription.cancelled', 'realtime.session.ended'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

const v = literal(SCHEMA_VERSION);

const sealedSecret = object({
  /** `whsec_…` sealed with AES-256-GCM under a key derived from DALSTON_API_KEY (core/sealed-secret.ts). */
  sealed: str,
  createdAt: int,
  /** A rotated-out secret still signs until then (the overlap window); absent: the current secret. */
  expiresAt: optional(int),
});
export type SealedWebhookSecret = ReturnType<typeof sealedSecret>;

const endpointRecord = object({
  v, type: literal('webhook.endpoint'),
  /** `wh_<16 hex>`. */
  endpointId: str, tenantId: str, url: str,
  /** Event types, or `['*']` for all. */
  events: arrayOf(oneOf([...WEBHOOK_EVENTS, '*'] as const)),
  description: str, enabled: bool,
  /** Newest first: the current secret, then rotated-out ones still inside their overlap window. */
  secrets: arrayOf(sealedSecret),
  createdAt: int, updatedAt: int, createdBy: str,
  /** Deleted endpoints keep their record (the delivery log names them) and receive nothing. */
  deletedAt: optional(int),
});
export const checkWebhookEndpointRecord = union({ 'webhook.endpoint': endpointRecord });
export type WebhookEndpointRecord = ReturnType<typeof endpointRecord>;

const scheduled = object({
  v, type: literal('webhook.delivery.scheduled'),
  /** `msg_…`: the `webhook-id` of every attempt, so receivers de-duplicate. */
  deliveryId: str, tenantId: str,
  /** The tenant endpoint delivered to; absent for a job's own `webhook_url`. */
  endpointId: optional(str),
  /** A job's own `webhook_url` (endpoints are looked up at each attempt, so an edited URL takes effect). */
  url: optional(str),
  eventType: oneOf(WEBHOOK_EVENTS),
  /** The job or session the event is about. */
  subjectId: str,
  /** The request body, exactly as signed and sent on every attempt. */
  body: str,
  attempt: int, dueAt: int,
  /** When the event was first scheduled. */
  createdAt: int,
});
const finished = object({
  v, type: literal('webhook.delivery.finished'), deliveryId: str, attempt: int,
  outcome: oneOf(['delivered', 'failed', 'refused', 'dropped'] as const), at: int,
});
export const checkWebhookDeliveryRecord = union({ 'webhook.delivery.scheduled': scheduled, 'webhook.delivery.finished': finished });
export type WebhookDeliveryScheduled = ReturnType<typeof scheduled>;
export type WebhookDeliveryFinished = ReturnType<typeof finished>;
export type WebhookDeliveryRecord = WebhookDeliveryScheduled | WebhookDeliveryFinished;

export function encodeJsonRecord(r: WebhookEndpointRecord | WebhookDeliveryRecord): Buffer {
  return Buffer.from(JSON.stringify(r), 'utf8');
}

export function decodeWebhookEndpointRecord(value: Buffer): WebhookEndpointRecord {
  return checkWebhookEndpointRecord(JSON.parse(value.toString('utf8')) as unknown, 'webhooks.endpoints');
}

export function decodeWebhookDeliveryRecord(value: Buffer): WebhookDeliveryRecord {
  return checkWebhookDeliveryRecord(JSON.parse(value.toString('utf8')) as unknown, 'webhooks.deliveries');
}
