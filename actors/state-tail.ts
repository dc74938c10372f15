/**
 * Reads the compacted jobs.state topic into memory: the latest snapshot of every job, by partition. An actor
 * host restores the actors of a newly assigned partition from here once the tail has caught up with that
 * partition's high watermark, so nothing written by the previous owner is missed.
 *
 * It uses a throwaway consumer group per host instance (no member shares its partitions) and never relies on
 * committed offsets: every start re-reads the compacted topic from the beginning.
 */
import { randomUUID } from 'node:crypto';
import { TimeoutError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import {
  StreamConsumer, checkStateMessage, decodeMessage, type Admin, type DeadLetterWriter, type JobState, type Kafka,
} from '../streams/index.js';

export interface StateTailOptions {
  readonly kafka: Kafka;
  readonly admin: Admin;
  /** Full (prefixed) name of the jobs.state topic. */
  readonly topic: string;
  readonly groupPrefix: string;
  readonly deadLetter: DeadLetterWriter;
  readonly log: Logger;
  /** Terminal jobs remembered (for idempotent replays) before the oldest are forgotten. @default 10000 */
  readonly maxTerminal?: number;
}

interface Entry {
  readonly state: JobState;
  readonly partition: number;
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export class StateTail {
  readonly #o: StateTailOptions;
  readonly #consumer: StreamConsumer<JobState>;
  readonly #live = new Map<string, Entry>();
  /** Insertion-ordered, so the oldest terminal job is the first key. */
  readonly #terminal = new Map<string, Entry>();
  /** Next offset to read, per partition. */
  readonly #position = new Map<number, bigint>();
  readonly groupId: string;

  constructor(options: StateTailOptions) {
    this.#o = options;
    this.groupId = `${options.groupPrefix}-state-tail-${randomUUID()}`;
    this.#consumer = new StreamConsumer<JobState>({
      kafka: options.kafka,
      groupId: this.groupId,
      topics: [options.topic],
      decode: (value) => {
        const msg = decodeMessage(checkStateMessage, value);
        return msg.state;
      },
      handler: async (m) => {
        this.remember(m.value, m.partition);
        this.#position.set(m.partition, BigInt(m.offset) + 1n);
      },
      deadLetter: options.deadLetter,
      log: options.log.child({ component: 'state-tail' }),
      partitionsConsumedConcurrently: 6,
      fromBeginning: true,
      maxWaitTimeMs: 100,
    });
  }

  async start(): Promise<void> {
    await this.#consumer.start();
  }

  async close(): Promise<void> {
    await this.#consumer.close();
    // The group is this instance's alone; leave no trace of it on the broker.
    await this.#o.admin.deleteGroups([this.groupId]).catch(() => undefined);
  }

  /** Records a snapshot unless an equal or newer revision of the job is already known. */
  remember(state: JobState, partition: number): void {
    const known = this.#live.get(state.jobId) ?? this.#terminal.get(state.jobId);
    if (known && known.state.revision >= state.revision) return;
    const entry = { state, partition };
    if (TERMINAL.has(state.status)) {
      this.#live.delete(state.jobId);
      this.#terminal.delete(state.jobId);
      this.#terminal.set(state.jobId, entry);
      const max = this.#o.maxTerminal ?? 10_000;
      while (this.#terminal.size > max) {
        const oldest = this.#terminal.keys().next().value;
        if (oldest === undefined) break;
        this.#terminal.delete(oldest);
      }
    } else {
      this.#live.set(state.jobId, entry);
    }
  }

  get(jobId: string): JobState | undefined {
    return (this.#live.get(jobId) ?? this.#terminal.get(jobId))?.state;
  }

  /** Unfinished jobs whose snapshots live in `partition`. */
  liveInPartition(partition: number): JobState[] {
    return [...this.#live.values()].filter((e) => e.partition === partition).map((e) => e.state);
  }

  get liveCount(): number {
    return this.#live.size;
  }

  /** Resolves once every snapshot written to `partitions` before this call has been read. */
  async waitCaughtUp(partitions: readonly number[], timeoutMs = 30_000): Promise<void> {
    const offsets = await this.#o.admin.fetchTopicOffsets(this.#o.topic);
    const targets = offsets.filter((o) => partitions.includes(o.partition)).map((o) => ({ p: o.partition, high: BigInt(o.high), low: BigInt(o.low) }));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const behind = targets.filter((t) => t.high > t.low && (this.#position.get(t.p) ?? 0n) < t.high);
      if (behind.length === 0) return;
      if (Date.now() > deadline) {
        throw new TimeoutError(`state tail did not catch up on partitions ${behind.map((b) => b.p).join(',')} within ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** The partition a key lands on must match between jobs.events and jobs.state: both topics need the same count. */
export function assertSamePartitionCount(events: number, state: number): void {
  if (events !== state) throw new Error(`jobs.events (${events}) and jobs.state (${state}) must have the same partition count`);
}
