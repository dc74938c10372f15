/**
 * The topic catalogue: every Kafka topic, its partitions, cleanup policy, producers and consumers. Names are
 * prefixed (DALSTON_TOPIC_PREFIX) so several stacks can share one broker.
 */

export interface TopicDefinition {
  /** Name without the prefix. */
  readonly name: string;
  readonly partitions: number;
  readonly cleanupPolicy: 'delete' | 'compact';
  readonly producers: string;
  readonly consumers: string;
  /** Extra topic configs. */
  readonly config?: Readonly<Record<string, string>>;
}

/** Job events are keyed by job id: one partition holds all of a job's events in order. */
export const JOB_EVENTS: TopicDefinition = {
  name: 'jobs.events', partitions: 6, cleanupPolicy: 'delete',
  producers: 'gateway (job.created, job.cancel_requested), engines (task.*)', consumers: 'actor hosts (group dalston.actors)',
};
/** Compacted: the latest snapshot of every job actor, keyed by job id (the actors' durable state). */
export const JOB_STATE: TopicDefinition = {
  name: 'jobs.state', partitions: 6, cleanupPolicy: 'compact',
  producers: 'actor hosts', consumers: 'actor hosts (restore on assignment), ClickHouse sink',
  config: { 'min.cleanable.dirty.ratio': '0.1', 'segment.ms': '600000' },
};
/** Control messages every engine instance reads (own consumer group per instance). */
export const TASK_CONTROL: TopicDefinition = {
  name: 'tasks.control', partitions: 1, cleanupPolicy: 'delete', producers: 'actor hosts', consumers: 'every engine instance',
  config: { 'retention.ms': '3600000' },
};
export const ANALYTICS: TopicDefinition = {
  name: 'analytics', partitions: 3, cleanupPolicy: 'delete', producers: 'gateway, actor hosts', consumers: 'ClickHouse sink',
};
/** Jobs submitted by Kafka producers (job.request, JSON, signed): the gateways turn each into a job. */
export const JOB_REQUESTS: TopicDefinition = {
  name: 'jobs.requests', partitions: 6, cleanupPolicy: 'delete',
  producers: 'Kafka clients (signed job.request)', consumers: 'gateways (group <prefix>-gateway-ingress)',
  config: { 'retention.ms': String(7 * 24 * 3600 * 1000) },
};
/** Every job's outcome (job.outcome), keyed by job id: what synchronous HTTP answers and Kafka clients wait for. */
export const JOB_RESULTS: TopicDefinition = {
  name: 'jobs.results', partitions: 6, cleanupPolicy: 'delete',
  producers: 'actor hosts (when a job ends)', consumers: 'gateways (synchronous answers), Kafka clients',
  config: { 'retention.ms': String(7 * 24 * 3600 * 1000) },
};
export const JOB_PROGRESS: TopicDefinition = {
  name: 'jobs.progress', partitions: 6, cleanupPolicy: 'delete',
  producers: 'transcribe engines (as windows finish)', consumers: 'gateways (streamed answers)',
  config: { 'retention.ms': String(3600 * 1000) },
};
export const DEAD_LETTER: TopicDefinition = {
  name: 'dead-letter', partitions: 1, cleanupPolicy: 'delete', producers: 'any consumer', consumers: 'operators',
  config: { 'retention.ms': String(14 * 24 * 3600 * 1000) },
};

