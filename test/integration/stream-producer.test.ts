/**
 * StreamProducer against the suite's real Kafka: the headers it writes (names, values, nothing sent empty), where a
 * key lands (Java-client murmur2, checked against an independent implementation and Kafka's own test vectors), an
 * explicit partition, tombstones, batches over several topics, the W3C trace context from producer to a consumer's
 * handler, its lifecycle (no send before connect or after close, close waits for sends in flight), and a failed
 * send surfacing as a retryable DependencyUnavailableError.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { ROOT_CONTEXT, context as otelContext, propagation, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { ManualClock } from '../../core/clock.js';
import { DependencyUnavailableError, IllegalStateError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { StreamConsumer } from '../../streams/consumer.js';
import { newMessageHeaders, type MessageHeaders } from '../../streams/headers.js';
import { createKafka, ensureTopics, type Kafka } from '../../streams/kafka-client.js';
import { StreamProducer } from '../../streams/producer.js';
import { eventually } from '../support/runtime-fixture.js';
import { startTestKafka, type TestKafka } from '../../harness/kafka-fixture.js';

// The consumer continues the producer's trace through the active context: that needs a real context manager.
otelContext.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

const run = randomBytes(4).toString('hex');
const topicName = (s: string): string => `test.producer.${run}.${s}`;
const TOPICS = { headers: topicName('headers'), keyed: topicName('keyed'), batchA: topicName('batch-a'), batchB: topicName('batch-b'), trace: topicName('trace'), lifecycle: topicName('lifecycle'), manyKeys: topicName('many-keys') };
const KEYED_PARTITIONS = 6;

let broker: TestKafka;
let kafka: Kafka;
let producer: StreamProducer;

before(async () => {
  broker = await startTestKafka(silentLogger);
  kafka = createKafka({ brokers: broker.brokers, clientId: `producer-test-${run}`, log: silentLogger });
  await ensureTopics(kafka, [
    { name: TOPICS.headers, partitions: 1, cleanupPolicy: 'delete' },
    { name: TOPICS.keyed, partitions: KEYED_PARTITIONS, cleanupPolicy: 'delete' },
    { name: TOPICS.batchA, partitions: 2, cleanupPolicy: 'delete' },
    { name: TOPICS.batchB, partitions: 1, cleanupPolicy: 'delete' },
    { name: TOPICS.trace, partitions: 1, cleanupPolicy: 'delete' },
    { name: TOPICS.lifecycle, partitions: 1, cleanupPolicy: 'delete' },
    { name: TOPICS.manyKeys, partitions: 3, cleanupPolicy: 'delete' },
  ], silentLogger);
  producer = new StreamProducer({ kafka, log: silentLogger });
  await producer.connect();
});

after(async () => {
  await producer?.close();
  await broker?.stop();
});

/** A record as it sits in the topic: every header verbatim, where it landed. */
interface Landed {
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  /** null for a tombstone. */
  readonly value: string | null;
  readonly raw: Readonly<Record<string, string>>;
}

/** Reads `topic` from its start until `expected` records arrived (no offsets committed; headers taken verbatim). */
async function readAll(topic: string, expected: number): Promise<Landed[]> {
  const got: Landed[] = [];
  const c = new StreamConsumer<{ value: string | null; raw: Readonly<Record<string, string>> }>({
    kafka, groupId: `reader-${randomBytes(6).toString('hex')}`, topics: [topic], log: silentLogger, deadLetter: { write: async () => undefined },
    fromBeginning: true, commitOffsets: false, maxWaitTimeMs: 100, externalProducers: true,
    decode: (value, _headers, raw) => ({ value: value.toString('utf8'), raw }),
    onTombstone: () => ({ value: null, raw: {} }),
    handler: async (m) => {
      got.push({ partition: m.partition, offset: m.offset, key: m.key, value: m.value.value, raw: m.value.raw });
    },
  });
  await c.start();
  try {
    await eventually(() => (got.length >= expected ? true : undefined), 30_000, `${expected} records on ${topic}`);
  } finally {
    await c.close();
  }
  assert.equal(got.length, expected, `exactly ${expected} records on ${topic}`);
  return got;
}

