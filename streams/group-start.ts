/**
 * Where a consumer group that has never committed starts: at the end of its topics, for readers that act on what
 * happens from now on (the webhook worker must not announce a week of past outcomes the first time it runs). Done
 * by committing the current end offsets for the new group before it joins, rather than `fromBeginning: false`:
 * a group that has not committed yet would otherwise start at the end again after a restart and skip what was
 * written while it was down.
 */
import type { Logger } from '../core/logger.js';
import type { Admin } from './kafka-client.js';

export async function startNewGroupAtEnd(admin: Admin, groupId: string, topics: readonly string[], log: Logger): Promise<void> {
  const committed = await admin.fetchOffsets({ groupId, topics: [...topics] });
  if (committed.some((t) => t.partitions.some((p) => Number(p.offset) >= 0))) return;
  try {
    for (const topic of topics) {
      // Explicit offsets: kafkajs' resetOffsets seeks to the logical "latest" (-1), which commits no position.
      const ends = await admin.fetchTopicOffsets(topic);
      await admin.setOffsets({ groupId, topic, partitions: ends.map((e) => ({ partition: e.partition, offset: e.high })) });
    }
    log.info({ group: groupId, topics: topics.join(',') }, 'new consumer group starts at the end of its topics');
  } catch (err) {
    // Another instance joined first (offsets of a group with members cannot be set): it starts the group instead.
    log.warn({ group: groupId, err: err instanceof Error ? err.message : String(err) }, 'could not set the new group\'s start; left to the instance that joined first');
  }
}
