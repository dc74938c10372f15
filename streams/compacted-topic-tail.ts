/**
 * A one-partition compacted topic read whole into memory and tailed: the shared stores every process of a role
 * keeps a copy of (API keys, webhook endpoints). start() resolves once everything written before it has been
 * read; a write resolves once this process's own tail has read it back, so what the writer does next sees it.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../core/logger.js';
import type { DeadLetterWriter } from './dead-letter.js';
import { newMessageHeaders } from './headers.js';
import { ensureTopics, fetchTopicOffsets, type Admin, type Kafka } from './kafka-client.js';
import type { StreamProducer } from './producer.js';
import { ReadPosition } from './read-position.js';
import { StreamConsumer } from './consumer.js';
import { prefixed, type TopicDefinition } from './topics.js';

/** How a store built on a tail reaches Kafka: the process's streams, its prefix and a group of its own. */
export interface TailConnection {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: StreamProducer;
  readonly deadLetter: DeadLetterWriter;
  readonly topicPrefix: string;
  /** Unique per process: every process reads every record. */
  readonly groupId: string;
  readonly log: Logger;
}

/** A process's connection for one tailed store: `role` names its consumer group (`<prefix>-<role>-<uuid>`). */
export function tailConnection(
  streams: Pick<TailConnection, 'kafka' | 'admin' | 'producer' | 'deadLetter'>, topicPrefix: string, log: Logger, role: string,
): TailConnection {
  return {
    kafka: streams.kafka, admin: streams.admin, producer: streams.producer, deadLetter: streams.deadLetter, topicPrefix, log,
    groupId: `${topicPrefix.replace(/\.$/, '')}-${role}-${randomUUID()}`,
  };
}

export interface CompactedTopicTailOptions<R> extends TailConnection {
  readonly topic: TopicDefinition;
  readonly decode: (value: Buffer) => R;
  /** Called for every record in log order (a tombstone is skipped: the stores keep ended records instead). */
  readonly apply: (record: R) => void;
  /** Names the store in errors. */
  readonly what: string;
  /** @default 5000 */
  readonly writeTimeoutMs?: number;
}

export class CompactedTopicTail<R> {
  readonly #o: CompactedTopicTailOptions<R>;
  readonly #topic: string;
  readonly #position = new ReadPosition();
  readonly #consumer: StreamConsumer<R | undefined>;

  constructor(o: CompactedTopicTailOptions<R>) {
    this.#o = o;
    this.#topic = prefixed(o.topicPrefix, o.topic.name);
    this.#consumer = new StreamConsumer<R | undefined>({
      kafka: o.kafka, groupId: o.groupId, topics: [this.#topic], decode: o.decode, deadLetter: o.deadLetter, log: o.log,
      commitOffsets: false, fromBeginning: true, maxWaitTimeMs: 100, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000,
      onTombstone: () => undefined,
      handler: async (m) => {
        if (m.value !== undefined) o.apply(m.value);
        this.#position.advance(BigInt(m.offset) + 1n);
      },
    });
  }

  async start(): Promise<void> {
    await ensureTopics(this.#o.kafka, [{ ...this.#o.topic, name: this.#topic }], this.#o.log);
    const [partition] = await fetchTopicOffsets(this.#o.admin, this.#topic);
    await this.#consumer.start();
    await this.#position.reach(BigInt(partition?.high ?? '0'), 30_000, `${this.#o.what} did not read ${this.#o.topic.name} to its end in time`);
  }

  close(): Promise<void> {
    return this.#consumer.close();
  }

  /** Writes a record and resolves once this process has read it back (readBack false: once the broker has it). */
  async write(key: string, value: Buffer, readBack = true): Promise<void> {
    const sent = await this.#o.producer.send(this.#topic, { key, value, headers: newMessageHeaders() });
    if (!readBack) return;
    await this.#position.reach(BigInt(sent.baseOffset) + 1n, this.#o.writeTimeoutMs ?? 5000, `${this.#o.what} did not confirm the write in time`);
  }
}
