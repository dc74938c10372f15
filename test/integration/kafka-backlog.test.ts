/**
 * The gateway's backlog sampler on the real broker: it finds every engine queue by listing topics, sums the lag of
 * each engine's group, measures how fast the queues drain, and refuses once the limit is reached.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../core/logger.js';
import { KafkaBacklog } from '../../gateway/adapters/kafka-backlog.js';
import { TASK_CONTROL, createKafka, engineGroupId, engineTaskTopic, ensureTopics, prefixed } from '../../streams/index.js';
import { startTestKafka } from '../../harness/kafka-fixture.js';

test('KafkaBacklog sums every engine queue\'s lag, sees it drain, and refuses at the limit', async () => {
  const broker = await startTestKafka(silentLogger);
  const prefix = `bl-${randomBytes(3).toString('hex')}.`;
  const kafka = createKafka({ brokers: broker.brokers, clientId: 'backlog-test', log: silentLogger });
  const admin = kafka.admin();
  await admin.connect();
  const producer = kafka.producer();
  await producer.connect();
  try {
    const queues = [engineTaskTopic('prepare', 'audio-prepare'), engineTaskTopic('transcribe', 'stt-batch-transcribe-onnx-whisper-tiny.en')];
    const control = { ...TASK_CONTROL, name: prefixed(prefix, TASK_CONTROL.name) };
    await ensureTopics(kafka, [...queues.map((q) => ({ ...q, name: prefixed(prefix, q.name) })), control]);
    const send = (topic: string, n: number) => producer.send({ topic, messages: Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: 'x' })) });
    await send(prefixed(prefix, queues[0]?.name ?? ''), 2);
    await send(prefixed(prefix, queues[1]?.name ?? ''), 4);
    await send(control.name, 7); // tasks.control is no queue

    const backlog = new KafkaBacklog({ admin, topicPrefix: prefix, limit: 6, log: silentLogger, intervalMs: 3_600_000 });
    await backlog.sampleNow();
    assert.equal(backlog.sample?.queuedTasks, 6, 'two queues, one with a dotted engine id; the control topic not counted');
    assert.equal(backlog.refusal()?.queuedTasks, 6, 'at the limit: refused');

    // The transcribe engine's group commits 3 of its 4 tasks: the backlog drains.
    const topic = prefixed(prefix, queues[1]?.name ?? '');
    const offsets = await admin.fetchTopicOffsets(topic);
    const taken = { n: 3 };
    const partitions = offsets.map((o) => {
      const avail = Number(o.high) - Number(o.low);
      const take = Math.min(avail, taken.n);
      taken.n -= take;
      return { partition: o.partition, offset: String(Number(o.low) + take) };
    });
    await admin.setOffsets({ groupId: engineGroupId(prefix, 'stt-batch-transcribe-onnx-whisper-tiny.en'), topic, partitions });
    await backlog.sampleNow();
    assert.equal(backlog.sample?.queuedTasks, 3);
    assert.ok((backlog.sample?.drainPerSecond ?? 0) > 0, `draining: ${backlog.sample?.drainPerSecond}`);
    assert.equal(backlog.refusal(), undefined, 'below the limit again');
    for (let i = 0; i < 3; i++) backlog.admitted();
    assert.equal(backlog.refusal()?.queuedTasks, 6, 'jobs admitted since the sample count until the next one');
  } finally {
    await producer.disconnect();
    await admin.disconnect();
    await broker.stop();
  }
});
