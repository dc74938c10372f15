/**
 * `GET /v1/audio/transcriptions`: the caller's jobs, newest first (or oldest first), filtered by status, model and
 * creation time, in pages joined by an opaque cursor. The cursor is a position (created_ms, job_id), not an offset,
 * so jobs created while a client pages never shift a page: nothing is missed or repeated.
 */
import { JOB_STATUSES, type JobStatus } from '../streams/index.js';
import { badRequest } from './errors.js';
import { sendJson } from './http-exchange.js';
import type { AuthedRequestContext, RouteSpec } from './http-server.js';
import { apiFailure } from './job-view.js';
import type { JobListQuery, JobReader, JobView } from './ports.js';

export const LIST_MAX_LIMIT = 100;
const LIST_DEFAULT_LIMIT = 20;
const SORTS = { created_desc: 'desc', created_asc: 'asc' } as const;

interface Cursor { readonly o: 'desc' | 'asc'; readonly c: number; readonly j: string }

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c), 'utf8').toString('base64url');
}

function decodeCursor(raw: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Partial<Cursor>;
    if ((c.o === 'desc' || c.o === 'asc') && typeof c.c === 'number' && Number.isFinite(c.c) && typeof c.j === 'string') return { o: c.o, c: c.c, j: c.j };
  } catch {
    // answered below
  }
  throw badRequest('cursor is not one this server issued (pass next_cursor back unchanged)');
}

/** An ISO 8601 time or epoch milliseconds (also the audit trail's `since` and `until`). */
export function parseTime(name: string, raw: string): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(n)) throw badRequest(`${name} "${raw}" must be an ISO 8601 time or epoch milliseconds`);
  return n;
}

/** The query string → a listing query (asking for one more row than the page, to know whether more follow). Pure. */
export function parseListQuery(q: URLSearchParams): JobListQuery {
  const limitRaw = q.get('limit');
  const limit = limitRaw === null ? LIST_DEFAULT_LIMIT : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > LIST_MAX_LIMIT) throw badRequest(`limit must be an integer from 1 to ${LIST_MAX_LIMIT}`);
  const sortRaw = q.get('sort') ?? 'created_desc';
  if (!(sortRaw in SORTS)) throw badRequest(`sort "${sortRaw}" must be one of ${Object.keys(SORTS).join(', ')}`);
  const order = SORTS[sortRaw as keyof typeof SORTS];
  const cursorRaw = q.get('cursor');
  const cursor = cursorRaw ? decodeCursor(cursorRaw) : undefined;
  if (cursor && cursor.o !== order) throw badRequest('cursor belongs to a listing in the other order; keep the sort of the first page');
  const statusRaw = q.get('status');
  const statuses = statusRaw ? statusRaw.split(',').map((s) => s.trim()) : undefined;
  for (const s of statuses ?? []) {
    if (!(JOB_STATUSES as readonly string[]).includes(s)) throw badRequest(`status "${s}" must be one of ${JOB_STATUSES.join(', ')}`);
  }
  const from = q.get('created_after');
  const until = q.get('created_before');
  return {
    limit: limit + 1, order,
    ...(cursor ? { after: { createdAt: cursor.c, jobId: cursor.j } } : {}),
    ...(statuses ? { statuses: statuses as JobStatus[] } : {}),
    ...(q.get('model') ? { model: q.get('model') ?? '' } : {}),
    ...(from ? { createdFrom: parseTime('created_after', from) } : {}),
    ...(until ? { createdUntil: parseTime('created_before', until) } : {}),
    ...(q.get('tag') ? { tag: q.get('tag') ?? '' } : {}),
  };
}

function summary(v: JobView): Record<string, unknown> {
  return {
    id: v.jobId, status: v.status, model: v.model ?? null, language: v.language ?? null,
    created_at: new Date(v.createdAt).toISOString(), completed_at: v.completedAt ? new Date(v.completedAt).toISOString() : null,
    audio_duration_seconds: v.audioDurationSeconds ?? null, error: apiFailure(v.error), request_id: v.requestId,
    name: v.labels?.name || null, tags: v.labels?.tags ?? [],
  };
}

async function listJobs(reader: JobReader, ctx: AuthedRequestContext): Promise<void> {
  const query = parseListQuery(ctx.url.searchParams);
  const rows = await reader.listJobs(ctx.principal.tenantId, query);
  const page = rows.slice(0, query.limit - 1);
  const last = page[page.length - 1];
  const more = rows.length > page.length;
  sendJson(ctx.res, 200, {
    data: page.map(summary),
    has_more: more,
    next_cursor: more && last ? encodeCursor({ o: query.order, c: last.createdAt, j: last.jobId }) : null,
  });
}

export function jobListingRoutes(path: string, reader: JobReader): RouteSpec[] {
  return [{ method: 'GET', path, auth: 'api_key', handler: (ctx) => listJobs(reader, ctx) }];
}