/** Live audio and control of real-time sessions, keyed by session id: partition ownership is engine stickiness. */
export const REALTIME_INPUT: TopicDefinition = {
  name: 'realtime.input', partitions: 12, cleanupPolicy: 'delete',
  producers: 'gateway (rt.session.start, rt.audio, rt.control, rt.reply_to)', consumers: 'streaming engines (group dalston-rt-engine-<engine_id>)',
  config: { 'retention.ms': '3600000' },
};
/** What moves a session actor, keyed by session id. */
export const REALTIME_EVENTS: TopicDefinition = {
  name: 'realtime.events', partitions: 6, cleanupPolicy: 'delete',
  producers: 'gateway (opened, closed, resumed, deleted), streaming engines (utterance.final, session.ended)', consumers: 'actor hosts (group dalston.sessions)',
};
/** Compacted: the latest snapshot of every session actor (configuration, finals, resume checkpoint). */
export const SESSION_STATE: TopicDefinition = {
  name: 'sessions.state', partitions: 6, cleanupPolicy: 'compact',
  producers: 'actor hosts', consumers: 'actor hosts (restore), streaming engines (failover checkpoints), ClickHouse sink',
  // A snapshot holds every final with its words (~0.7 KB per 10-word final): a 4-hour session of dense speech reaches
  // ~3.5 MB, beyond Kafka's 1 MB default, so this topic takes records up to 8 MB.
  config: { 'min.cleanable.dirty.ratio': '0.1', 'segment.ms': '600000', 'max.message.bytes': '8388608' },
};
/**
 * Claims of single-use real-time tokens (one partition: its order decides which of two simultaneous redemptions
 * wins); every gateway tails it. Retention outlives the longest token lifetime (60 s) many times over.
 */
export const REALTIME_TOKENS: TopicDefinition = {
  name: 'realtime.tokens', partitions: 1, cleanupPolicy: 'delete', producers: 'gateways (token claims)', consumers: 'every gateway',
  config: { 'retention.ms': '600000' },
};
/**
 * Compacted: every API key's record (salted hash, tenant, scopes, expiry, revocation) keyed by key id, plus its
 * last-used time under `<key id>/used`. One partition: every gateway reads all of it into memory at start and tails
 * it, so a key created or revoked on one gateway holds on every gateway within the tail's poll (~100 ms).
 */
export const API_KEYS: TopicDefinition = {
  name: 'auth.keys', partitions: 1, cleanupPolicy: 'compact', producers: 'gateways (keys API), the `dalston keys` command', consumers: 'every gateway',
  config: { 'min.cleanable.dirty.ratio': '0.1', 'segment.ms': '600000' },
};
/**
 * What each gateway counted against tenants' limits (running totals per gateway, tenant and minute), so a limit
 * holds across gateways; every gateway tails it. Short retention: only the current minute matters.
 */
export const TENANT_USAGE: TopicDefinition = {
  name: 'tenants.usage', partitions: 1, cleanupPolicy: 'delete', producers: 'gateways (request counts)', consumers: 'every gateway',
  config: { 'retention.ms': '600000' },
};
/**
 * Compacted: every tenant webhook endpoint (URL, events, sealed signing secrets) keyed by endpoint id. One partition:
 * gateways (the webhooks API) and webhook workers (delivery) read all of it into memory and tail it.
 */
export const WEBHOOK_ENDPOINTS: TopicDefinition = {
  name: 'webhooks.endpoints', partitions: 1, cleanupPolicy: 'compact', producers: 'gateways (webhooks API)', consumers: 'every gateway and webhook worker',
  config: { 'min.cleanable.dirty.ratio': '0.1', 'segment.ms': '600000' },
};
/**
 * The durable retry schedule of webhook deliveries, keyed by delivery id (all of a delivery's records on one
 * partition, in order). Retention outlives the longest gap between two records of a delivery (the longest back-off)
 * many times over.
 */
export const WEBHOOK_DELIVERIES: TopicDefinition = {
  name: 'webhooks.deliveries', partitions: 6, cleanupPolicy: 'delete',
  producers: 'webhook workers (events fanned out, attempts rescheduled), gateways (manual redelivery)', consumers: 'webhook workers (group <prefix>-webhooks)',
  config: { 'retention.ms': String(7 * 24 * 3600 * 1000) },
};
/**
 * One small reply topic per gateway instance (created by that gateway): results reach the process holding the socket
 * without every gateway reading every session's results.
 */