/** Kafka's murmur2 (clients/.../common/utils/Utils.java), written from the Java source: the partitioner's reference. */
function murmur2(data: Buffer): number {
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ data.length) | 0;
  for (let i = 0; i + 4 <= data.length; i += 4) {
    let k = data.readInt32LE(i);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = data.length & ~3;
  const rest = data.length % 4;
  if (rest >= 3) h ^= (data[tail + 2] ?? 0) << 16;
  if (rest >= 2) h ^= (data[tail + 1] ?? 0) << 8;
  if (rest >= 1) h = Math.imul(h ^ (data[tail] ?? 0), m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition the Java client picks for a key. */
function javaPartition(key: string, partitions: number): number {
  return (murmur2(Buffer.from(key, 'utf8')) & 0x7fffffff) % partitions;
}

void test('the reference murmur2 matches the vectors of Kafka\'s own UtilsTest', () => {
  const vectors: [string, number][] = [
    ['21', -973932308], ['foobar', -790332482], ['a-little-bit-long-string', -985981536], ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971], ['abc', 479470107],
  ];
  for (const [input, hash] of vectors) assert.equal(murmur2(Buffer.from(input)), hash, input);
});

void test('headers go on the record under their wire names with their exact values; absent optional ones are not sent', async () => {
  const clock = new ManualClock(1_700_000_000_321);
  const full: MessageHeaders = {
    ...newMessageHeaders({ requestId: 'req-full', tenantId: 'tenant-a', clock }),
    traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`, tracestate: 'dalston=1',
  };
  const bare = newMessageHeaders({ clock });
  const r1 = await producer.send(TOPICS.headers, { key: 'h', value: Buffer.from('full'), headers: full });
  const r2 = await producer.send(TOPICS.headers, { key: 'h', value: Buffer.from('bare'), headers: bare });
  assert.deepEqual([r1.topic, r1.partition, r2.partition], [TOPICS.headers, 0, 0]);
  assert.equal(BigInt(r2.baseOffset), BigInt(r1.baseOffset) + 1n, 'sends to one partition get consecutive offsets');

  const [a, b] = await readAll(TOPICS.headers, 2);
  assert.equal(a?.value, 'full');
  assert.equal(a?.offset, r1.baseOffset, 'the send result names the offset the record got');
  assert.deepEqual(a?.raw, {
    message_id: full.messageId, enqueued_at: '1700000000321', request_id: 'req-full', tenant_id: 'tenant-a',
    traceparent: full.traceparent, tracestate: 'dalston=1',
  });
  assert.equal(b?.value, 'bare');
  assert.deepEqual(b?.raw, { message_id: bare.messageId, enqueued_at: '1700000000321' });
  assert.notEqual(full.messageId, bare.messageId);
});

void test('a key always lands in the partition the Java client would pick; an explicit partition overrides the key; a null value is a tombstone', async () => {
  const keys = Array.from({ length: 24 }, (_, i) => `job_${i}_${run}`);
  const expected = new Map(keys.map((k) => [k, javaPartition(k, KEYED_PARTITIONS)]));
  assert.ok(new Set(expected.values()).size >= 4, 'the keys spread over several partitions, so a wrong partitioner shows');
  const results = await producer.sendBatch([{ topic: TOPICS.keyed, messages: keys.map((key) => ({ key, value: Buffer.from(key), headers: newMessageHeaders() })) }]);
  assert.deepEqual(
    results.map((r) => r.partition).sort((x, y) => x - y),
    [...new Set(expected.values())].sort((x, y) => x - y),
    'one result per partition the batch touched',
  );
  const forced = keys[0] ?? '';
  const other = ((expected.get(forced) ?? 0) + 1) % KEYED_PARTITIONS;
  const pinned = await producer.send(TOPICS.keyed, { key: forced, partition: other, value: Buffer.from('pinned'), headers: newMessageHeaders() });
  assert.equal(pinned.partition, other);
  const tomb = await producer.send(TOPICS.keyed, { key: keys[1] ?? '', value: null, headers: newMessageHeaders() });
  assert.equal(tomb.partition, expected.get(keys[1] ?? ''));

  const landed = await readAll(TOPICS.keyed, keys.length + 2);
  for (const r of landed.filter((x) => x.value !== 'pinned' && x.value !== null)) {
    assert.equal(r.partition, expected.get(r.key ?? ''), `${r.key} in the Java client's partition`);
    assert.equal(r.value, r.key);
  }
  const p = landed.find((x) => x.value === 'pinned');
  assert.deepEqual([p?.key, p?.partition, p?.offset], [forced, other, pinned.baseOffset]);
  const t = landed.find((x) => x.value === null);
  assert.deepEqual([t?.key, t?.partition, t?.offset], [keys[1], expected.get(keys[1] ?? ''), tomb.baseOffset]);
});

void test('one sendBatch reaches several topics; a key\'s messages keep their order inside a batch', async () => {
  const batchA = Array.from({ length: 10 }, (_, seq) => ({ key: seq % 2 === 0 ? 'even' : 'odd', value: Buffer.from(String(seq)), headers: newMessageHeaders() }));
  const results = await producer.sendBatch([
    { topic: TOPICS.batchA, messages: batchA },
    { topic: TOPICS.batchB, messages: [{ key: 'b', value: Buffer.from('b0'), headers: newMessageHeaders() }] },
    { topic: TOPICS.headers, messages: [] }, // an empty batch is skipped, not an error
  ]);
  assert.deepEqual(
    results.map((r) => `${r.topic}/${r.partition}`).sort(),
    [
      ...new Set(['even', 'odd'].map((k) => `${TOPICS.batchA}/${javaPartition(k, 2)}`)),
      `${TOPICS.batchB}/0`,
    ].sort(),
  );
  assert.deepEqual(await producer.sendBatch([{ topic: TOPICS.batchB, messages: [] }]), [], 'nothing to send, nothing sent');

  const a = await readAll(TOPICS.batchA, 10);
  for (const key of ['even', 'odd']) {
    const mine = a.filter((r) => r.key === key);
    assert.deepEqual(mine.map((r) => Number(r.value)), key === 'even' ? [0, 2, 4, 6, 8] : [1, 3, 5, 7, 9], `${key} in order`);
    assert.deepEqual(mine.map((r) => BigInt(r.offset)), [...mine.map((r) => BigInt(r.offset))].sort((x, y) => (x < y ? -1 : 1)), 'offsets ascend');
  }
  const [b] = await readAll(TOPICS.batchB, 1);
  assert.equal(b?.value, 'b0');
});

void test('the trace context of the sending span reaches the consumer: its handler runs in the producer\'s trace', async () => {
  assert.equal(propagation.setGlobalPropagator(new W3CTraceContextPropagator()), true);
  try {
    const traceId = randomBytes(16).toString('hex');
    const spanId = randomBytes(8).toString('hex');
    const sending = trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: TraceFlags.SAMPLED });
    // Headers are built in the sender's active context, as the gateway and the actors do.
    const headers = otelContext.with(sending, () => newMessageHeaders({ requestId: 'req-trace' }));
    assert.equal(headers.traceparent, `00-${traceId}-${spanId}-01`);
    await producer.send(TOPICS.trace, { key: 't', value: Buffer.from('x'), headers });
    // One with no trace at all: the handler must then not inherit the previous message's.
    await producer.send(TOPICS.trace, { key: 't', value: Buffer.from('y'), headers: otelContext.with(ROOT_CONTEXT, () => newMessageHeaders()) });

    const seen: { value: string; traceId: string | undefined; spanId: string | undefined; remote: boolean | undefined; raw: string | undefined }[] = [];
    const c = new StreamConsumer<string>({
      kafka, groupId: `trace-${run}`, topics: [TOPICS.trace], log: silentLogger, deadLetter: { write: async () => undefined },
      commitOffsets: false, maxWaitTimeMs: 100,
      decode: (value) => value.toString('utf8'),
      handler: async (m) => {
        const active = trace.getSpanContext(otelContext.active());
        seen.push({ value: m.value, traceId: active?.traceId, spanId: active?.spanId, remote: active?.isRemote, raw: m.headers.traceparent });
      },
    });
    await c.start();
    try {
      await eventually(() => (seen.length >= 2 ? true : undefined), 30_000, 'both messages handled');
    } finally {
      await c.close();
    }
    assert.deepEqual(seen, [
      { value: 'x', traceId, spanId, remote: true, raw: `00-${traceId}-${spanId}-01` },
      { value: 'y', traceId: undefined, spanId: undefined, remote: undefined, raw: undefined },
    ]);
  } finally {
    propagation.disable();
  }
});

