/**
 * HTTP routes of the real-time side: `POST /v1/realtime/tokens` mints a single-use token (for browsers, which
 * cannot set an Authorization header on a WebSocket), as do ElevenLabs' `POST /v1/single-use-token/realtime_scribe`
 * and OpenAI's `POST /v1/realtime/transcription_sessions` (its client secret) in their vendors' shapes; a token is
 * bound to the tenant and key that minted it and grants one real-time session, nothing else.
 * `GET /v1/realtime/status` reports capacity and sessions.
 */
import { badRequest } from '../errors.js';
import { sendJson } from '../http-exchange.js';
import type { AuthedRequestContext, RouteSpec } from '../http-server.js';
import { receiveSmallJson } from '../upload.js';
import { mintToken } from './realtime-token.js';
import type { BridgeStatus } from './session-bridge.js';

export interface RealtimeRoutesDeps {
  readonly tokenSecret: Buffer;
  readonly tokenTtlSeconds: number;
  readonly status: () => Promise<BridgeStatus>;
  readonly now?: () => number;
}

const JSON_TYPE = { 'content-type': 'application/json' };

/** ElevenLabs' token types that open a real-time transcription session here. */
const ELEVENLABS_TOKEN_TYPES = new Set(['realtime_scribe', 'realtime']);

/** An optional JSON object body (an empty body is `{}`). */
async function optionalObject(ctx: AuthedRequestContext): Promise<Record<string, unknown>> {
  if (ctx.req.bodyComplete && (ctx.req.headers['content-length'] ?? '0') === '0' && ctx.req.headers['transfer-encoding'] === undefined) return {};
  const body = await receiveSmallJson(ctx.req);
  if (body === null || body === undefined) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw badRequest('the body must be a JSON object');
  return body as Record<string, unknown>;
}

export function realtimeRoutes(d: RealtimeRoutesDeps): RouteSpec[] {
  const now = d.now ?? Date.now;
  const mint = (ctx: AuthedRequestContext) => {
    const expiresAt = now() + Math.round(d.tokenTtlSeconds * 1000);
    return { ...mintToken(d.tokenSecret, { tenantId: ctx.principal.tenantId, keyId: ctx.principal.keyId, expiresAt }), expiresAt };
  };
  return [
    {
      method: 'POST', path: '/v1/single-use-token/:token_type', auth: 'api_key',
      handler: async (ctx) => {
        const type = ctx.params['token_type'] ?? '';
        if (!ELEVENLABS_TOKEN_TYPES.has(type)) throw badRequest(`token type ${JSON.stringify(type.slice(0, 40))} is not offered; use realtime_scribe`);
        const { token, expiresAt } = mint(ctx);
        sendJson(ctx.res, 200, { token, token_type: type, expires_at: new Date(expiresAt).toISOString(), tenant_id: ctx.principal.tenantId });
      },
    },
    {
      // The session settings are echoed so the SDK sees what it asked for; the client applies them on the socket
      // (transcription_session.update), where the dialect validates them.
      method: 'POST', path: '/v1/realtime/transcription_sessions', auth: 'api_key',
      handler: async (ctx) => {
        const body = await optionalObject(ctx);
        const { token, claims, expiresAt } = mint(ctx);
        sendJson(ctx.res, 200, {
          id: `sess_${claims.jti}`, object: 'realtime.transcription_session',
          client_secret: { value: token, expires_at: Math.floor(expiresAt / 1000) },
          input_audio_format: body['input_audio_format'] ?? 'pcm16',
          input_audio_transcription: body['input_audio_transcription'] ?? { model: 'gpt-4o-transcribe', language: null, prompt: '' },
          turn_detection: body['turn_detection'] ?? { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 },
          input_audio_noise_reduction: body['input_audio_noise_reduction'] ?? null,
          modalities: ['text'],
        });
      },
    },
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
