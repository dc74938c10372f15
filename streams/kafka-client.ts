/**
 * The one module that imports kafkajs. kafkajs is in maintenance mode, so everything else in Dalston sees the
 * client through this file (and the types re-exported here), which keeps a later swap to another client local.
 */
import { Kafka, Partitioners, logLevel, type Admin, type LogEntry, type SASLOptions, type logCreator } from 'kafkajs';
import { DependencyUnavailableError } from '../core/errors.js';
import type { KafkaSasl } from '../core/config.js';
import type { Logger } from '../core/logger.js';

export { Partitioners };
export type {
  Kafka,
  Admin,
  Consumer,
  Producer,
  IHeaders,
  KafkaMessage,
  Message,
  RecordMetadata,
  EachMessagePayload,
  ConsumerConfig,
  ProducerConfig,
  TopicMessages,
} from 'kafkajs';

export interface KafkaClientOptions {
  /** Bootstrap servers as host:port. */
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly log: Logger;
  /** @default 3000 */
  readonly connectionTimeoutMs?: number;
  /** @default 30000 */
  readonly requestTimeoutMs?: number;
  /** Retries of a failed request inside kafkajs before the call rejects. @default 5 */
  readonly retries?: number;
  /** SASL authentication (the compose deployment uses SCRAM-SHA-512). @default none */
  readonly sasl?: KafkaSasl | undefined;
}

/** Fields kafkajs puts on every entry that our logger already writes (or that duplicate the message). */
const DROPPED_FIELDS = new Set(['timestamp', 'message', 'logger']);

/**
 * Bridges kafkajs logs to our Logger. kafkajs reports routine group churn at info, so info goes to debug; it
 * logs every protocol error it is about to retry (coordinator loading, rebalance in progress) and every consumer
 * crash it restarts from at error, so those go to warn; errors that reach our code are reported by the caller.
 */
export function kafkaLogCreator(log: Logger): logCreator {
  const base = log.child({ component: 'kafkajs' });
  return () =>
    ({ namespace, level, log: entry }: LogEntry) => {
      const fields: Record<string, unknown> = { kafkajs_namespace: namespace };
      for (const [k, v] of Object.entries(entry)) {
        if (!DROPPED_FIELDS.has(k)) fields[k] = v instanceof Error ? v.message : v;
      }
      const msg = String(entry.message);
      switch (level) {
        case logLevel.ERROR:
        case logLevel.NOTHING:
          if (isRetriedNoise(namespace, msg)) base.warn(fields, msg);
          else base.error(fields, msg);
          return;
        case logLevel.WARN:
          base.warn(fields, msg);
          return;
        default:
          base.debug(fields, msg);
      }
    };
}

/**
 * Errors kafkajs logs and then recovers from itself: protocol errors it retries, and consumer crashes it restarts
 * from (StreamConsumer reports crashes at the right level itself).
 */
function isRetriedNoise(namespace: string, msg: string): boolean {
  if (namespace === 'Connection') return msg.startsWith('Response ');
  if (namespace === 'Consumer') return msg.startsWith('Crash: ') || msg.startsWith('Restarting the consumer');
  return false;
}

function saslOptions(s: KafkaSasl): SASLOptions {
  const { username, password } = s;
  switch (s.mechanism) {
    case 'scram-sha-256': return { mechanism: 'scram-sha-256', username, password };
    case 'scram-sha-512': return { mechanism: 'scram-sha-512', username, password };
    case 'plain': return { mechanism: 'plain', username, password };
  }
}

export function createKafka(options: KafkaClientOptions): Kafka {
  return new Kafka({
    brokers: [...options.brokers],
    clientId: options.clientId,
    connectionTimeout: options.connectionTimeoutMs ?? 3000,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    retry: { retries: options.retries ?? 5, initialRetryTime: 100, maxRetryTime: 5000 },
    // Let the logCreator decide what is noise; kafkajs filters before calling it.
    logLevel: logLevel.DEBUG,
    logCreator: kafkaLogCreator(options.log),
    ...(options.sasl ? { sasl: saslOptions(options.sasl) } : {}),
  });
}

/** True for errors kafkajs marks as retriable (leader moving, metadata not yet propagated after a topic was created). */
function isRetriable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { retriable?: unknown }).retriable === true;
}

/**
 * A topic's partition offsets. Retries the errors a just-created topic answers with while its leaders settle
 * ("not the leader", "does not host this topic-partition") for up to `timeoutMs`.
 */
