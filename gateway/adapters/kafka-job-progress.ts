/**
 * JobProgressFeed over Kafka: every gateway reads jobs.progress from the moment it starts, in a group of its own that
 * commits nothing, and hands each record to the requests streaming that job's transcript. Records of jobs nobody
 * here streams are dropped at once; nothing is kept.
 */
import type { Logger } from '../../core/logger.js';
import {
  JOB_PROGRESS, StreamConsumer, checkJobProgress, decodeMessage, prefixed, type DeadLetterWriter, type Kafka, type TranscriptProgress,
} from '../../streams/index.js';
import type { JobProgressFeed } from '../ports.js';

export interface KafkaJobProgressOptions {
  readonly kafka: Kafka;
  readonly topicPrefix: string;
  /** This gateway's own group (it commits nothing). */
  readonly groupId: string;
  readonly deadLetter: DeadLetterWriter;
  readonly log: Logger;
}

export class KafkaJobProgress implements JobProgressFeed {
  readonly #consumer: StreamConsumer<TranscriptProgress>;
  readonly #listeners = new Map<string, Set<(p: TranscriptProgress) => void>>();

  constructor(options: KafkaJobProgressOptions) {
    this.#consumer = new StreamConsumer<TranscriptProgress>({
      kafka: options.kafka, groupId: options.groupId, topics: [prefixed(options.topicPrefix, JOB_PROGRESS.name)],
      decode: (value) => decodeMessage(checkJobProgress, value),
      handler: async (m) => {
        for (const listener of this.#listeners.get(m.value.jobId) ?? []) listener(m.value);
      },
      deadLetter: options.deadLetter, log: options.log.child({ component: 'job-progress' }),
      fromBeginning: false, commitOffsets: false, maxWaitTimeMs: 50, partitionsConsumedConcurrently: 6,
    });
  }

  start(): Promise<void> {
    return this.#consumer.start();
  }

  close(): Promise<void> {
    return this.#consumer.close();
  }

  subscribe(jobId: string, listener: (progress: TranscriptProgress) => void): () => void {
    const set = this.#listeners.get(jobId) ?? new Set();
    this.#listeners.set(jobId, set);
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(jobId);
    };
  }
}