export function realtimeReplyTopic(gatewayId: string): TopicDefinition {
  return {
    name: `realtime.replies.${gatewayId}`, partitions: 1, cleanupPolicy: 'delete',
    producers: 'streaming engines', consumers: `gateway ${gatewayId}`, config: { 'retention.ms': '600000' },
  };
}

/** Topics every stack has whatever engines it runs. */
export const SHARED_TOPICS: readonly TopicDefinition[] = [
  JOB_EVENTS, JOB_STATE, TASK_CONTROL, ANALYTICS, JOB_REQUESTS, JOB_RESULTS, JOB_PROGRESS, DEAD_LETTER, REALTIME_INPUT, REALTIME_EVENTS, SESSION_STATE, REALTIME_TOKENS, API_KEYS, TENANT_USAGE,
  WEBHOOK_ENDPOINTS, WEBHOOK_DELIVERIES,
];

/** The stage a task's work belongs to: per-channel stages (`transcribe_ch1`) and parts of a long file (`transcribe_part2`) are their base stage. */
export function baseStage(stage: string): string {
  return stage.replace(/_(ch|part)\d+$/, '');
}

/** Index of a transcribe part of a long file (`transcribe` is part 0, `transcribe_part<i>` part i); undefined for any other stage. */
export function partOfStage(stage: string): number | undefined {
  if (stage === 'transcribe') return 0;
  const m = /^transcribe_part(\d+)$/.exec(stage);
  return m ? Number(m[1]) : undefined;
}

/**
 * The work queue of one engine, `tasks.<stage>.<engine_id>`: only that engine's group reads it. With one queue per
 * stage, every transcribe engine read every model's tasks and dropped the others', each installed model multiplied
 * what every engine read, and a model with no running engine showed a lag that grew with every job. Per engine, an
 * engine reads only its own work and its group's lag is its true backlog.
 */
export function engineTaskTopic(stage: string, engineId: string): TopicDefinition {
  return {
    name: taskTopicFor(stage, engineId), partitions: TASK_QUEUE_PARTITIONS, cleanupPolicy: 'delete',
    producers: 'actor hosts', consumers: `engine ${engineId} (group <prefix>-engine-${engineId})`,
  };
}

/** Partitions of every engine queue (the most instances of one engine that can share its work). */
export const TASK_QUEUE_PARTITIONS = 6;

/**
 * The partition of part `part` of a long file: consecutive parts on consecutive partitions from a point that depends
 * on the job, so N parts land on N different partitions and every instance of the engine gets its share (by key
 * hash, several parts could share a partition and so one instance).
 */
export function partitionForPart(jobId: string, part: number): number {
  let h = 2166136261;
  for (let i = 0; i < jobId.length; i++) h = Math.imul(h ^ jobId.charCodeAt(i), 16777619) >>> 0;
  return (h + part) % TASK_QUEUE_PARTITIONS;
}

/** Topic that carries a task to its engine (unprefixed); per-channel tasks share their base stage's queue. */
export function taskTopicFor(stage: string, engineId: string): string {
  return `tasks.${baseStage(stage)}.${engineId}`;
}

/** Every topic of a stack whose engines are `engines` (each engine's work queue beside the shared topics). */
export function allTopics(engines: readonly { readonly stage: string; readonly engineId: string }[]): TopicDefinition[] {
  const queues = new Map(engines.map((e) => [taskTopicFor(e.stage, e.engineId), engineTaskTopic(e.stage, e.engineId)]));
  return [...SHARED_TOPICS, ...queues.values()];
}

export function prefixed(prefix: string, name: string): string {
  return `${prefix}${name}`;
}

export function engineGroupId(prefix: string, engineId: string): string {
  return `${prefix.replace(/\.$/, "")}-engine-${engineId}`;
}

/** The consumer group every streaming engine instance joins: its members are the live instances (gateway capacity). */
export function realtimeEngineGroupId(prefix: string): string {
  return `${prefix.replace(/\.$/, "")}-rt-engine`;
}
