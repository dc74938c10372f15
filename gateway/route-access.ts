/**
 * Who may call what: one table of every route the gateway serves (HTTP and WebSocket upgrades as `METHOD template`,
 * the Kafka ingress as `KAFKA <topic>`)
 * and the scope it needs. The router refuses to register a route this table does not name, and the request handler
 * (or, for WebSocket routes that also take single-use tokens, the session bridge) checks the scope from here, so no
 * handler carries its own authorisation code and the route-by-route authorisation test is generated from this table.
 */
import type { Scope } from '../streams/index.js';
import { grants, type Principal } from './auth.js';
import { HttpError } from './errors.js';

/** `public`: no key; `any`: any valid key whatever its scopes; otherwise the scope the key must hold. */
export type RouteAccess = 'public' | 'any' | Scope;

export const ROUTE_ACCESS: Readonly<Record<string, RouteAccess>> = {
  'GET /health': 'public',
  'GET /ready': 'public',
  'GET /metrics': 'public',
  'GET /openapi.json': 'public',
  'GET /v1/models': 'any',

  'POST /v1/audio/transcriptions': 'jobs:write',
  'GET /v1/audio/transcriptions': 'jobs:read',
  'GET /v1/audio/transcriptions/:id': 'jobs:read',
  'GET /v1/audio/transcriptions/:id/tasks/:task_id/artifacts': 'jobs:read',
  'GET /v1/audio/transcriptions/:id/audio': 'jobs:read',
  'GET /v1/audio/transcriptions/:id/trace': 'jobs:read',
  'GET /v1/audio/transcriptions/:id/export/:format': 'jobs:read',
  'PATCH /v1/audio/transcriptions/:id': 'jobs:write',
  'POST /v1/audio/transcriptions/:id/cancel': 'jobs:write',
  'DELETE /v1/audio/transcriptions/:id': 'jobs:write',
  'POST /v1/audio/translations': 'jobs:write',
  'POST /v1/speech-to-text': 'jobs:write',
  'GET /v1/speech-to-text/transcripts/:id': 'jobs:read',
  'DELETE /v1/speech-to-text/transcripts/:id': 'jobs:write',
  'POST /v1/listen': 'jobs:write',

  'GET /v1/audio/transcriptions/stream': 'realtime',
  'GET /v1/realtime': 'realtime',
  'GET /v1/speech-to-text/realtime': 'realtime',
  'GET /v1/listen': 'realtime',
  'POST /v1/realtime/tokens': 'realtime',
  'POST /v1/single-use-token/:token_type': 'realtime',
  'POST /v1/realtime/transcription_sessions': 'realtime',
  'GET /v1/realtime/status': 'realtime',
  // A session's history is data like a job's: reading it is jobs:read, deleting it jobs:write.
  'GET /v1/realtime/sessions': 'jobs:read',
  'GET /v1/realtime/sessions/:id': 'jobs:read',
  'GET /v1/realtime/sessions/:id/transcript': 'jobs:read',
  'GET /v1/realtime/sessions/:id/audio': 'jobs:read',
  'DELETE /v1/realtime/sessions/:id': 'jobs:write',

  'POST /v1/keys': 'admin',
  'GET /v1/keys': 'admin',
  'GET /v1/keys/:id': 'admin',
  'DELETE /v1/keys/:id': 'admin',
  'GET /v1/audit': 'admin',

  'POST /v1/webhooks': 'webhooks',
  'GET /v1/webhooks': 'webhooks',
  'GET /v1/webhooks/job-signing-secret': 'webhooks',
  'GET /v1/webhooks/:id': 'webhooks',
  'PATCH /v1/webhooks/:id': 'webhooks',
  'DELETE /v1/webhooks/:id': 'webhooks',
  'POST /v1/webhooks/:id/rotate-secret': 'webhooks',
  'GET /v1/webhooks/:id/deliveries': 'webhooks',
  'POST /v1/webhooks/:id/deliveries/:delivery_id/retry': 'webhooks',

  // Kafka ingress: a signed job.request on jobs.requests submits a job.
  'KAFKA jobs.requests': 'jobs:write',
};

/** The table's entry for a route; throws for a route the table does not name (a programming error). */
export function accessOf(method: string, template: string): RouteAccess {
  const access = ROUTE_ACCESS[`${method} ${template}`];
  if (access === undefined) throw new Error(`route ${method} ${template} has no entry in gateway/route-access.ts`);
  return access;
}

/** 403 unless `principal` may use a route of this access: the one place scopes are checked. */
export function requireAccess(principal: Principal, access: RouteAccess): void {
  if (access === 'public' || access === 'any' || grants(principal, access)) return;
  throw new HttpError(403, 'insufficient_scope', `this API key lacks the ${access} scope`);
}
