/**
 * "Has this consumer group handled everything written so far?" — for tests that assert the absence of something (a
 * duplicate row, a second dispatch): instead of sleeping a fixed time and hoping, they wait until the consumer whose
 * output they read has committed past every record that existed when they started waiting.
 */
import type { Kafka } from '../../streams/index.js';

/**
 * Resolves once `groupId` has committed, on every partition of `topic`, an offset at or past the partition's end as
 * it was when this was called. Consumers that commit only after a message's effects are durable (the ClickHouse sink,
 * the actor host) have then made every such effect visible. Throws after `timeoutMs` naming the partitions behind.
 */
export async function waitUntilConsumed(kafka: Kafka, groupId: string, topic: string, timeoutMs = 60_000): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = (await admin.fetchTopicOffsets(topic))
      .map((o) => ({ partition: o.partition, high: BigInt(o.high), low: BigInt(o.low) }))
      .filter((o) => o.high > o.low);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const at = new Map((committed?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
      const behind = ends.filter((e) => (at.get(e.partition) ?? -1n) < e.high);
      if (behind.length === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`group ${groupId} did not consume ${topic} within ${timeoutMs} ms; behind: ${behind.map((b) => `${b.partition}@${String(at.get(b.partition) ?? -1n)}<${b.high}`).join(', ')}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await admin.disconnect();
  }
}
