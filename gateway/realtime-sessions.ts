/**
 * Real-time session history under /v1/realtime/sessions: list (cursor pagination; filters status, since/until, model),
 * one session, its transcript (JSON) and recording (WAV), and delete. Rows come from ClickHouse `realtime_sessions`
 * (the session sink projects the session actor's snapshots there, so a live session reads `active`), artifacts from
 * the artifact store. A live session cannot be deleted (409 session_active); a deleted one is gone (404): its
 * artifacts are removed, its row hidden, its snapshot tombstoned by its actor (rt.session.deleted), and it is audited.
 */
import type { Clock } from '../core/clock.js';
import { DependencyUnavailableError } from '../core/errors.js';
import { LOG } from '../core/observability-names.js';
import { NotFoundError } from '../storage/index.js';
import { SCHEMA_VERSION, SESSION_STATUSES, type AuditEvent, type SessionStatus } from '../streams/index.js';
import { HttpError, badRequest, notFound } from './errors.js';
import { sendArtifact } from './artifact-download.js';
import { sendJson } from './http-exchange.js';
import type { AuthedRequestContext, RouteSpec } from './http-server.js';
import type { ArtifactStore, PublishHeaders } from './ports.js';

export const REALTIME_SESSIONS_PATH = '/v1/realtime/sessions';

/** One session as the history API sees it: a projection of the newest `realtime_sessions` row. */
export interface SessionView {
  readonly sessionId: string;
  readonly tenantId: string;
  readonly keyId: string;
  readonly status: SessionStatus;
  readonly model: string;
  readonly language?: string | undefined;
  readonly dialect: string;
  /** Epoch ms. */
  readonly startedAt: number;
  readonly endedAt?: number | undefined;
  readonly audioSeconds: number;
  readonly utterances: number;
  readonly closeCode?: number | undefined;
  readonly closeReason?: string | undefined;
  readonly retention: boolean;
  /** Seconds its data is kept after it ends (then the purge worker deletes it); absent: until deleted. */
  readonly retentionSeconds?: number | undefined;
  readonly audioKey?: string | undefined;
  readonly transcriptKey?: string | undefined;
  readonly enhanceJobId?: string | undefined;
  readonly latency?: { readonly firstPartialP50Ms: number; readonly firstPartialP95Ms: number; readonly finalP50Ms: number; readonly finalP95Ms: number } | undefined;
  readonly requestId: string;
  readonly traceId?: string | undefined;
}

/** Position after the last session of a page: sessions are listed newest first, ties broken by id. */
export interface SessionCursor {
  readonly startedAt: number;
  readonly sessionId: string;
}

export interface SessionListFilter {
  readonly status?: SessionStatus | undefined;
  /** Epoch ms, inclusive. */
  readonly since?: number | undefined;
  /** Epoch ms, exclusive. */
  readonly until?: number | undefined;
  readonly model?: string | undefined;
  readonly after?: SessionCursor | undefined;
  readonly limit: number;
}

export interface SessionHistoryReader {
  /** Sessions of the tenant, newest first, deleted ones left out; at most `limit`. */
  listSessions(tenantId: string, filter: SessionListFilter): Promise<SessionView[]>;
  getSession(sessionId: string, tenantId: string): Promise<SessionView | undefined>;
  /** Hides the session's row at once (a newer row flagged deleted). */
  markSessionDeleted(view: SessionView, at: number): Promise<void>;
}

export interface SessionEventPublisher {
  /** `rt.session.deleted` on realtime.events keyed by session id: the session's actor tombstones its snapshot. */
  publishSessionDeleted(sessionId: string, at: number, headers: PublishHeaders): Promise<void>;
  publishAudit(event: AuditEvent): Promise<void>;
}

export interface RealtimeSessionsDeps {
  readonly reader: SessionHistoryReader;
  readonly publisher: SessionEventPublisher;
  readonly store: ArtifactStore;
  readonly clock: Clock;
}

export const SESSION_LIST_DEFAULT_LIMIT = 20;
export const SESSION_LIST_MAX_LIMIT = 100;

const sessionActive = (id: string, what: string): HttpError => new HttpError(409, 'session_active', `session ${id} is still active; ${what}`);

export function encodeCursor(c: SessionCursor): string {
  return Buffer.from(`${c.startedAt}.${c.sessionId}`, 'utf8').toString('base64url');
}

export function decodeCursor(raw: string): SessionCursor {
  const text = Buffer.from(raw, 'base64url').toString('utf8');
  const dot = text.indexOf('.');
  const startedAt = Number(text.slice(0, dot));
  const sessionId = text.slice(dot + 1);
  if (dot <= 0 || !Number.isSafeInteger(startedAt) || sessionId === '') throw badRequest('cursor is not a cursor this API returned');
  return { startedAt, sessionId };
}

