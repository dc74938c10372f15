/**
 * A WebSocket route as a GET route of the gateway's router: the upgrade request is authenticated, traced, logged
 * and counted like any request, then `accept` decides admission before the connection switches protocols. A
 * refusal (an HttpError thrown by authentication or `accept`) is an ordinary HTTP error answer, e.g. 401 or 503,
 * and no upgrade happens. A plain GET on the route answers 426.
 */
import { HttpError } from './errors.js';
import type { AuthedRequestContext, RequestContext, RouteSpec } from './http-server.js';
import type { SocketHandler } from './websocket.js';

interface WebSocketRouteBase {
  /** Template with `:name` segments, matched like HTTP routes (decoded parameters in `ctx.params`). */
  readonly path: string;
}

/**
 * `accept` runs after authentication and before the upgrade; it returns the socket's handler or throws an
 * HttpError to refuse. If the client leaves while `accept` runs, the handler is never opened.
 */
export type WebSocketRouteSpec =
  | (WebSocketRouteBase & { readonly auth: 'none'; readonly credentials?: 'self'; readonly accept: (ctx: RequestContext) => SocketHandler | Promise<SocketHandler> })
  | (WebSocketRouteBase & { readonly auth: 'api_key'; readonly accept: (ctx: AuthedRequestContext) => SocketHandler | Promise<SocketHandler> });

async function upgradeWith(ctx: RequestContext, accept: () => SocketHandler | Promise<SocketHandler>): Promise<void> {
  const upgrade = ctx.res.upgrade;
  if (!upgrade) {
    throw new HttpError(426, 'upgrade_required', `${ctx.route} is a WebSocket endpoint; connect with a WebSocket client`, {
      headers: { upgrade: 'websocket' },
    });
  }
  const handler = await accept();
  if (!ctx.req.signal.aborted) upgrade(handler);
}

export function webSocketRoute(spec: WebSocketRouteSpec): RouteSpec {
  if (spec.auth === 'none') {
    const { accept } = spec;
    return {
      method: 'GET', path: spec.path, auth: 'none', ...(spec.credentials ? { credentials: spec.credentials } : {}), handler: (ctx) => upgradeWith(ctx, () => accept(ctx)),
    };
  }
  const { accept } = spec;
  return { method: 'GET', path: spec.path, auth: 'api_key', handler: (ctx) => upgradeWith(ctx, () => accept(ctx)) };
}
