/**
 * `/v1/webhooks` (scope `webhooks`): a tenant's webhook endpoints, their signing secrets, delivery logs and manual
 * redelivery. Another tenant's endpoint id is a 404. The secret is shown once, at creation and at rotation; a
 * rotation keeps the previous secret signing beside the new one for DALSTON_WEBHOOK_SECRET_OVERLAP_SECONDS. Every
 * change is audited (`webhook.changed`) before it is stored.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { DependencyUnavailableError, InvalidInputError } from '../../core/errors.js';
import type { UrlAllowList } from '../../core/network-policy.js';
import { SCHEMA_VERSION, WEBHOOK_EVENTS, type AuditEvent, type WebhookEndpointRecord, type WebhookEventType } from '../../streams/index.js';
import { jobWebhookSecret, sealWebhookSecret, type EndpointStore } from '../../webhooks/endpoint-store.js';
import { newWebhookSecret } from '../../webhooks/webhook-signature.js';
import type { Principal } from '../auth.js';
import { badRequest, notFound } from '../errors.js';
import { sendJson } from '../http-exchange.js';
import type { AuthedRequestContext, RouteSpec } from '../http-server.js';
import { newEventId } from '../ids.js';
import { parseTenantId } from '../keys/key-issuance.js';
import type { JobEventPublisher } from '../ports.js';
import { receiveSmallJson } from '../upload.js';
import { groupDeliveries, type DeliveryLogReader, type DeliveryScheduler } from './delivery-log.js';
import { checkWebhookUrl } from './webhook-target.js';

export const WEBHOOKS_PATH = '/v1/webhooks';
const MAX_DESCRIPTION = 500;
const MAX_DELIVERIES = 100;
/** Attempt rows read for one listing (deliveries are grouped from them). */
const MAX_ATTEMPT_ROWS = 5000;

export interface WebhookRoutesDeps {
  readonly endpoints: EndpointStore;
  readonly deliveries: DeliveryLogReader;
  readonly scheduler: DeliveryScheduler;
  readonly publisher: Pick<JobEventPublisher, 'publishAudit'>;
  readonly clock: Clock;
  readonly bootstrapKey: string;
  readonly allow: UrlAllowList;
  readonly secretOverlapMs: number;
}

type Action = 'created' | 'updated' | 'deleted' | 'secret_rotated';

function auditEvent(action: Action, actor: Principal, e: WebhookEndpointRecord, ctx: AuthedRequestContext, time: number): AuditEvent {
  return {
    v: SCHEMA_VERSION, type: 'analytics.audit_event', time, eventId: newEventId(time), eventType: 'webhook.changed', tenantId: e.tenantId,
    actorKeyId: actor.keyId, jobId: '', sessionId: '', audioDurationSeconds: 0, requestId: ctx.requestId, traceId: ctx.traceId ?? '',
    details: JSON.stringify({ action, endpoint_id: e.endpointId, url: e.url, events: e.events, enabled: e.enabled }),
  };
}

async function audited(deps: WebhookRoutesDeps, event: AuditEvent): Promise<void> {
  try {
    await deps.publisher.publishAudit(event);
  } catch (err) {
    throw new DependencyUnavailableError('could not record the audit event', { cause: err });
  }
}

export function endpointView(e: WebhookEndpointRecord): Record<string, unknown> {
  const previous = e.secrets.slice(1).map((s) => s.expiresAt ?? 0);
  return {
    id: e.endpointId, object: 'webhook_endpoint', tenant: e.tenantId, url: e.url, events: e.events, description: e.description, enabled: e.enabled,
    created_at: new Date(e.createdAt).toISOString(), updated_at: new Date(e.updatedAt).toISOString(),
    secret_created_at: new Date(e.secrets[0]?.createdAt ?? e.createdAt).toISOString(),
    previous_secret_expires_at: previous.length > 0 ? new Date(Math.max(...previous)).toISOString() : null,
  };
}

function parseEvents(raw: unknown): ('*' | WebhookEventType)[] {
  if (raw === undefined || raw === null) return ['*'];
  if (!Array.isArray(raw) || raw.length === 0) throw badRequest(`events must be a non-empty array of ${[...WEBHOOK_EVENTS, '*'].join(', ')}`);
  const out = new Set<'*' | WebhookEventType>();
  for (const e of raw) {
    if (e !== '*' && !(WEBHOOK_EVENTS as readonly unknown[]).includes(e)) throw badRequest(`events: ${JSON.stringify(e).slice(0, 60)} is not one of ${[...WEBHOOK_EVENTS, '*'].join(', ')}`);
    out.add(e as '*' | WebhookEventType);
  }
  return out.has('*') ? ['*'] : [...out];
}

function parseDescription(raw: unknown): string {
  if (raw === undefined || raw === null) return '';
  if (typeof raw !== 'string' || raw.length > MAX_DESCRIPTION) throw badRequest(`description must be a string of at most ${MAX_DESCRIPTION} characters`);
  return raw;
}