export async function fetchTopicOffsets(admin: Admin, topic: string, timeoutMs = 15_000): Promise<{ partition: number; high: string; low: string }[]> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
    try {
      return await admin.fetchTopicOffsets(topic);
    } catch (err) {
      if (!isRetriable(err) || Date.now() + delay > deadline) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

export interface TopicSpec {
  readonly name: string;
  readonly partitions: number;
  readonly cleanupPolicy: 'delete' | 'compact';
  /** Extra topic configs (retention.ms, segment.ms, ...). */
  readonly config?: Readonly<Record<string, string>>;
}

export interface EnsureTopicsResult {
  readonly created: readonly string[];
  readonly existing: readonly string[];
}

/**
 * Creates the topics that do not exist yet (replication factor: the broker default). Idempotent and safe when
 * several processes race: "already exists" counts as success. Existing topics are left as they are; a
 * partition-count mismatch is logged, not fixed, because adding partitions remaps keys.
 */
export async function ensureTopics(kafka: Kafka, specs: readonly TopicSpec[], log?: Logger): Promise<EnsureTopicsResult> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const present = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !present.has(s.name));
    const created: string[] = [];
    if (missing.length > 0) {
      for (let attempt = 1; ; attempt++) {
        const still = new Set(await admin.listTopics());
        const todo = missing.filter((s) => !still.has(s.name));
        if (todo.length === 0) break;
        try {
          await admin.createTopics({
            waitForLeaders: true,
            topics: todo.map((s) => ({
              topic: s.name,
              numPartitions: s.partitions,
              configEntries: [
                { name: 'cleanup.policy', value: s.cleanupPolicy },
                ...Object.entries(s.config ?? {}).map(([name, value]) => ({ name, value })),
              ],
            })),
          });
          break;
        } catch (err) {
          if (isAlreadyExists(err)) break;
          // Waiting for leaders can answer "does not host this topic-partition" while another client creates topics
          // too: the creation itself usually went through; check again rather than fail.
          if (!isRetriable(err) || attempt >= 5) throw err;
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
      }
      created.push(...missing.map((s) => s.name));
      // createTopics returns before every partition answers: wait until each created topic serves offsets.
      for (const name of created) await fetchTopicOffsets(admin, name, 30_000);
    }
    const existing = specs.filter((s) => present.has(s.name));
    if (existing.length > 0 && log) {
      const meta = await admin.fetchTopicMetadata({ topics: existing.map((s) => s.name) });
      for (const t of meta.topics) {
        const want = specs.find((s) => s.name === t.name)?.partitions;
        if (want !== undefined && t.partitions.length !== want) {
          log.warn({ topic: t.name, partitions: t.partitions.length, expected: want }, 'topic exists with a different partition count');
        }
      }
    }
    return { created, existing: existing.map((s) => s.name) };
  } finally {
    await admin.disconnect();
  }
}

function isAlreadyExists(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { type?: unknown; errors?: unknown };
  if (e.type === 'TOPIC_ALREADY_EXISTS') return true;
  return Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every((x) => isAlreadyExists(x));
}

export interface ClusterInfo {
  readonly clusterId: string;
  readonly controller: number | null;
  readonly brokers: readonly { readonly nodeId: number; readonly host: string; readonly port: number }[];
}

/** One metadata round trip: the readiness check. Rejects with DependencyUnavailableError when no broker answers. */
export async function describeCluster(kafka: Kafka): Promise<ClusterInfo> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const info = await admin.describeCluster();
    return { clusterId: info.clusterId, controller: info.controller, brokers: info.brokers };
  } catch (err) {
    throw new DependencyUnavailableError(`Kafka did not answer a metadata request: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Waits until the broker can coordinate consumer groups. A fresh broker creates `__consumer_offsets` on the first
 * group lookup, and until its partitions have leaders every group join fails with "group coordinator not available".
 * kafkajs gives a consumer up after a few such tries, so a service started right after a fresh broker exited at
 * start-up on a loaded machine (seen in `./dalston up` beside a CPU hog). Set-up calls this before starting services.
 */
export async function waitForGroupCoordinator(kafka: Kafka, timeoutMs = 120_000, log?: Logger): Promise<void> {
  const admin = kafka.admin();
  const deadline = Date.now() + timeoutMs;
  try {
    await admin.connect();
    for (let attempt = 1; ; attempt++) {
      try {
        // A group nobody uses: the broker answers once it can find that group's coordinator (state Dead).
        await admin.describeGroups(['dalston-readiness-probe']);
        return;
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        if (Date.now() >= deadline) throw new DependencyUnavailableError(`Kafka cannot coordinate consumer groups after ${timeoutMs} ms: ${reason}`, { cause: err });
        log?.info({ attempt, err: reason }, 'waiting for the Kafka group coordinator');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
