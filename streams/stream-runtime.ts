/**
 * Everything a process needs to talk to Kafka, connected once: client, admin, producer and dead-letter writer.
 */
import type { KafkaSasl } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { DeadLetterWriter, type DeadLetterCounter } from './dead-letter.js';
import { createKafka, type Admin, type Kafka } from './kafka-client.js';
import { StreamProducer } from './producer.js';
import { DEAD_LETTER, prefixed } from './topics.js';

export interface StreamRuntime {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: StreamProducer;
  readonly deadLetter: DeadLetterWriter;
  /** Throws when the cluster does not answer (for /ready). */
  readonly check: () => Promise<void>;
  readonly close: () => Promise<void>;
}

export interface ConnectStreamsOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly topicPrefix: string;
  readonly log: Logger;
  /** Counts this process's dead letters per source topic (`streamMetrics(registry).deadLetters`). @default none */
  readonly deadLetterCounter?: DeadLetterCounter;
  /** SASL credentials (DALSTON_KAFKA_SASL_MECHANISM and friends). @default none */
  readonly sasl?: KafkaSasl | undefined;
}

export async function connectStreams(options: ConnectStreamsOptions): Promise<StreamRuntime> {
  const kafka = createKafka({ brokers: [...options.brokers], clientId: options.clientId, log: options.log, sasl: options.sasl });
  const admin = kafka.admin();
  await admin.connect();
  const producer = new StreamProducer({ kafka, log: options.log });
  await producer.connect();
  const deadLetter = new DeadLetterWriter({
    producer, topic: prefixed(options.topicPrefix, DEAD_LETTER.name), ...(options.deadLetterCounter ? { counter: options.deadLetterCounter } : {}),
  });
  return {
    kafka, admin, producer, deadLetter,
    check: async () => {
      await admin.describeCluster();
    },
    close: async () => {
      await producer.close();
      await admin.disconnect();
    },
  };
}
