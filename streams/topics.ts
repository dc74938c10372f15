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
export const DEAD_LETTER: TopicDefinition = {
  name: 'dead-letter', partitions: 1, cleanupPolicy: 'delete', producers: 'any consumer', consumers: 'operators',
  config: { 'retention.ms': String(14 * 24 * 3600 * 1000) },
};

/** Stage work queues: one topic per stage, consumed by engine groups `dalston-engine-<engine_id>`. */
export function stageTopic(stage: string): TopicDefinition {
  return {
    name: `tasks.${stage}`, partitions: 6, cleanupPolicy: 'delete',
    producers: 'actor hosts', consumers: `engines of stage ${stage}`,
  };
}

/** Stages with a work topic created at start-up (per-channel transcribe tasks share the transcribe topic). */
export const STAGE_TOPICS = ['prepare', 'vad', 'transcribe', 'align', 'diarize', 'pii_detect', 'audio_redact', 'merge'].map(stageTopic);

export const ALL_TOPICS: readonly TopicDefinition[] = [JOB_EVENTS, JOB_STATE, TASK_CONTROL, ANALYTICS, DEAD_LETTER, ...STAGE_TOPICS];

/** Topic that carries a stage's work: per-channel stages (`transcribe_ch1`) use their base stage's topic. */
export function topicForStage(stage: string): string {
  return `tasks.${stage.replace(/_ch\d+$/, '')}`;
}

export function prefixed(prefix: string, name: string): string {
  return `${prefix}${name}`;
}

export function engineGroupId(prefix: string, engineId: string): string {
  return `${prefix.replace(/\.$/, "")}-engine-${engineId}`;
}
