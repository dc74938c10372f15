/**
 * startNewGroupAtEnd on the real broker: a group that never committed starts at the end of its topics (and keeps
 * what is written after); a group that has committed is left where it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../core/logger.js';
import { createKafka, ensureTopics, startNewGroupAtEnd } from '../../streams/index.js';
import { startTestKafka } from '../../harness/kafka-fixture.js';

test('a new group is started at the end of its topics; a group with commits is untouched', async () => {
  const broker = await startTestKafka(silentLogger);
  const kafka = createKafka({ brokers: broker.brokers, clientId: 'group-start-test', log: silentLogger });
  const admin = kafka.admin();
  await admin.connect();
  const producer = kafka.producer();
  await producer.connect();
  try {
    const topic = `gs-${randomBytes(3).toString('hex')}.events`;
    await ensureTopics(kafka, [{ name: topic, partitions: 3, cleanupPolicy: 'delete' }]);
    await producer.send({ topic, messages: Array.from({ length: 9 }, (_, i) => ({ key: `k${i}`, value: 'old' })) });
    const fresh = `gs-fresh-${randomBytes(3).toString('hex')}`;
    await startNewGroupAtEnd(admin, fresh, [topic], silentLogger);
    const ends = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, o.high]));
    const [set] = await admin.fetchOffsets({ groupId: fresh, topics: [topic] });
    assert.deepEqual(new Map(set?.partitions.map((p) => [p.partition, p.offset])), ends, 'committed at the end: the 9 old records are not read');

    // Later records are read from there, and a second start (the group has offsets now) changes nothing.
    await producer.send({ topic, messages: [{ key: 'k0', value: 'new' }] });
    await startNewGroupAtEnd(admin, fresh, [topic], silentLogger);
    const [again] = await admin.fetchOffsets({ groupId: fresh, topics: [topic] });
    assert.deepEqual(new Map(again?.partitions.map((p) => [p.partition, p.offset])), ends, 'left where it was');
  } finally {
    await producer.disconnect();
    await admin.disconnect();
  }
});
