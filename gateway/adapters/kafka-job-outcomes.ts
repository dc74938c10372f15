/**
 * JobOutcomeWaiter over Kafka: every gateway reads jobs.results (one small record per finished job) from the moment
 * it starts, in a group of its own that commits nothing, and hands each outcome to the requests waiting for it.
 * Outcomes are kept a few minutes, so a request that starts waiting after its (fast) job ended still finds it.
 */
import type { Logger } from '../../core/logger.js';
import {
  JOB_RESULTS, StreamConsumer, checkJobResult, decodeMessage, prefixed, type DeadLetterWriter, type JobOutcome, type Kafka,
} from '../../streams/index.js';
import type { JobOutcomeWaiter } from '../ports.js';

export interface KafkaJobOutcomesOptions {
  readonly kafka: Kafka;
  readonly topicPrefix: string;
  /** This gateway's own group (it commits nothing: the group vanishes from the broker when the gateway stops). */
  readonly groupId: string;
  readonly deadLetter: DeadLetterWriter;
  readonly log: Logger;
  /** How long an outcome stays findable after it arrived. @default 300000 */
  readonly keepMs?: number;
  /** Most outcomes kept (oldest dropped first). @default 20000 */
  readonly maxKept?: number;
}

export class KafkaJobOutcomes implements JobOutcomeWaiter {
  readonly #o: KafkaJobOutcomesOptions;
  readonly #consumer: StreamConsumer<JobOutcome>;
  /** Insertion-ordered: the oldest outcome is the first key. */
  readonly #recent = new Map<string, { readonly outcome: JobOutcome; readonly at: number }>();
  readonly #waiters = new Map<string, Set<(o: JobOutcome) => void>>();

  constructor(options: KafkaJobOutcomesOptions) {
    this.#o = options;
    this.#consumer = new StreamConsumer<JobOutcome>({
      kafka: options.kafka, groupId: options.groupId, topics: [prefixed(options.topicPrefix, JOB_RESULTS.name)],
      decode: (value) => decodeMessage(checkJobResult, value),
      handler: async (m) => this.#arrived(m.value),
      deadLetter: options.deadLetter, log: options.log.child({ component: 'job-outcomes' }),
      fromBeginning: false, commitOffsets: false, maxWaitTimeMs: 50, partitionsConsumedConcurrently: 6,
    });
  }

  start(): Promise<void> {
    return this.#consumer.start();
  }

  close(): Promise<void> {
    return this.#consumer.close();
  }

  recent(jobId: string): JobOutcome | undefined {
    return this.#recent.get(jobId)?.outcome;
  }

  wait(jobId: string, timeoutMs: number): Promise<JobOutcome | undefined> {
    const known = this.recent(jobId);
    if (known) return Promise.resolve(known);
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(jobId) ?? new Set<(o: JobOutcome) => void>();
      this.#waiters.set(jobId, waiters);
      const done = (o: JobOutcome | undefined): void => {
        clearTimeout(timer);
        waiters.delete(deliver);
        if (waiters.size === 0) this.#waiters.delete(jobId);
        resolve(o);
      };
      const deliver = (o: JobOutcome): void => done(o);
      const timer = setTimeout(() => done(undefined), timeoutMs);
      waiters.add(deliver);
    });
  }

  #arrived(outcome: JobOutcome): void {
    // A takeover may send an outcome again, unchanged: the first one counts.
    if (this.#recent.has(outcome.jobId)) return;
    const now = Date.now();
    this.#recent.set(outcome.jobId, { outcome, at: now });
    for (const [id, r] of this.#recent) {
      if (this.#recent.size <= (this.#o.maxKept ?? 20_000) && now - r.at <= (this.#o.keepMs ?? 300_000)) break;
      this.#recent.delete(id);
    }
    for (const deliver of [...(this.#waiters.get(outcome.jobId) ?? [])]) deliver(outcome);
  }
}
