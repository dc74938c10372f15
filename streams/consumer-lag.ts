/**
 * Consumer-group lag: how many messages of each topic the group has not yet committed. Feeds the
 * dalston_queue_depth gauge (one admin round trip per topic plus one for the group's offsets).
 */
import type { Admin } from './kafka-client.js';

export interface PartitionLag {
  readonly partition: number;
  /** Next offset the broker will assign. */
  readonly high: string;
  /** Next offset the group will read; for a partition the group never committed, the log start. */
  readonly committed: string;
  readonly lag: number;
}

export interface TopicLag {
  readonly topic: string;
  /** Sum over partitions of high watermark minus committed offset. */
  readonly lag: number;
  /** The group has committed an offset on some partition of the topic: a consumer of it has existed. */
  readonly committedOnce: boolean;
  readonly partitions: readonly PartitionLag[];
}

/**
 * Lag of `groupId` on each of `topics`. A partition without a committed offset counts from its low watermark,
 * because Dalston consumers start from the earliest offset (fromBeginning) when a group is new.
 */
/**
 * Which groups have a consumer now (members in the broker's description). With `committedOnce`, this tells an
 * engine that exists or has existed from one that was never deployed, whose lag would only ever grow.
 */
export async function groupsWithMembers(admin: Admin, groupIds: readonly string[]): Promise<Set<string>> {
  if (groupIds.length === 0) return new Set();
  const { groups } = await admin.describeGroups([...groupIds]);
  return new Set(groups.filter((g) => g.members.length > 0).map((g) => g.groupId));
}

export async function consumerGroupLag(admin: Admin, groupId: string, topics: readonly string[]): Promise<TopicLag[]> {
  if (topics.length === 0) return [];
  const committed = await admin.fetchOffsets({ groupId, topics: [...topics] });
  const byTopic = new Map(committed.map((t) => [t.topic, new Map(t.partitions.map((p) => [p.partition, p.offset]))]));
  const out: TopicLag[] = [];
  for (const topic of topics) {
    const watermarks = await admin.fetchTopicOffsets(topic);
    const groupOffsets = byTopic.get(topic);
    const partitions = watermarks
      .map((w): PartitionLag => {
        const high = BigInt(w.high);
        const low = BigInt(w.low);
        const raw = groupOffsets?.get(w.partition);
        // -1 (never committed) or an offset below the log start (retention deleted it): count from the start.
        let from = raw === undefined || BigInt(raw) < 0n ? low : BigInt(raw);
        if (from < low) from = low;
        const lag = high > from ? Number(high - from) : 0;
        return { partition: w.partition, high: w.high, committed: from.toString(), lag };
      })
      .sort((a, b) => a.partition - b.partition);
    const committedOnce = [...(groupOffsets?.values() ?? [])].some((o) => BigInt(o) >= 0n);
    out.push({ topic, lag: partitions.reduce((sum, p) => sum + p.lag, 0), partitions, committedOnce });
  }
  return out;
}
