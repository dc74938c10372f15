/**
 * The local infrastructure: one Kafka broker (KRaft) and one ClickHouse server on loopback, topics created and
 * migrations applied. `./dalston up` keeps its data under DALSTON_HOME; `./dalston test` uses a temp directory.
 */
import { join } from 'node:path';
import { createClickHouse } from '../clickhouse/client.js';
import { applyMigrations } from '../clickhouse/migrate.js';
import type { Logger } from '../core/logger.js';
import { SHARED_TOPICS, createKafka, ensureTopics, prefixed, waitForGroupCoordinator } from '../streams/index.js';
import { startClickHouse, type ClickHouseServerHandle } from './clickhouse-server.js';
import { startKafka, type KafkaServerHandle } from './kafka-server.js';
import type { KafkaInstall } from './kafka-server.js';

export interface LocalStackOptions {
  readonly dataDir: string;
  readonly kafka: KafkaInstall;
  readonly kafkaPort: number;
  readonly clickhousePort: number;
  readonly topicPrefix: string;
  readonly database: string;
  readonly log: Logger;
}

export interface LocalStack {
  readonly kafka: KafkaServerHandle;
  readonly clickhouse: ClickHouseServerHandle;
  stop(): Promise<void>;
}

export async function startLocalStack(o: LocalStackOptions): Promise<LocalStack> {
  const clickhouse = await startClickHouse({ dataDir: join(o.dataDir, 'clickhouse'), httpPort: o.clickhousePort, tcpPort: o.clickhousePort + 1, log: o.log });
  let kafka: KafkaServerHandle;
  try {
    kafka = await startKafka({ dataDir: join(o.dataDir, 'kafka'), port: o.kafkaPort, controllerPort: o.kafkaPort + 1, libDir: o.kafka.libDir, version: o.kafka.version, log: o.log });
  } catch (err) {
    await clickhouse.stop();
    throw err;
  }
  const stop = async () => {
    await Promise.allSettled([kafka.stop(), clickhouse.stop()]);
  };
  try {
    const client = createKafka({ brokers: kafka.brokers, clientId: 'dalston-setup', log: o.log.child({ component: 'kafka-admin' }) });
    // Engine queues (tasks.<stage>.<engine_id>) are created by the actor hosts and by each engine at start.
    await ensureTopics(client, SHARED_TOPICS.map((t) => ({ ...t, name: prefixed(o.topicPrefix, t.name) })), o.log.child({ component: 'topics' }));
    await waitForGroupCoordinator(client, 120_000, o.log.child({ component: 'kafka-admin' }));
    const ch = createClickHouse({ url: clickhouse.url, database: o.database, log: o.log.child({ component: 'clickhouse' }) });
    const migrations = await applyMigrations(ch, o.database, o.log.child({ component: 'migrations' }));
    await ch.close();
    o.log.info({ kafka: `${kafka.version} at ${kafka.brokers.join(',')}`, clickhouse: `${clickhouse.version} at ${clickhouse.url}`, migrations_applied: migrations.applied.length }, 'infrastructure ready');
  } catch (err) {
    await stop();
    throw err;
  }
  return { kafka, clickhouse, stop };
}
