/**
 * `GET /v1/audit` (admin): the tenant's audit trail, newest first, filtered by event type, job, session, key and time,
 * in pages joined by an opaque cursor (a position: time_ms, event_id). A tenant's admin sees its own tenant's events;
 * the bootstrap key sees every tenant's (or one, with `tenant=`), including refusals of keys nobody could name.
 */
import { AUDIT_EVENT_TYPES } from '../streams/index.js';
import { badRequest } from './errors.js';
import { sendJson } from './http-exchange.js';
import type { AuthedRequestContext, RouteSpec } from './http-server.js';
import { parseTime } from './job-listing.js';

export const AUDIT_PATH = '/v1/audit';
const MAX_LIMIT = 500;
const DEFAULT_LIMIT = 100;

export interface AuditQuery {
  /** Undefined: every tenant (the operator only). */
  readonly tenantId: string | undefined;
  readonly eventTypes?: readonly string[];
  readonly jobId?: string;
  readonly sessionId?: string;
  readonly keyId?: string;
  readonly since?: number;
  readonly until?: number;
  /** Rows strictly before this position (newest first). */
  readonly before?: { readonly timeMs: number; readonly eventId: string };
  readonly limit: number;
}

export interface AuditRow {
  readonly eventId: string;
  readonly timeMs: number;
  readonly eventType: string;
  readonly tenantId: string;
  readonly keyId: string;
  readonly jobId: string;
  readonly sessionId: string;
  readonly requestId: string;
  readonly traceId: string;
  readonly audioDurationSeconds: number;
  readonly details: string;
}

export interface AuditReader {
  list(q: AuditQuery): Promise<AuditRow[]>;
}

const ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The query string → an audit query for `tenantId` (one more row than the page, to know whether more follow). Pure. */
export function parseAuditQuery(q: URLSearchParams, tenantId: string | undefined): AuditQuery {
  const limit = q.get('limit') === null ? DEFAULT_LIMIT : Number(q.get('limit'));
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw badRequest(`limit must be an integer from 1 to ${MAX_LIMIT}`);
  const types = q.get('event_type')?.split(',').map((t) => t.trim()).filter((t) => t !== '');
  for (const t of types ?? []) if (!(AUDIT_EVENT_TYPES as readonly string[]).includes(t)) throw badRequest(`event_type "${t.slice(0, 40)}" must be one of ${AUDIT_EVENT_TYPES.join(', ')}`);
  const ids: Record<string, string> = {};
  for (const name of ['job_id', 'session_id', 'key_id'] as const) {
    const v = q.get(name);
    if (v === null) continue;
    if (!ID.test(v)) throw badRequest(`${name} is not an id`);
    ids[name] = v;
  }
  let before: AuditQuery['before'];
  const cursor = q.get('cursor');
  if (cursor !== null) {
    try {
      const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { t?: unknown; e?: unknown };
      if (typeof c.t === 'number' && typeof c.e === 'string') before = { timeMs: c.t, eventId: c.e };
    } catch {
      // answered below
    }
    if (!before) throw badRequest('cursor is not one this server issued (pass next_cursor back unchanged)');
  }
  const since = q.get('since');
  const until = q.get('until');
  return {
    tenantId, limit: limit + 1,
    ...(types && types.length > 0 ? { eventTypes: types } : {}),
    ...(ids['job_id'] !== undefined ? { jobId: ids['job_id'] } : {}),
    ...(ids['session_id'] !== undefined ? { sessionId: ids['session_id'] } : {}),
    ...(ids['key_id'] !== undefined ? { keyId: ids['key_id'] } : {}),
    ...(since !== null ? { since: parseTime('since', since) } : {}),
    ...(until !== null ? { until: parseTime('until', until) } : {}),
    ...(before ? { before } : {}),
  };
}

function detailsOf(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

async function list(reader: AuditReader, ctx: AuthedRequestContext): Promise<void> {
  const asked = ctx.url.searchParams.get('tenant');
  // A tenant's admin reads its own tenant whatever it asks; only the operator reads others'.
  const tenantId = ctx.principal.operator ? (asked ?? undefined) : ctx.principal.tenantId;
  const query = parseAuditQuery(ctx.url.searchParams, tenantId);
  const rows = await reader.list(query);
  const page = rows.slice(0, query.limit - 1);
  const last = page[page.length - 1];
  sendJson(ctx.res, 200, {
    data: page.map((r) => ({
      id: r.eventId, time: new Date(r.timeMs).toISOString(), event_type: r.eventType, tenant: r.tenantId, key_id: r.keyId || null,
      job_id: r.jobId || null, session_id: r.sessionId || null, request_id: r.requestId || null, trace_id: r.traceId || null,
      audio_duration_seconds: r.audioDurationSeconds, details: detailsOf(r.details),
    })),
    next_cursor: rows.length > page.length && last ? Buffer.from(JSON.stringify({ t: last.timeMs, e: last.eventId }), 'utf8').toString('base64url') : null,
  });
}

export function auditRoutes(reader: AuditReader): RouteSpec[] {
  return [{ method: 'GET', path: AUDIT_PATH, auth: 'api_key', handler: (ctx) => list(reader, ctx) }];
}