/** An ISO 8601 time or epoch milliseconds. */
function parseTime(name: string, raw: string): number {
  const ms = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(ms)) throw badRequest(`${name} "${raw}" is not an ISO 8601 time or epoch milliseconds`);
  return ms;
}

/** Validates the list query; throws a 400 naming the parameter. Pure. */
export function parseListQuery(query: URLSearchParams): SessionListFilter {
  const known = new Set(['status', 'since', 'until', 'model', 'limit', 'cursor']);
  for (const name of query.keys()) if (!known.has(name)) throw badRequest(`unknown query parameter "${name}"; accepted: ${[...known].join(', ')}`);
  const status = query.get('status') ?? undefined;
  if (status !== undefined && !(SESSION_STATUSES as readonly string[]).includes(status)) {
    throw badRequest(`status "${status}" must be one of ${SESSION_STATUSES.join(', ')}`);
  }
  const limitRaw = query.get('limit');
  const limit = limitRaw === null ? SESSION_LIST_DEFAULT_LIMIT : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > SESSION_LIST_MAX_LIMIT) throw badRequest(`limit must be an integer from 1 to ${SESSION_LIST_MAX_LIMIT}`);
  const since = query.get('since');
  const until = query.get('until');
  const cursor = query.get('cursor');
  const model = query.get('model');
  return {
    status: status as SessionStatus | undefined, limit,
    since: since !== null ? parseTime('since', since) : undefined,
    until: until !== null ? parseTime('until', until) : undefined,
    model: model !== null && model !== '' ? model : undefined,
    after: cursor !== null && cursor !== '' ? decodeCursor(cursor) : undefined,
  };
}

const iso = (ms: number | undefined): string | null => (ms !== undefined && ms > 0 ? new Date(ms).toISOString() : null);

/** The API body of one session. */
export function sessionBody(view: SessionView): Record<string, unknown> {
  const live = view.status === 'active';
  return {
    id: view.sessionId,
    status: view.status,
    model: view.model,
    language: view.language ?? null,
    dialect: view.dialect,
    started_at: iso(view.startedAt),
    ended_at: iso(view.endedAt),
    duration_seconds: view.endedAt !== undefined && view.endedAt > 0 ? Math.max(0, (view.endedAt - view.startedAt) / 1000) : null,
    audio_seconds: view.audioSeconds,
    utterances: view.utterances,
    close_code: view.closeCode ?? null,
    close_reason: view.closeReason ?? null,
    retention: view.retention,
    audio_available: !live && view.audioKey !== undefined,
    transcript_available: !live && view.transcriptKey !== undefined,
    enhance_job_id: view.enhanceJobId ?? null,
    latency: view.latency
      ? {
        first_partial_p50_ms: view.latency.firstPartialP50Ms, first_partial_p95_ms: view.latency.firstPartialP95Ms,
        final_p50_ms: view.latency.finalP50Ms, final_p95_ms: view.latency.finalP95Ms,
      }
      : null,
    request_id: view.requestId,
    trace_id: view.traceId ?? null,
  };
}

async function loadSession(deps: RealtimeSessionsDeps, ctx: AuthedRequestContext): Promise<SessionView> {
  const sessionId = ctx.params['id'] ?? '';
  ctx.annotate({ [LOG.sessionId]: sessionId });
  const view = await deps.reader.getSession(sessionId, ctx.principal.tenantId);
  if (!view) throw notFound(`real-time session ${sessionId} not found`);
  return view;
}

async function list(deps: RealtimeSessionsDeps, ctx: AuthedRequestContext): Promise<void> {
  const filter = parseListQuery(ctx.url.searchParams);
  // One more than asked: whether a next page exists without a count query.
  const rows = await deps.reader.listSessions(ctx.principal.tenantId, { ...filter, limit: filter.limit + 1 });
  const page = rows.slice(0, filter.limit);
  const lastRow = page[page.length - 1];
  sendJson(ctx.res, 200, {
    sessions: page.map(sessionBody),
    next_cursor: rows.length > filter.limit && lastRow ? encodeCursor({ startedAt: lastRow.startedAt, sessionId: lastRow.sessionId }) : null,
  });
}

async function get(deps: RealtimeSessionsDeps, ctx: AuthedRequestContext): Promise<void> {
  sendJson(ctx.res, 200, sessionBody(await loadSession(deps, ctx)));
}

/** The key of an ended session's artifact; 409 while live, 404 when none was kept. */
function artifactKey(view: SessionView, key: string | undefined, what: string): string {
  if (view.status === 'active') throw sessionActive(view.sessionId, `its ${what} is stored when it ends`);
  if (key === undefined) {
    throw notFound(view.retention ? `session ${view.sessionId} has no ${what}` : `session ${view.sessionId} ran with retention off: no ${what} was kept`);
  }
  return key;
}