void test('lifecycle: no send before connect or after close; close waits for sends in flight and is idempotent', async () => {
  const p = new StreamProducer({ kafka, log: silentLogger });
  assert.equal(p.state, 'idle');
  await assert.rejects(p.send(TOPICS.lifecycle, { key: 'l', value: Buffer.from('early'), headers: newMessageHeaders() }), IllegalStateError);
  await p.connect();
  assert.equal(p.state, 'connected');
  await assert.rejects(p.connect(), IllegalStateError);

  const inFlight = p.send(TOPICS.lifecycle, { key: 'late', value: Buffer.from('in flight at close'), headers: newMessageHeaders() });
  assert.equal(p.pending, 1);
  const closing = p.close();
  assert.equal(p.state, 'closing');
  await assert.rejects(p.send(TOPICS.lifecycle, { key: 'l', value: Buffer.from('refused'), headers: newMessageHeaders() }), IllegalStateError);
  const sent = await inFlight;
  await closing;
  assert.equal(p.state, 'closed');
  assert.equal(p.pending, 0);
  await p.close();
  assert.equal(p.state, 'closed');
  await assert.rejects(p.send(TOPICS.lifecycle, { key: 'l', value: Buffer.from('after'), headers: newMessageHeaders() }), IllegalStateError);
  // The send that was in flight when close() began was delivered, not dropped.
  const [landed] = await readAll(TOPICS.lifecycle, 1);
  assert.deepEqual([landed?.value, landed?.offset], ['in flight at close', sent.baseOffset]);
});

