/**
 * StreamProducer: every Dalston message leaves through here, with its headers, on an idempotent producer
 * (acks=all, one request in flight), so a retried send neither duplicates nor reorders a key's messages.
 */
import { DependencyUnavailableError, IllegalStateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { encodeHeaders, type MessageHeaders } from './headers.js';
import { Partitioners, type Kafka, type Producer, type RecordMetadata } from './kafka-client.js';

export interface OutgoingMessage {
  /** Partition key: messages with one key keep their order. null spreads messages over partitions. */
  readonly key: string | Buffer | null;
  /** null writes a tombstone: compaction then removes the key from a compacted topic. */
  readonly value: Buffer | null;
  readonly headers: MessageHeaders;
  /** Explicit partition, overriding the key's. */
  readonly partition?: number;
}

export interface TopicBatch {
  readonly topic: string;
  readonly messages: readonly OutgoingMessage[];
}

export interface SendResult {
  readonly topic: string;
  readonly partition: number;
  /** Offset of the first message of this partition's batch. */
  readonly baseOffset: string;
}

export interface StreamProducerOptions {
  readonly kafka: Kafka;
  readonly log: Logger;
  /** Give up on a send after this long; the error is retryable. @default 30000 */
  readonly sendTimeoutMs?: number;
}

/**
 * Lifecycle:
 * - `idle`: built, not connected; send() is illegal.
 * - `connected`: sends allowed.
 * - `closing`: close() called; waits for sends in flight, refuses new ones.
 * - `closed`: disconnected for good.
 */
export type ProducerState = 'idle' | 'connected' | 'closing' | 'closed';

/** What a component needs to publish: the producer, or a wrapper around it (fault injection in tests). */
export interface MessageSender {
  send(topic: string, message: OutgoingMessage): Promise<SendResult>;
  sendBatch(batches: readonly TopicBatch[]): Promise<SendResult[]>;
}

export class StreamProducer implements MessageSender {
  readonly #producer: Producer;
  readonly #log: Logger;
  readonly #sendTimeoutMs: number;
  #state: ProducerState = 'idle';
  #inFlight = new Set<Promise<unknown>>();

  constructor(options: StreamProducerOptions) {
    this.#log = options.log.child({ component: 'stream-producer' });
    this.#sendTimeoutMs = options.sendTimeoutMs ?? 30_000;
    this.#producer = options.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Java-client-compatible murmur2, so a key maps to the same partition from any client.
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  get state(): ProducerState {
    return this.#state;
  }

  /** Sends not yet acknowledged by the broker. */
  get pending(): number {
    return this.#inFlight.size;
  }

  async connect(): Promise<void> {
    if (this.#state !== 'idle') throw new IllegalStateError(`producer cannot connect when ${this.#state}`);
    try {
      await this.#producer.connect();
    } catch (err) {
      throw new DependencyUnavailableError(`Kafka producer could not connect: ${errorText(err)}`, { cause: err });
    }
    this.#state = 'connected';
  }

  async send(topic: string, message: OutgoingMessage): Promise<SendResult> {
    const [first] = await this.sendBatch([{ topic, messages: [message] }]);
    if (first === undefined) throw new IllegalStateError('broker acknowledged no partition');
    return first;
  }

  /** One request for many messages, possibly to several topics. Resolves once every message is acknowledged. */
  async sendBatch(batches: readonly TopicBatch[]): Promise<SendResult[]> {
    if (this.#state !== 'connected') throw new IllegalStateError(`producer cannot send when ${this.#state}`);
    const topicMessages = batches
      .filter((b) => b.messages.length > 0)
      .map((b) => ({
        topic: b.topic,
        messages: b.messages.map((m) => ({
          key: m.key,
          value: m.value,
          headers: encodeHeaders(m.headers),
          ...(m.partition !== undefined && { partition: m.partition }),
        })),
      }));
    if (topicMessages.length === 0) return [];
    const p = this.#producer.sendBatch({ topicMessages, acks: -1, timeout: this.#sendTimeoutMs });
    this.#inFlight.add(p);
    let meta: RecordMetadata[];
    try {
      meta = await p;
    } catch (err) {
      throw new DependencyUnavailableError(`Kafka send to ${topicMessages.map((t) => t.topic).join(',')} failed: ${errorText(err)}`, {
        cause: err,
      });
    } finally {
      this.#inFlight.delete(p);
    }
    return meta.map((m) => ({ topic: m.topicName, partition: m.partition, baseOffset: m.baseOffset ?? m.offset ?? '-1' }));
  }

  /** Waits for sends in flight, then disconnects. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'closing') return;
    const wasConnected = this.#state === 'connected';
    this.#state = 'closing';
    await Promise.allSettled([...this.#inFlight]);
    if (wasConnected) {
      await this.#producer.disconnect().catch((err: unknown) => this.#log.warn({ err: errorText(err) }, 'producer disconnect failed'));
    }
    this.#state = 'closed';
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