async function readArtifact(deps: RealtimeSessionsDeps, view: SessionView, k: string | undefined, what: string): Promise<Buffer> {
  const key = artifactKey(view, k, what);
  try {
    return await deps.store.get(key);
  } catch (err) {
    if (err instanceof NotFoundError) throw notFound(`the ${what} of session ${view.sessionId} is not in the artifact store`);
    throw err;
  }
}

async function transcript(deps: RealtimeSessionsDeps, ctx: AuthedRequestContext): Promise<void> {
  const view = await loadSession(deps, ctx);
  const body = await readArtifact(deps, view, view.transcriptKey, 'transcript');
  ctx.res.send(200, { 'content-type': 'application/json' }, body);
}

async function audio(deps: RealtimeSessionsDeps, ctx: AuthedRequestContext): Promise<void> {
  const view = await loadSession(deps, ctx);
  const key = artifactKey(view, view.audioKey, 'recording');
  try {
    // Streamed with byte ranges: an hour-long recording is 115 MB.
    await sendArtifact(deps.store, ctx.req, ctx.res, { key, contentType: 'audio/wav', filename: `${view.sessionId}.wav` });
  } catch (err) {
    if (err instanceof NotFoundError) throw notFound(`the recording of session ${view.sessionId} is not in the artifact store`);
    throw err;
  }
}

/** Who deletes a session: a request, or the purge worker (gateway/retention-purge.ts). */
export type SessionOrigin = Pick<AuthedRequestContext, 'principal' | 'requestId' | 'traceId' | 'log'>;

/**
 * Deletes a finished session: audited first (an audit that cannot be recorded refuses the delete: 503), then its
 * artifacts, then its row is hidden, then its actor is told to tombstone the snapshot; `data.deleted` records what was
 * removed and why (`request`, or `retention` from the purge worker). A live session: 409.
 */
export async function removeSession(deps: RealtimeSessionsDeps, ctx: SessionOrigin, view: SessionView, reason = 'request'): Promise<void> {
  if (view.status === 'active') throw sessionActive(view.sessionId, 'it can be deleted once it has ended');
  const now = deps.clock.now();
  const audit = (eventType: 'realtime.session.deleted' | 'data.deleted', details: Record<string, unknown>): AuditEvent => ({
    v: SCHEMA_VERSION, type: 'analytics.audit_event', time: deps.clock.now(), eventId: `${view.sessionId}:${eventType}`,
    eventType, tenantId: view.tenantId, actorKeyId: ctx.principal.keyId, jobId: view.enhanceJobId ?? '',
    sessionId: view.sessionId, audioDurationSeconds: view.audioSeconds, requestId: ctx.requestId, traceId: ctx.traceId ?? '',
    details: JSON.stringify(details),
  });
  try {
    await deps.publisher.publishAudit(audit('realtime.session.deleted', { status: view.status, reason }));
  } catch (err) {
    throw new DependencyUnavailableError('could not record the audit event', { cause: err });
  }
  const prefix = `sessions/${view.sessionId}/`;
  const removed = await deps.store.deletePrefix(prefix);
  await deps.reader.markSessionDeleted(view, now);
  try {
    await deps.publisher.publishSessionDeleted(view.sessionId, now, { requestId: ctx.requestId, tenantId: view.tenantId });
  } catch (err) {
    ctx.log.warn({ [LOG.sessionId]: view.sessionId, err: err instanceof Error ? err.message : String(err) }, 'rt.session.deleted not published; the snapshot is removed at its retention instead');
  }
  try {
    await deps.publisher.publishAudit(audit('data.deleted', { artifacts: removed, reason }));
  } catch (err) {
    throw new DependencyUnavailableError('the session was deleted but data.deleted could not be recorded', { cause: err });
  }
  ctx.log.info({ [LOG.sessionId]: view.sessionId, artifacts: removed, reason }, 'real-time session deleted');
}

async function remove(deps: RealtimeSessionsDeps, ctx: AuthedRequestContext): Promise<void> {
  await removeSession(deps, ctx, await loadSession(deps, ctx));
  ctx.res.send(204);
}

export function realtimeSessionRoutes(deps: RealtimeSessionsDeps): RouteSpec[] {
  const p = REALTIME_SESSIONS_PATH;
  return [
    { method: 'GET', path: p, auth: 'api_key', handler: (ctx) => list(deps, ctx) },
    { method: 'GET', path: `${p}/:id`, auth: 'api_key', handler: (ctx) => get(deps, ctx) },
    { method: 'GET', path: `${p}/:id/transcript`, auth: 'api_key', handler: (ctx) => transcript(deps, ctx) },
    { method: 'GET', path: `${p}/:id/audio`, auth: 'api_key', handler: (ctx) => audio(deps, ctx) },
    { method: 'DELETE', path: `${p}/:id`, auth: 'api_key', handler: (ctx) => remove(deps, ctx) },
  ];
}
