/**
 * The gateway's HTTP plumbing, independent of the server underneath (see http-exchange.ts): a router over route
 * templates (`/v1/audio/transcriptions/:id`) and one request handler that gives every request its correlation
 * (X-Request-ID in, out, on every response including errors; X-Trace-ID when a span is recording), one HTTP server
 * span named `<METHOD> <route template>` continuing an incoming `traceparent`, the gateway metrics labelled by
 * template, one structured log line, and errors as `{"error": {"code", "message"}}`.
 *
 * WebSocket routes are GET routes of the same router: authentication and admission run on the upgrade request
 * like on any request, so a refused upgrade is an ordinary HTTP error answer.
 */
import { performance } from 'node:perf_hooks';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace, type Context, type Span } from '@opentelemetry/api';
import type { Logger } from '../core/logger.js';
import type { GatewayMetrics } from '../core/metrics.js';
import { ATTR, LOG } from '../core/observability-names.js';
import { presentedAuthorization, presentedKeyId, type Authenticator, type Principal } from './auth.js';
import { requireAccess, type RouteAccess } from './route-access.js';
import { dropBody } from './job-admission.js';
import { rateHeaders, type RateDecision } from './limits/request-window.js';
import { HttpError, quoteInput, toHttpError } from './errors.js';
import { sendJson, type HttpRequest, type HttpResponse } from './http-exchange.js';
import { newRequestId, sanitizeRequestId } from './ids.js';

export const TRACER_NAME = 'dalston-gateway';
/** A rate-limited request's body is read and dropped up to this size before the 429 (larger ones are cut). */
const RATE_REFUSAL_DRAIN_MAX_BYTES = 1024 * 1024;
export const REQUEST_ID_HEADER = 'X-Request-ID';
export const TRACE_ID_HEADER = 'X-Trace-ID';
/** `route` label of requests that matched no route (the raw path is never a label). */
export const UNMATCHED_ROUTE = 'unmatched';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export interface RequestContext {
  readonly req: HttpRequest;
  readonly res: HttpResponse;
  readonly requestId: string;
  readonly method: string;
  /** The matched route template, e.g. `/v1/audio/transcriptions/:id`. */
  readonly route: string;
  /** Decoded path parameters of the template. */
  readonly params: Readonly<Record<string, string>>;
  readonly url: URL;
  /** Trace id of the request's server span, undefined when tracing is off. */
  readonly traceId: string | undefined;
  /** Logger bound to `request_id` (and the tenant once authenticated). */
  readonly log: Logger;
  readonly principal: Principal | undefined;
  /** Adds fields (e.g. job_id) to the request's log line and span attributes. */
  annotate(fields: Readonly<Record<string, string | number>>): void;
}

export interface AuthedRequestContext extends RequestContext {
  readonly principal: Principal;
}

interface RouteBase {
  readonly method: HttpMethod;
  /** Template with `:name` segments. */
  readonly path: string;
  /** Opens an HTTP server span for the request. @default true (health probes and scrapes pass false) */
  readonly traced?: boolean;
  /**
   * `self`: an `auth: 'none'` route that authenticates in its handler because it also takes credentials other than a
   * key (WebSocket routes with single-use tokens); it checks the access table's scope itself.
   */
  readonly credentials?: 'self';
}
export type RouteSpec =
  | (RouteBase & { readonly auth: 'none'; readonly handler: (ctx: RequestContext) => Promise<void> })
  | (RouteBase & { readonly auth: 'api_key'; readonly handler: (ctx: AuthedRequestContext) => Promise<void> });

type Segment = { readonly literal: string } | { readonly param: string };

interface CompiledRoute {
  readonly spec: RouteSpec;
  readonly segments: readonly Segment[];
}

export type RouteMatch =
  | { readonly kind: 'found'; readonly route: RouteSpec; readonly params: Record<string, string> }
  | { readonly kind: 'method_not_allowed'; readonly template: string; readonly allow: readonly HttpMethod[] }
  | { readonly kind: 'not_found' };

/**
 * Why a raw request path must not be routed, or undefined: a backslash, an empty segment (`//`) or a dot segment
 * (`.`, `..`, also percent-encoded). URL parsing would quietly rewrite such a path into one the client did not send,
 * so a handler would answer for a path the raw request does not name. One trailing slash is allowed. Pure.
 */
