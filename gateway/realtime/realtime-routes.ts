/**
 * HTTP routes of the real-time side: `POST /v1/realtime/tokens` mints a single-use token (for browsers, which
 * cannot set an Authorization header on a WebSocket), `GET /v1/realtime/status` reports capacity and sessions.
 */
import type { RouteSpec } from '../http-server.js';
import { mintToken } from './realtime-token.js';
import type { BridgeStatus } from './session-bridge.js';

export interface RealtimeRoutesDeps {
  readonly tokenSecret: Buffer;
  readonly tokenTtlSeconds: number;
  readonly status: () => Promise<BridgeStatus>;
  readonly now?: () => number;
}

const JSON_TYPE = { 'content-type': 'application/json' };

export function realtimeRoutes(d: RealtimeRoutesDeps): RouteSpec[] {
  const now = d.now ?? Date.now;
  return [
    {
      method: 'POST', path: '/v1/realtime/tokens', auth: 'api_key',
      handler: async (ctx) => {
        const expiresAt = now() + Math.round(d.tokenTtlSeconds * 1000);
        const { token } = mintToken(d.tokenSecret, { tenantId: ctx.principal.tenantId, keyId: ctx.principal.keyId, expiresAt });
        ctx.res.send(201, JSON_TYPE, JSON.stringify({ token, expires_at: new Date(expiresAt).toISOString(), expires_in: d.tokenTtlSeconds }));
      },
    },
    {
      method: 'GET', path: '/v1/realtime/status', auth: 'api_key',
      handler: async (ctx) => {
        const s = await d.status();
        ctx.res.send(200, JSON_TYPE, JSON.stringify({
          gateway_id: s.gatewayId,
          live_engines: s.liveEngines,
          sessions_per_engine: s.sessionsPerEngine,
          capacity: s.capacity,
          active_sessions: s.activeSessions,
          cluster_active_sessions: s.clusterActiveSessions ?? null,
          available: Math.max(0, s.capacity - Math.max(s.activeSessions, s.clusterActiveSessions ?? 0)),
        }));
      },
    },
  ];
}
