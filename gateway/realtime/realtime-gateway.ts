/**
 * The gateway's real-time side assembled over a connected stream runtime: gateway id and reply topic, the used-token
 * ledger, the sessions.state directory, the publisher, the session bridge and the reply consumer. `gateway/main.ts`
 * registers its routes on the app and calls `shutdown()` before the app drains (1012 to every live socket).
 */
import { randomBytes } from 'node:crypto';
import { hostname, tmpdir } from 'node:os';
import type { Registry } from 'prom-client';
import type { DalstonConfig } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import {
  REALTIME_EVENTS, REALTIME_INPUT, REALTIME_TOKENS, SESSION_STATE, ensureTopics, prefixed, realtimeEngineGroupId, realtimeReplyTopic,
  type StreamRuntime, type TopicDefinition,
} from '../../streams/index.js';
import { createApiKeyAuthenticator } from '../auth.js';
import type { KeyStore } from '../keys/key-store.js';
import type { TenantAdmission } from '../limits/tenant-admission.js';
import type { RouteSpec } from '../http-server.js';
import type { ArtifactStore } from '../ports.js';
import type { WebSocketRouteSpec } from '../websocket-route.js';
import type { RealtimeDialectAdapter } from './dialect.js';
import { GroupEnginePresence, type EnginePresence } from './engine-presence.js';
import { resolveGatewayId } from './gateway-id.js';
import { RealtimePublisher } from './realtime-publisher.js';
import { realtimeRoutes } from './realtime-routes.js';
import { tokenSecret } from './realtime-token.js';
import { createReplyConsumer } from './reply-consumer.js';
import { SessionBridge } from './session-bridge.js';
import { KafkaSessionDirectory } from './session-directory.js';
import { KafkaTokenLedger } from './token-ledger.js';

export type RealtimeConfig = Pick<
  DalstonConfig,
  | 'apiKey' | 'topicPrefix' | 'gatewayId' | 'realtimeSessionsPerEngine' | 'realtimeModel' | 'realtimeMaxSessionsPerKey'
  | 'realtimeIdleTimeoutSeconds' | 'realtimeMaxSessionSeconds' | 'realtimeMaxFrameBytes' | 'realtimeLagWarnSeconds'
  | 'realtimeLagCloseSeconds' | 'realtimeRetention' | 'realtimeTokenTtlSeconds'
>;

export interface RealtimeGatewayOptions {
  readonly config: RealtimeConfig;
  readonly streams: Pick<StreamRuntime, 'kafka' | 'admin' | 'producer' | 'deadLetter'>;
  readonly store: ArtifactStore;
  readonly registry: Registry;
  readonly log: Logger;
  /** The gateway's port: with the host name it names this instance when DALSTON_GATEWAY_ID is unset. */
  readonly port: number;
  readonly dialects: readonly RealtimeDialectAdapter[];
  /** @default os.tmpdir() */
  readonly spoolDir?: string;
  /** Live engine instances; @default the members of the streaming engines' consumer group. */
  readonly presence?: EnginePresence;
  /** Overrides of bridge timing (tests). */
  readonly lag?: { readonly holdMs?: number; readonly silenceAfterMs?: number; readonly silenceGraceMs?: number };
  readonly hostname?: string;
  /** Issued API keys; without it only DALSTON_API_KEY opens sessions and mints tokens. */
  readonly keys?: KeyStore;
  /** Per-tenant concurrent-session limits. */
  readonly concurrency?: TenantAdmission;
  /** A tenant's default retention in days for sessions' data (DALSTON_TENANT_LIMITS retention_days). */
  readonly retentionDays?: (tenantId: string) => number;
}

export interface RealtimeGateway {
  readonly gatewayId: string;
  /** Prefixed reply topic name. */
  readonly replyTopic: string;
  readonly bridge: SessionBridge;
  readonly routes: readonly RouteSpec[];
  readonly wsRoutes: readonly WebSocketRouteSpec[];
  /** Closes live sockets with 1012 (resumable) and publishes their closes. */
  shutdown(): Promise<void>;
  /** Stops the consumers (after shutdown and the app's drain). */
  close(): Promise<void>;
}