function parseEnabled(raw: unknown, current: boolean): boolean {
  if (raw === undefined || raw === null) return current;
  if (typeof raw !== 'boolean') throw badRequest('enabled must be true or false');
  return raw;
}

async function jsonObject(ctx: AuthedRequestContext, shape: string): Promise<Record<string, unknown>> {
  const body = await receiveSmallJson(ctx.req);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest(`the body must be a JSON object: ${shape}`);
  return body as Record<string, unknown>;
}

/** The endpoint `id` if the caller's tenant may see it; otherwise 404. */
function visible(deps: WebhookRoutesDeps, ctx: AuthedRequestContext): WebhookEndpointRecord {
  const id = ctx.params['id'] ?? '';
  const e = deps.endpoints.get(id);
  if (!e || e.deletedAt !== undefined || (!ctx.principal.operator && e.tenantId !== ctx.principal.tenantId)) throw notFound(`no webhook endpoint ${id.slice(0, 80)}`);
  return e;
}

async function store(deps: WebhookRoutesDeps, ctx: AuthedRequestContext, action: Action, e: WebhookEndpointRecord): Promise<void> {
  await audited(deps, auditEvent(action, ctx.principal, e, ctx, e.updatedAt));
  await deps.endpoints.put(e);
  ctx.annotate({ endpoint_id: e.endpointId });
  ctx.log.info({ endpoint_id: e.endpointId, endpoint_tenant: e.tenantId, action }, 'webhook endpoint changed');
}

async function create(deps: WebhookRoutesDeps, ctx: AuthedRequestContext): Promise<void> {
  const o = await jsonObject(ctx, '{"url", "events"?, "description"?, "enabled"?}');
  let tenantId = ctx.principal.tenantId;
  if (o['tenant'] !== undefined && o['tenant'] !== null) {
    try {
      tenantId = parseTenantId(o['tenant']);
    } catch (err) {
      if (err instanceof InvalidInputError) throw badRequest(err.message);
      throw err;
    }
    // Naming another tenant is the operator's alone; to anyone else that tenant does not exist.
    if (tenantId !== ctx.principal.tenantId && !ctx.principal.operator) throw notFound(`no tenant ${tenantId}`);
  }
  const url = await checkWebhookUrl(o['url'], deps.allow);
  const now = deps.clock.now();
  const secret = newWebhookSecret();
  const record: WebhookEndpointRecord = {
    v: SCHEMA_VERSION, type: 'webhook.endpoint', endpointId: `wh_${randomBytes(8).toString('hex')}`, tenantId, url,
    events: parseEvents(o['events']), description: parseDescription(o['description']), enabled: parseEnabled(o['enabled'], true),
    secrets: [sealWebhookSecret(secret, deps.bootstrapKey, now)], createdAt: now, updatedAt: now, createdBy: ctx.principal.keyId,
  };
  await store(deps, ctx, 'created', record);
  sendJson(ctx.res, 201, { ...endpointView(record), secret });
}

async function update(deps: WebhookRoutesDeps, ctx: AuthedRequestContext): Promise<void> {
  const current = visible(deps, ctx);
  const o = await jsonObject(ctx, '{"url"?, "events"?, "description"?, "enabled"?}');
  const record: WebhookEndpointRecord = {
    ...current,
    url: o['url'] === undefined ? current.url : await checkWebhookUrl(o['url'], deps.allow),
    events: o['events'] === undefined ? current.events : parseEvents(o['events']),
    description: o['description'] === undefined ? current.description : parseDescription(o['description']),
    enabled: parseEnabled(o['enabled'], current.enabled),
    updatedAt: deps.clock.now(),
  };
  await store(deps, ctx, 'updated', record);
  sendJson(ctx.res, 200, endpointView(record));
}

async function remove(deps: WebhookRoutesDeps, ctx: AuthedRequestContext): Promise<void> {
  const current = visible(deps, ctx);
  const now = deps.clock.now();
  await store(deps, ctx, 'deleted', { ...current, deletedAt: now, updatedAt: now });
  sendJson(ctx.res, 200, { id: current.endpointId, object: 'webhook_endpoint', deleted: true });
}

/** A new current secret; the previous one signs beside it until the overlap ends; older ones are dropped. */
async function rotate(deps: WebhookRoutesDeps, ctx: AuthedRequestContext): Promise<void> {
  const current = visible(deps, ctx);
  const now = deps.clock.now();
  const secret = newWebhookSecret();
  const [previous] = current.secrets;
  const overlapEnds = now + deps.secretOverlapMs;
  const record: WebhookEndpointRecord = {
    ...current, updatedAt: now,
    secrets: [sealWebhookSecret(secret, deps.bootstrapKey, now), ...(previous && deps.secretOverlapMs > 0 ? [{ ...previous, expiresAt: overlapEnds }] : [])],
  };
  await store(deps, ctx, 'secret_rotated', record);
  sendJson(ctx.res, 200, { ...endpointView(record), secret });
}