export function pathProblem(rawUrl: string): string | undefined {
  const path = rawUrl.split(/[?#]/, 1)[0] ?? '';
  if (path.includes('\\')) return 'the path contains a backslash';
  const segments = path.replace(/\/$/, '').split('/').slice(1);
  for (const seg of segments) {
    if (seg === '') return 'the path contains an empty segment (//)';
    let decoded: string;
    try {
      decoded = decodeURIComponent(seg);
    } catch {
      return 'the path is not valid percent-encoding';
    }
    if (decoded === '.' || decoded === '..') return 'the path contains a dot segment (. or ..)';
  }
  return undefined;
}

function splitPath(path: string): string[] {
  return path.split('/').filter((s) => s.length > 0);
}

/**
 * Route templates → handlers. Literal segments beat parameters when two templates could both match. With an access
 * table (the gateway passes gateway/route-access.ts), a route the table does not name, or names inconsistently with
 * the route's own auth, cannot be registered.
 */
export class Router {
  private readonly routes: CompiledRoute[] = [];
  readonly #access: ((method: string, template: string) => RouteAccess) | undefined;

  constructor(access?: (method: string, template: string) => RouteAccess) {
    this.#access = access;
  }

  /** The access table's entry for a registered route (`any` when the router has no table). */
  access(route: RouteSpec): RouteAccess {
    return this.#access ? this.#access(route.method, route.path) : 'any';
  }

  add(spec: RouteSpec): this {
    if (this.#access) {
      const access = this.#access(spec.method, spec.path);
      const keyless = spec.auth === 'none' && spec.credentials !== 'self';
      if ((access === 'public') !== keyless) throw new Error(`route ${spec.method} ${spec.path} is ${access} in the access table but auth '${spec.auth}' in its spec`);
    }
    const segments = splitPath(spec.path).map((s): Segment => (s.startsWith(':') ? { param: s.slice(1) } : { literal: s }));
    if (this.routes.some((r) => r.spec.method === spec.method && r.spec.path === spec.path)) {
      throw new Error(`route ${spec.method} ${spec.path} registered twice`);
    }
    this.routes.push({ spec, segments });
    return this;
  }

  /** Throws HttpError 400 when a path parameter is not valid percent-encoding. */
  match(method: string, path: string): RouteMatch {
    const parts = splitPath(path);
    let best: { route: CompiledRoute; params: Record<string, string>; literals: number }[] = [];
    for (const route of this.routes) {
      if (route.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let literals = 0;
      let ok = true;
      route.segments.forEach((seg, i) => {
        const part = parts[i] ?? '';
        if ('literal' in seg) {
          if (seg.literal === part) literals++;
          else ok = false;
        } else {
          params[seg.param] = part;
        }
      });
      if (!ok) continue;
      if (best.length === 0 || literals > (best[0]?.literals ?? 0)) best = [{ route, params, literals }];
      else if (literals === best[0]?.literals) best.push({ route, params, literals });
    }
    if (best.length === 0) return { kind: 'not_found' };
    // HEAD is GET without the body (the exchange leaves the body out) wherever GET is served.
    const hit = best.find((b) => b.route.spec.method === method) ?? (method === 'HEAD' ? best.find((b) => b.route.spec.method === 'GET') : undefined);
    if (!hit) {
      const first = best[0];
      const allow = best.map((b) => b.route.spec.method);
      if (allow.includes('GET')) allow.push('HEAD');
      return { kind: 'method_not_allowed', template: first ? first.route.spec.path : UNMATCHED_ROUTE, allow };
    }
    const decoded: Record<string, string> = {};
    for (const [k, v] of Object.entries(hit.params)) {
      try {
        decoded[k] = decodeURIComponent(v);
      } catch {
        throw new HttpError(400, 'invalid_request', `path parameter ${k} is not valid percent-encoding`);
      }
    }
    return { kind: 'found', route: hit.route.spec, params: decoded };
  }
}

export interface RequestListenerOptions {
  readonly router: Router;
  readonly authenticator: Authenticator;
  readonly log: Logger;
  readonly metrics: GatewayMetrics;
  /** Per-tenant request limits; without it nothing is counted. */
  readonly limiter?: { take(tenantId: string, now: number): RateDecision | undefined };
  /** Told of every 401 and 403 (the gateway audits them as `access.denied`); must not throw. */
  readonly onDenied?: (denial: AccessDenial) => void;
}

/** A refused request, for the audit trail. */
export interface AccessDenial {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly method: string;
  readonly route: string;
  readonly requestId: string;
  readonly traceId: string | undefined;
  /** Set when the key was valid but lacked the scope. */
  readonly principal: Principal | undefined;
  /** The id of the issued key presented, valid or not (revoked, expired, wrong secret). */
  readonly presentedKeyId: string | undefined;
  readonly sourceAddress: string | undefined;
}

export function sendError(res: HttpResponse, err: HttpError): void {
  sendJson(res, err.status, { error: { code: err.apiCode, message: err.message } }, err.headers);
}

/** Log fields that are also contract span attributes (`job_id` → `dalston.job_id`). */
const SPAN_ATTR_OF_LOG_FIELD: Readonly<Record<string, string>> = {
  [LOG.jobId]: ATTR.jobId,
  [LOG.taskId]: ATTR.taskId,
  [LOG.tenantId]: ATTR.tenantId,
};

/** Headers whose repetition makes the request ambiguous (which key? which length?): a 400, never a guess. */
const AMBIGUOUS_WHEN_REPEATED: ReadonlySet<string> = new Set(['authorization', 'content-length', 'content-type', 'host']);

/** 5xx but 501: a 501 means the client asked for something this server does not offer, not that it failed. */
function isServerFault(status: number): boolean {
  return status >= 500 && status !== 501;
}

function methodLabel(method: string | undefined): string {
  return (HTTP_METHODS as readonly string[]).includes(method ?? '') ? (method as string) : 'OTHER';
}

/**
 * The request's server span, continuing an incoming `traceparent`. The gateway opens it itself: no HTTP
 * instrumentation sees requests that uWebSockets.js receives.
 */
function openServerSpan(req: HttpRequest, method: string, template: string | undefined, requestId: string): { span: Span; ctx: Context } {
  const name = template === undefined ? method : `${method} ${template}`;
  const attributes = {
    [ATTR.requestId]: requestId,
    'http.request.method': method,
    ...(template !== undefined ? { 'http.route': template } : {}),
  };
  // ROOT, not the active context: the handler may run in whatever context the server was started from.
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  const span = trace.getTracer(TRACER_NAME).startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  return { span, ctx: trace.setSpan(parent, span) };
}

function causeMessage(err: HttpError): string | undefined {
  const cause = err.cause;
  if (cause === undefined) return undefined;
  return cause instanceof Error ? `${cause.name}: ${cause.message}` : JSON.stringify(cause);
}

/** The request handler. Never throws; every outcome ends in one response (or upgrade) and one log line. */
export function createRequestHandler(options: RequestListenerOptions): (req: HttpRequest, res: HttpResponse) => void {
  const { router, authenticator, log, metrics } = options;

  return (req, res) => {
    const started = performance.now();
    const method = methodLabel(req.method);
    const requestId = sanitizeRequestId(req.headers['x-request-id']) ?? newRequestId();
    res.setHeader(REQUEST_ID_HEADER, requestId);

    let url: URL;
    let match: RouteMatch;
    let early: HttpError | undefined;
    try {
      const problem = pathProblem(req.url);
      if (problem !== undefined) throw new HttpError(400, 'invalid_request', `${problem}; send the path as the API documents it`);
      const repeated = (req.repeatedHeaders ?? []).filter((h) => AMBIGUOUS_WHEN_REPEATED.has(h));
      if (repeated.length > 0) throw new HttpError(400, 'invalid_request', `the ${repeated.join(', ')} header was sent more than once; send it once`);
      const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      if (encoding !== 'identity' && encoding !== '') {
        throw new HttpError(415, 'unsupported_media_type', `Content-Encoding ${quoteInput(encoding, 40)} is not accepted; send the body uncompressed`);
      }
      url = new URL(req.url, 'http://gateway.invalid');
      match = router.match(method, url.pathname);
    } catch (err) {
      url = new URL('http://gateway.invalid/');
      match = { kind: 'not_found' };
      early = toHttpError(err);
    }
    const template = match.kind === 'found' ? match.route.path : match.kind === 'method_not_allowed' ? match.template : undefined;
    const traced = match.kind !== 'found' || match.route.traced !== false;
    const server = traced ? openServerSpan(req, method, template, requestId) : undefined;
    const traceId = server && trace.isSpanContextValid(server.span.spanContext()) ? server.span.spanContext().traceId : undefined;
    if (traceId !== undefined) res.setHeader(TRACE_ID_HEADER, traceId);

    const fields: Record<string, string | number> = {};
    let errorForLog: HttpError | undefined;
    let principal: Principal | undefined;
    let reqLog = log.child({ [LOG.requestId]: requestId });

    const finish = () => {
      const seconds = (performance.now() - started) / 1000;
      const route = template ?? UNMATCHED_ROUTE;
      const status = res.statusCode ?? 499; // 499: the client went away before any answer
      metrics.requests.inc({ method, route, status: String(status) });
      metrics.requestDuration.observe({ method, route }, seconds);
      const line = {
        method, route, status, duration_ms: Math.round(seconds * 1e6) / 1e3, ...fields,
        ...(errorForLog ? { error_code: errorForLog.apiCode, error_message: errorForLog.message } : {}),
        ...(errorForLog && isServerFault(errorForLog.status) ? { err: causeMessage(errorForLog) } : {}),
      };
      const write = () => {
        if (isServerFault(status)) reqLog.error(line, 'request failed');
        else if (status >= 400) reqLog.warn(line, 'request rejected');
        else reqLog.info(line, 'request');
      };
      if (server) {
        server.span.setAttribute('http.response.status_code', status);
        context.with(server.ctx, write);
        server.span.end();
      } else {
        write();
      }
    };
    res.onClose(finish);

    const run = async () => {
      try {
        if (early) throw early;
        if (match.kind === 'not_found') throw new HttpError(404, 'not_found', `no route for ${method} ${url.pathname}`);
        if (match.kind === 'method_not_allowed') {
          throw new HttpError(405, 'method_not_allowed', `${quoteInput(req.method, 20)} is not allowed on ${match.template}; allowed: ${match.allow.join(', ')}`, { headers: { allow: match.allow.join(', ') } });
        }
        const route = match.route;
        if (route.auth === 'api_key') {
          principal = authenticator.authenticate(presentedAuthorization(req.headers));
          server?.span.setAttribute(ATTR.tenantId, principal.tenantId);
          reqLog = reqLog.child({ [LOG.tenantId]: principal.tenantId });
          fields['key_id'] = principal.keyId;
          requireAccess(principal, router.access(route));
          const rate = options.limiter?.take(principal.tenantId, Date.now());
          if (rate) {
            for (const [name, value] of Object.entries(rateHeaders(rate))) res.setHeader(name, value);
            if (!rate.allowed) {
              // Read a small body first: an answer sent mid-upload closes the connection and hides the 429.
              await dropBody(req, RATE_REFUSAL_DRAIN_MAX_BYTES);
              throw new HttpError(429, 'rate_limited', `tenant ${principal.tenantId} is over its limit of ${rate.limit} requests per minute; retry after ${rate.resetSeconds} s`, {
                headers: { 'retry-after': String(rate.resetSeconds) },
              });
            }
          }
        }
        const ctx: RequestContext = {
          req, res, requestId, method, route: route.path, params: match.params, url, traceId, log: reqLog, principal,
          annotate(extra) {
            Object.assign(fields, extra);
            for (const [k, v] of Object.entries(extra)) {
              const attr = SPAN_ATTR_OF_LOG_FIELD[k];
              if (attr !== undefined) server?.span.setAttribute(attr, v);
            }
          },
        };
        if (route.auth === 'none') await route.handler(ctx);
        else if (principal) await route.handler({ ...ctx, principal });
        if (!res.headersSent && !req.signal.aborted) throw new Error(`handler for ${method} ${route.path} sent no response`);
      } catch (err) {
        const httpErr = toHttpError(err);
        errorForLog = httpErr;
        if (httpErr.status === 401 || httpErr.status === 403) {
          options.onDenied?.({
            status: httpErr.status, code: httpErr.apiCode, message: httpErr.message, method, route: template ?? UNMATCHED_ROUTE, requestId, traceId,
            principal, presentedKeyId: presentedKeyId(presentedAuthorization(req.headers)), sourceAddress: req.remoteAddress,
          });
        }
        if (server && isServerFault(httpErr.status)) {
          const cause = httpErr.cause ?? httpErr;
          server.span.recordException(cause instanceof Error ? cause : new Error(JSON.stringify(cause)));
          server.span.setStatus({ code: SpanStatusCode.ERROR, message: httpErr.message });
        }
        // A rejected upload may still be arriving: the exchange answers, then closes the connection unread.
        if (!res.headersSent) sendError(res, httpErr);
        else res.destroy();
      }
    };
    if (server) void context.with(server.ctx, run);
    else void run();
  };
}