export async function startRealtimeGateway(o: RealtimeGatewayOptions): Promise<RealtimeGateway> {
  const c = o.config;
  const apiKey = c.apiKey;
  if (apiKey === undefined || apiKey === '') throw new Error('DALSTON_API_KEY must be set for the gateway');
  const gatewayId = resolveGatewayId(c.gatewayId, o.hostname ?? hostname(), o.port);
  const log = o.log.child({ gateway_id: gatewayId });
  const name = (t: TopicDefinition): TopicDefinition => ({ ...t, name: prefixed(c.topicPrefix, t.name) });
  const replyTopic = name(realtimeReplyTopic(gatewayId));
  const tokensTopic = name(REALTIME_TOKENS);
  const stateTopic = name(SESSION_STATE);
  await ensureTopics(o.streams.kafka, [replyTopic, tokensTopic, name(REALTIME_INPUT), name(REALTIME_EVENTS), stateTopic], log);

  // Groups are per process (no offsets committed, so they vanish when the process leaves).
  const group = (purpose: string) => `${c.topicPrefix.replace(/\.$/, '')}-gw-${gatewayId}-${purpose}-${randomBytes(3).toString('hex')}`;
  const secret = tokenSecret(apiKey);
  const ledger = new KafkaTokenLedger({
    kafka: o.streams.kafka, producer: o.streams.producer, deadLetter: o.streams.deadLetter, topic: tokensTopic.name, groupId: group('tokens'), log,
  });
  const directory = new KafkaSessionDirectory({
    kafka: o.streams.kafka, topic: stateTopic.name, groupId: group('sessions'), deadLetter: o.streams.deadLetter, log,
  });
  const publisher = new RealtimePublisher({
    sender: o.streams.producer, inputTopic: prefixed(c.topicPrefix, REALTIME_INPUT.name), eventsTopic: prefixed(c.topicPrefix, REALTIME_EVENTS.name), log,
  });
  const bridge = new SessionBridge({
    gatewayId, replyTopic: replyTopic.name,
    limits: {
      sessionsPerEngine: c.realtimeSessionsPerEngine,
      maxSessionsPerKey: c.realtimeMaxSessionsPerKey,
      idleTimeoutMs: c.realtimeIdleTimeoutSeconds * 1000,
      maxSessionMs: c.realtimeMaxSessionSeconds * 1000,
      maxFrameBytes: c.realtimeMaxFrameBytes,
      lag: { warnSeconds: c.realtimeLagWarnSeconds, closeSeconds: c.realtimeLagCloseSeconds, ...o.lag },
    },
    defaults: { model: c.realtimeModel, retention: c.realtimeRetention, ...(o.retentionDays ? { retentionDays: o.retentionDays } : {}) },
    authenticator: createApiKeyAuthenticator({ bootstrapKey: apiKey, ...(o.keys ? { keys: o.keys } : {}) }),
    ...(o.keys ? { keys: o.keys } : {}),
    ...(o.concurrency ? { concurrency: o.concurrency } : {}),
    tokenSecret: secret, ledger,
    presence: o.presence ?? new GroupEnginePresence(o.streams.admin, realtimeEngineGroupId(c.topicPrefix)),
    directory, publisher, store: o.store, spoolDir: o.spoolDir ?? tmpdir(), registry: o.registry, log,
  });
  const replies = createReplyConsumer({
    kafka: o.streams.kafka, topic: replyTopic.name, groupId: group('replies'), deadLetter: o.streams.deadLetter, log,
    onReply: (r, at) => bridge.onReply(r, at),
  });
  await Promise.all([ledger.start(), directory.start(), replies.start()]);
  log.info({ reply_topic: replyTopic.name, dialects: o.dialects.map((d) => d.dialect) }, 'real-time gateway ready');
  return {
    gatewayId,
    replyTopic: replyTopic.name,
    bridge,
    routes: realtimeRoutes({ tokenSecret: secret, tokenTtlSeconds: c.realtimeTokenTtlSeconds, status: () => bridge.status() }),
    wsRoutes: o.dialects.map((d) => bridge.route(d)),
    shutdown: () => bridge.shutdown(),
    close: async () => {
      await Promise.allSettled([replies.close(), ledger.close(), directory.close()]);
    },
  };
}