async function deliveries(deps: WebhookRoutesDeps, ctx: AuthedRequestContext): Promise<void> {
  const e = visible(deps, ctx);
  const status = ctx.url.searchParams.get('status');
  const STATUSES = ['delivered', 'pending', 'failed', 'refused', 'dropped'];
  if (status !== null && !STATUSES.includes(status)) throw badRequest(`status must be one of ${STATUSES.join(', ')}`);
  const limitRaw = ctx.url.searchParams.get('limit');
  const limit = limitRaw === null ? 50 : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_DELIVERIES) throw badRequest(`limit must be an integer from 1 to ${MAX_DELIVERIES}`);
  const rows = await deps.deliveries.attempts({ tenantId: e.tenantId, endpointId: e.endpointId, limit: MAX_ATTEMPT_ROWS });
  const data = groupDeliveries(rows).filter((d) => status === null || d.status === status).slice(0, limit);
  sendJson(ctx.res, 200, { data });
}

/** Sends a delivery again now, with the same `webhook-id` and body, as the next attempt of its chain. */
async function retry(deps: WebhookRoutesDeps, ctx: AuthedRequestContext): Promise<void> {
  const e = visible(deps, ctx);
  const deliveryId = ctx.params['delivery_id'] ?? '';
  const rows = await deps.deliveries.attempts({ tenantId: e.tenantId, endpointId: e.endpointId, deliveryId, limit: 1000 });
  const last = [...rows].sort((a, b) => b.attempt - a.attempt)[0];
  if (!last) throw notFound(`no delivery ${deliveryId.slice(0, 80)} of webhook endpoint ${e.endpointId}`);
  const now = deps.clock.now();
  // A failed attempt with a retry scheduled holds the next number: this one goes after it, and replaces it.
  const attempt = last.attempt + (last.status === 'failed' && last.nextAttemptAtMs > 0 ? 2 : 1);
  await deps.scheduler.schedule({
    v: SCHEMA_VERSION, type: 'webhook.delivery.scheduled', deliveryId, tenantId: e.tenantId, endpointId: e.endpointId,
    eventType: last.eventType as WebhookEventType, subjectId: last.subjectId, body: last.body, attempt, dueAt: now,
    createdAt: Math.min(...rows.map((r) => r.timeMs)),
  });
  ctx.annotate({ endpoint_id: e.endpointId, delivery_id: deliveryId });
  ctx.log.info({ endpoint_id: e.endpointId, delivery_id: deliveryId, attempt }, 'webhook redelivery scheduled');
  sendJson(ctx.res, 202, { id: deliveryId, object: 'webhook_delivery', status: 'scheduled', attempt });
}

export function webhookRoutes(deps: WebhookRoutesDeps): RouteSpec[] {
  return [
    { method: 'POST', path: WEBHOOKS_PATH, auth: 'api_key', handler: (ctx) => create(deps, ctx) },
    {
      method: 'GET', path: WEBHOOKS_PATH, auth: 'api_key',
      handler: async (ctx) => sendJson(ctx.res, 200, { data: deps.endpoints.list(ctx.principal.operator ? (ctx.url.searchParams.get('tenant') ?? undefined) : ctx.principal.tenantId).map(endpointView) }),
    },
    {
      // What deliveries to jobs' own `webhook_url` are signed with (one secret per tenant, derived, never stored).
      method: 'GET', path: `${WEBHOOKS_PATH}/job-signing-secret`, auth: 'api_key',
      handler: async (ctx) => sendJson(ctx.res, 200, { tenant: ctx.principal.tenantId, secret: jobWebhookSecret(deps.bootstrapKey, ctx.principal.tenantId) }),
    },
    { method: 'GET', path: `${WEBHOOKS_PATH}/:id`, auth: 'api_key', handler: async (ctx) => sendJson(ctx.res, 200, endpointView(visible(deps, ctx))) },
    { method: 'PATCH', path: `${WEBHOOKS_PATH}/:id`, auth: 'api_key', handler: (ctx) => update(deps, ctx) },
    { method: 'DELETE', path: `${WEBHOOKS_PATH}/:id`, auth: 'api_key', handler: (ctx) => remove(deps, ctx) },
    { method: 'POST', path: `${WEBHOOKS_PATH}/:id/rotate-secret`, auth: 'api_key', handler: (ctx) => rotate(deps, ctx) },
    { method: 'GET', path: `${WEBHOOKS_PATH}/:id/deliveries`, auth: 'api_key', handler: (ctx) => deliveries(deps, ctx) },
    { method: 'POST', path: `${WEBHOOKS_PATH}/:id/deliveries/:delivery_id/retry`, auth: 'api_key', handler: (ctx) => retry(deps, ctx) },
  ];
}