void test('a send the broker refuses is a retryable DependencyUnavailableError naming the topic', async () => {
  // One retry (an idempotent producer needs some), so the refusal of a topic that does not exist comes back soon.
  const impatient = createKafka({ brokers: broker.brokers, clientId: `producer-test-${run}-noretry`, log: silentLogger, retries: 1 });
  const p = new StreamProducer({ kafka: impatient, log: silentLogger });
  await p.connect();
  try {
    const missing = topicName('does-not-exist');
    await assert.rejects(p.send(missing, { key: 'x', value: Buffer.from('x'), headers: newMessageHeaders() }), (err: unknown) => {
      assert.ok(err instanceof DependencyUnavailableError, String(err));
      assert.equal(err.retryable, true);
      assert.match(err.message, new RegExp(`Kafka send to ${missing.replace(/\./g, '\\.')} failed`));
      return true;
    });
    assert.equal(p.pending, 0, 'a failed send is no longer pending');
  } finally {
    await p.close();
  }
});

test('many keys sending at once: every message lands once, each key in the order its sends were awaited, a batch mixing keys included', async () => {
  // kafkajs keeps no order between sends that are in flight together (seen here: a key's third message landed before
  // its second): Dalston's callers await a key's sends one after another (an actor's mailbox), and that order must hold.
  const keys = Array.from({ length: 8 }, (_, i) => `key-${i}`);
  const chained = 24;
  const msg = (key: string, seq: number) => ({ key, value: Buffer.from(`${key}#${seq}`), headers: newMessageHeaders() });
  await Promise.all(keys.map(async (key) => {
    for (let seq = 0; seq < chained; seq += 3) {
      await producer.send(TOPICS.manyKeys, msg(key, seq));
      await producer.sendBatch([{ topic: TOPICS.manyKeys, messages: [msg(key, seq + 1), msg(key, seq + 2)] }]);
    }
  }));
  // One batch carrying two messages of every key: each key's pair in order.
  const results = await producer.sendBatch([{ topic: TOPICS.manyKeys, messages: keys.flatMap((key) => [msg(key, chained), msg(key, chained + 1)]) }]);
  assert.equal(new Set(results.map((r) => `${r.topic}/${r.partition}`)).size, results.length, 'one result per partition the batch touched');
  const landed = await readAll(TOPICS.manyKeys, keys.length * (chained + 2));
  for (const key of keys) {
    const mine = landed.filter((r) => r.key === key);
    assert.equal(new Set(mine.map((r) => r.partition)).size, 1, `${key}: one partition`);
    const order = [...mine].sort((a, b) => Number(BigInt(a.offset) - BigInt(b.offset))).map((r) => Number((r.value ?? '').split('#')[1]));
    assert.deepEqual(order, Array.from({ length: chained + 2 }, (_, i) => i), `${key}: its messages in the order they were sent`);
  }
});
