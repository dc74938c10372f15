/**
 * `POST/GET/DELETE /v1/keys`: issuing, listing and revoking API keys (the access table gives them to `admin`). A
 * tenant's admin sees and manages its own tenant's keys only; another tenant's key id is a 404, as if it did not
 * exist. The bootstrap key (DALSTON_API_KEY) may name any tenant. Creations and revocations are audited before the
 * answer, so no key exists that the audit trail does not show.
 */
import type { Clock } from '../../core/clock.js';
import { DependencyUnavailableError, InvalidInputError } from '../../core/errors.js';
import { SCHEMA_VERSION, type ApiKeyRecord, type AuditEvent } from '../../streams/index.js';
import type { Principal } from '../auth.js';
import { badRequest, notFound } from '../errors.js';
import { sendJson } from '../http-exchange.js';
import type { AuthedRequestContext, RouteSpec } from '../http-server.js';
import { newEventId } from '../ids.js';
import type { JobEventPublisher } from '../ports.js';
import { receiveSmallJson } from '../upload.js';
import { issueKey, keyView, parseExpiry, parseKeyName, parseScopes, parseTenantId } from './key-issuance.js';
import type { KeyStore } from './key-store.js';

export const KEYS_PATH = '/v1/keys';

export interface KeyRoutesDeps {
  readonly keys: KeyStore;
  readonly publisher: Pick<JobEventPublisher, 'publishAudit'>;
  readonly clock: Clock;
  readonly bootstrapKey: string;
}

/** An audit event about a key (no job, no session). */
export function keyAuditEvent(
  eventType: 'api_key.created' | 'api_key.revoked', actor: Pick<Principal, 'keyId'>, record: ApiKeyRecord,
  request: { readonly requestId: string; readonly traceId: string | undefined }, time: number,
): AuditEvent {
  return {
    v: SCHEMA_VERSION, type: 'analytics.audit_event', time, eventId: newEventId(time), eventType, tenantId: record.tenantId, actorKeyId: actor.keyId,
    jobId: '', sessionId: '', audioDurationSeconds: 0, requestId: request.requestId, traceId: request.traceId ?? '',
    details: JSON.stringify({ key_id: record.keyId, name: record.name, scopes: record.scopes }),
  };
}

async function audit(deps: KeyRoutesDeps, event: AuditEvent): Promise<void> {
  try {
    await deps.publisher.publishAudit(event);
  } catch (err) {
    throw new DependencyUnavailableError('could not record the audit event', { cause: err });
  }
}

/** The key `id` if the caller's tenant may see it; otherwise 404. */
function visibleKey(deps: KeyRoutesDeps, ctx: AuthedRequestContext): ApiKeyRecord {
  const id = ctx.params['id'] ?? '';
  const record = deps.keys.get(id);
  if (!record || (!ctx.principal.operator && record.tenantId !== ctx.principal.tenantId)) throw notFound(`no API key ${id.slice(0, 80)}`);
  return record;
}

async function create(deps: KeyRoutesDeps, ctx: AuthedRequestContext): Promise<void> {
  const body = await receiveSmallJson(ctx.req);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the body must be a JSON object: {"name", "scopes", "tenant"?, "expires_at"?}');
  const o = body as Record<string, unknown>;
  const now = deps.clock.now();
  let tenantId = ctx.principal.tenantId;
  try {
    if (o['tenant'] !== undefined && o['tenant'] !== null) {
      tenantId = parseTenantId(o['tenant']);
      // Naming another tenant is the operator's alone; to anyone else that tenant does not exist.
      if (tenantId !== ctx.principal.tenantId && !ctx.principal.operator) throw notFound(`no tenant ${tenantId}`);
    }
    const request = { tenantId, name: parseKeyName(o['name']), scopes: parseScopes(o['scopes']), expiresAt: parseExpiry(o, now) };
    const { key, record } = issueKey(request, { bootstrapKey: deps.bootstrapKey, createdBy: ctx.principal.keyId, now });
    await audit(deps, keyAuditEvent('api_key.created', ctx.principal, record, ctx, now));
    await deps.keys.put(record);
    ctx.annotate({ key_id: record.keyId });
    ctx.log.info({ key_id: record.keyId, key_tenant: record.tenantId, scopes: record.scopes.join(',') }, 'API key created');
    sendJson(ctx.res, 201, { ...keyView(record, undefined, now), key });
  } catch (err) {
    if (err instanceof InvalidInputError) throw badRequest(err.message);
    throw err;
  }
}

async function list(deps: KeyRoutesDeps, ctx: AuthedRequestContext): Promise<void> {
  const now = deps.clock.now();
  const asked = ctx.url.searchParams.get('tenant');
  // The operator lists every tenant's keys unless it asks for one; a tenant admin its own, whatever it asks.
  const tenant = ctx.principal.operator ? (asked ?? undefined) : ctx.principal.tenantId;
  const data = deps.keys.list(tenant).map((r) => keyView(r, deps.keys.lastUsed(r.keyId), now));
  sendJson(ctx.res, 200, { data });
}

async function get(deps: KeyRoutesDeps, ctx: AuthedRequestContext): Promise<void> {
  const record = visibleKey(deps, ctx);
  sendJson(ctx.res, 200, keyView(record, deps.keys.lastUsed(record.keyId), deps.clock.now()));
}

/** Revokes; revoking a revoked key answers it unchanged (a retried DELETE is not an error). */
async function revoke(deps: KeyRoutesDeps, ctx: AuthedRequestContext): Promise<void> {
  const record = visibleKey(deps, ctx);
  const now = deps.clock.now();
  let current = record;
  if (record.revokedAt === undefined) {
    current = { ...record, revokedAt: now };
    await audit(deps, keyAuditEvent('api_key.revoked', ctx.principal, current, ctx, now));
    await deps.keys.put(current);
    ctx.log.info({ key_id: record.keyId, key_tenant: record.tenantId }, 'API key revoked');
  }
  ctx.annotate({ key_id: record.keyId });
  sendJson(ctx.res, 200, keyView(current, deps.keys.lastUsed(record.keyId), now));
}

export function keyRoutes(deps: KeyRoutesDeps): RouteSpec[] {
  return [
    { method: 'POST', path: KEYS_PATH, auth: 'api_key', handler: (ctx) => create(deps, ctx) },
    { method: 'GET', path: KEYS_PATH, auth: 'api_key', handler: (ctx) => list(deps, ctx) },
    { method: 'GET', path: `${KEYS_PATH}/:id`, auth: 'api_key', handler: (ctx) => get(deps, ctx) },
    { method: 'DELETE', path: `${KEYS_PATH}/:id`, auth: 'api_key', handler: (ctx) => revoke(deps, ctx) },
  ];
}
