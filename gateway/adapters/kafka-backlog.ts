/**
 * JobAdmission over Kafka: every `intervalMs` it sums the lag of every engine queue (`tasks.<stage>.<engine_id>`,
 * read by group `<prefix>-engine-<engine_id>`), as dalston_queue_depth does, and how many tasks were taken since the
 * last sample. Queues are found by listing topics, so engines added later count without a restart.
 */
import type { Logger } from '../../core/logger.js';
import { consumerGroupLag, engineGroupId, prefixed, type Admin } from '../../streams/index.js';
import { admissionDecision, type AdmissionRefusal, type BacklogSample, type JobAdmission } from '../job-admission.js';

export interface KafkaBacklogOptions {
  readonly admin: Admin;
  readonly topicPrefix: string;
  /** DALSTON_MAX_QUEUED_TASKS; 0: never refuse (the sampler does not run). */
  readonly limit: number;
  readonly log: Logger;
  /** @default 2000 */
  readonly intervalMs?: number;
}

/**
 * The engine a queue topic belongs to: `<prefix>tasks.<stage>.<engine_id>` (stages have no dot; engine ids may).
 * `tasks.control` has no engine part, so it is no queue.
 */
export function engineOfQueue(topic: string, topicPrefix: string): string | undefined {
  const head = prefixed(topicPrefix, 'tasks.');
  if (!topic.startsWith(head)) return undefined;
  const rest = topic.slice(head.length);
  const dot = rest.indexOf('.');
  return dot > 0 && dot < rest.length - 1 ? rest.slice(dot + 1) : undefined;
}

export class KafkaBacklog implements JobAdmission {
  readonly #o: KafkaBacklogOptions;
  #sample: BacklogSample | undefined;
  #admittedSince = 0;
  #previous: { at: number; committed: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failing = false;

  constructor(options: KafkaBacklogOptions) {
    this.#o = options;
  }

  get sample(): BacklogSample | undefined {
    return this.#sample;
  }

  /** Takes a first sample, then one every intervalMs. */
  async start(): Promise<void> {
    if (this.#o.limit <= 0) return;
    await this.sampleNow();
    this.#timer = setInterval(() => void this.sampleNow(), this.#o.intervalMs ?? 2000);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
  }

  refusal(): AdmissionRefusal | undefined {
    return admissionDecision(this.#sample, this.#admittedSince, this.#o.limit);
  }

  admitted(): void {
    this.#admittedSince++;
  }

  /** One sample now (exported for tests). A failed sample keeps the last one: admission must not fail with Kafka's admin. */
  async sampleNow(): Promise<void> {
    const { admin, topicPrefix } = this.#o;
    try {
      const queues = (await admin.listTopics()).flatMap((topic) => {
        const engineId = engineOfQueue(topic, topicPrefix);
        return engineId === undefined ? [] : [{ topic, engineId }];
      });
      let queued = 0;
      let committed = 0;
      for (const { topic, engineId } of queues) {
        const [lag] = await consumerGroupLag(admin, engineGroupId(topicPrefix, engineId), [topic]);
        queued += lag?.lag ?? 0;
        for (const p of lag?.partitions ?? []) committed += Number(p.committed);
      }
      const at = Date.now();
      const prev = this.#previous;
      const drainPerSecond = prev && at > prev.at ? Math.max(0, committed - prev.committed) / ((at - prev.at) / 1000) : undefined;
      this.#previous = { at, committed };
      this.#sample = { queuedTasks: queued, drainPerSecond };
      this.#admittedSince = 0;
      if (this.#failing) this.#o.log.info({ queued_tasks: queued }, 'backlog sampling recovered');
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) this.#o.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'backlog not sampled; admission uses the last sample');
      this.#failing = true;
    }
  }
}
