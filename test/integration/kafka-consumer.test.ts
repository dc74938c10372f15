/**
 * StreamConsumer's delivery guarantees on the suite's real Kafka, asserted as exact sequences of what happened:
 * handler starts and ends, dead letters made durable, and every offset commit the consumer asked the broker for (the
 * client is observed, not replaced). A commit issued before its handler ends, a retry too many or too few, a poison
 * message that is not dead-lettered, a commit past a message whose effects are not yet durable, or two messages of a
 * partition in the handler at once each change the sequence, so each fails a test here.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { DependencyUnavailableError, IllegalStateError, InvalidInputError, TimeoutError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { StreamConsumer, type ConsumedMessage, type DeferredDurability, type StreamConsumerOptions, type TopicPartitions } from '../../streams/consumer.js';
import { DeadLetterWriter, decodeDeadLetter, type DeadLetterRecord, type DeadLetterSink } from '../../streams/dead-letter.js';
import { newMessageHeaders } from '../../streams/headers.js';
import { createKafka, ensureTopics, type Admin, type Consumer, type Kafka } from '../../streams/kafka-client.js';
import { StreamProducer } from '../../streams/producer.js';
import { MessageDecodeError } from '../../streams/validate.js';
import { eventually, recordingLogger, type LogLine } from '../support/runtime-fixture.js';
import { startTestKafka, type TestKafka } from '../../harness/kafka-fixture.js';

const run = randomBytes(4).toString('hex');
const topicName = (s: string): string => `test.consumer.${run}.${s}`;
const groupName = (s: string): string => `test-consumer-${run}-${s}`;
const DLQ = topicName('dead-letter');

let broker: TestKafka;
let kafka: Kafka;
let admin: Admin;
let producer: StreamProducer;
let dlqWriter: DeadLetterWriter;

before(async () => {
  broker = await startTestKafka(silentLogger);
  kafka = createKafka({ brokers: broker.brokers, clientId: `consumer-test-${run}`, log: silentLogger });
  admin = kafka.admin();
  await admin.connect();
  producer = new StreamProducer({ kafka, log: silentLogger });
  await producer.connect();
  await ensureTopics(kafka, [{ name: DLQ, partitions: 1, cleanupPolicy: 'delete' }], silentLogger);
  dlqWriter = new DeadLetterWriter({ producer, topic: DLQ });
});

after(async () => {
  await Promise.all(built.map((c) => c.destroy()));
  await producer?.close();
  await admin?.disconnect();
  await broker?.stop();
});

/** A fresh topic for one test. */
async function topic(name: string, partitions = 1): Promise<string> {
  const t = topicName(name);
  await ensureTopics(kafka, [{ name: t, partitions, cleanupPolicy: 'delete' }], silentLogger);
  return t;
}

/** The value of a test message: which message of the test it is. */
const payload = (seq: number): Buffer => Buffer.from(JSON.stringify({ seq }));

function decode(value: Buffer): number {
  let raw: unknown;
  try {
    raw = JSON.parse(value.toString('utf8'));
  } catch (err) {
    throw new MessageDecodeError('not JSON', { cause: err });
  }
  const seq = (raw as { seq?: unknown } | null)?.seq;
  if (typeof seq !== 'number') throw new MessageDecodeError('no seq');
  return seq;
}

async function send(t: string, key: string, value: Buffer | null, partition?: number): Promise<void> {
  await producer.send(t, { key, value, headers: newMessageHeaders({ requestId: `req-${key}`, tenantId: 'tenant-c' }), ...(partition === undefined ? {} : { partition }) });
}

/** `target` with the members `override` returns in place of its own; everything else goes straight through. */
function passThrough<O extends object>(target: O, override: (prop: string | symbol) => unknown): O {
  return new Proxy(target, {
    get(t, prop) {
      const own = override(prop);
      if (own !== undefined) return own;
      const value: unknown = Reflect.get(t, prop);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
    },
  });
}

/**
 * The real Kafka client, with every offset commit a consumer makes written to `events` (`commit <partition>:<next
 * offset>`) at the moment it is issued. Everything else goes straight through.
 */
function observed(events: string[], client: Kafka = kafka): Kafka {
  return withConsumerMethod('commitOffsets', (real) => (offsets) => {
    for (const o of offsets) events.push(`commit ${o.partition}:${o.offset}`);
    return real.commitOffsets(offsets);
  }, client);
}

/** The real client, with one method of every consumer it makes replaced by `wrap(real consumer)`. */
function withConsumerMethod<K extends keyof Consumer>(method: K, wrap: (real: Consumer) => Consumer[K], client: Kafka = kafka): Kafka {
  return passThrough(client, (prop) =>
    prop !== 'consumer'
      ? undefined
      : (config: Parameters<Kafka['consumer']>[0]): Consumer => {
          const real = client.consumer(config);
          return passThrough(real, (p) => (p === method ? wrap(real) : undefined));
        },
  );
}

/**
 * The real dead-letter writer, with each durable dead letter written to `events` (`dlq <offset> <reason>`) and kept;
 * `failFirst` writes fail first (Kafka unreachable), each noted as `dlq-fail <offset>`.
 */
class ObservedDeadLetters implements DeadLetterSink {
  readonly records: DeadLetterRecord[] = [];
  #failuresLeft: number;

  constructor(private readonly events: string[], failFirst = 0) {
    this.#failuresLeft = failFirst;
  }

  async write(record: DeadLetterRecord): Promise<void> {
    if (this.#failuresLeft > 0) {
      this.#failuresLeft--;
      this.events.push(`dlq-fail ${record.source.offset}`);
      throw new DependencyUnavailableError('dead-letter topic unreachable (injected)');
    }
    await dlqWriter.write(record);
    this.records.push(record);
    this.events.push(`dlq ${record.source.offset} ${record.reason}`);
  }
}

type Options<T> = Omit<StreamConsumerOptions<T>, 'kafka' | 'log' | 'deadLetter' | 'topics' | 'groupId'> & { readonly deadLetter?: DeadLetterSink };

/** Every consumer a test built: destroyed at the end, so a failed assertion cannot leave one running (and the file hanging). */
const built: { destroy(): Promise<void> }[] = [];

function consumer<T>(events: string[], t: string, group: string, o: Options<T>): StreamConsumer<T> {
  const c = new StreamConsumer<T>({
    kafka: observed(events), log: silentLogger, deadLetter: o.deadLetter ?? new ObservedDeadLetters(events), topics: [t], groupId: group,
    maxWaitTimeMs: 100, retry: { initialBackoffMs: 2, maxBackoffMs: 8 }, ...o,
  });
  built.push(c);
  return c;
}

/** Handler bookkeeping: `start <offset>#<attempt>` on entry, `end <offset>` on success, `fail <offset>#<attempt>` on a throw. */
function tracked<T>(events: string[], body: (m: ConsumedMessage<T>) => Promise<void | DeferredDurability>): (m: ConsumedMessage<T>) => Promise<void | DeferredDurability> {
  return async (m) => {
    events.push(`start ${m.offset}#${m.attempt}`);
    try {
      const result = await body(m);
      events.push(`end ${m.offset}`);
      return result;
    } catch (err) {
      events.push(`fail ${m.offset}#${m.attempt}`);
      throw err;
    }
  };
}

async function committed(group: string, t: string): Promise<Map<number, string>> {
  const res = await admin.fetchOffsets({ groupId: group, topics: [t] });
  return new Map((res[0]?.partitions ?? []).map((p) => [p.partition, p.offset]));
}

const has = (events: readonly string[], e: string) => (): true | undefined => (events.includes(e) ? true : undefined);

void test('options are validated before anything connects; a consumer starts once', async () => {
  const base = { kafka, log: silentLogger, deadLetter: dlqWriter, groupId: groupName('options'), decode, handler: async () => undefined };
  assert.throws(() => new StreamConsumer({ ...base, topics: [] }), IllegalStateError);
  assert.throws(() => new StreamConsumer({ ...base, topics: ['t'], retry: { maxAttempts: 0 } }), /retry\.maxAttempts must be a positive integer/);
  assert.throws(() => new StreamConsumer({ ...base, topics: ['t'], retry: { maxAttempts: 2.5 } }), IllegalStateError);
  assert.throws(() => new StreamConsumer({ ...base, topics: ['t'], partitionsConsumedConcurrently: 0 }), IllegalStateError);
  assert.throws(() => new StreamConsumer({ ...base, topics: ['t'], drainTimeoutMs: -1 }), IllegalStateError);
  const events: string[] = [];
  const t = await topic('start-once');
  const c = consumer<number>(events, t, groupName('start-once'), { decode, handler: async () => undefined });
  assert.equal(c.state, 'idle');
  await c.start();
  assert.equal(c.state, 'running');
  await assert.rejects(c.start(), IllegalStateError);
  await c.close();
  assert.equal(c.state, 'closed');
});

void test('each offset is committed only after its handler ended, before the next message is handled', async () => {
  const t = await topic('commit-order');
  const group = groupName('commit-order');
  for (let seq = 0; seq < 3; seq++) await send(t, 'k', payload(seq));
  const events: string[] = [];
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const c = consumer<number>(events, t, group, {
    decode,
    handler: tracked(events, async (m) => {
      if (m.value === 1) await gate; // held: nothing may be committed for it meanwhile
    }),
  });
  await c.start();
  await eventually(has(events, 'start 1#1'), 30_000, 'message 1 in the handler');
  assert.equal((await committed(group, t)).get(0), '1', 'message 0 committed, message 1 not while its handler runs');
  release();
  await eventually(has(events, 'commit 0:3'), 30_000, 'all committed');
  await c.close();
  assert.deepEqual(events, ['start 0#1', 'end 0', 'commit 0:1', 'start 1#1', 'end 1', 'commit 0:2', 'start 2#1', 'end 2', 'commit 0:3']);
  assert.equal((await committed(group, t)).get(0), '3');
});

void test('a retryable failure is retried in place until it succeeds or maxAttempts is reached, then dead-lettered; the partition waits meanwhile', async () => {
  const t = await topic('retry');
  const group = groupName('retry');
  await send(t, 'a', payload(0)); // fails twice, then succeeds
  await send(t, 'b', payload(1)); // always fails: dead-lettered after the third attempt
  await send(t, 'c', payload(2));
  const events: string[] = [];
  const dead = new ObservedDeadLetters(events);
  const c = consumer<number>(events, t, group, {
    decode, deadLetter: dead, retry: { maxAttempts: 3, initialBackoffMs: 2, maxBackoffMs: 8 },
    handler: tracked(events, async (m) => {
      if ((m.value === 0 && m.attempt < 3) || m.value === 1) throw new DependencyUnavailableError(`store down for ${m.value}`);
    }),
  });
  await c.start();
  await eventually(has(events, 'commit 0:3'), 30_000, 'all three settled');
  await c.close();
  assert.deepEqual(events, [
    'start 0#1', 'fail 0#1', 'start 0#2', 'fail 0#2', 'start 0#3', 'end 0', 'commit 0:1',
    'start 1#1', 'fail 1#1', 'start 1#2', 'fail 1#2', 'start 1#3', 'fail 1#3', 'dlq 1 retries_exhausted', 'commit 0:2',
    'start 2#1', 'end 2', 'commit 0:3',
  ]);
  const [d] = dead.records;
  assert.equal(dead.records.length, 1);
  assert.equal(d?.attempts, 3);
  assert.deepEqual(d?.error, { name: 'DependencyUnavailableError', code: 'DALSTON_ERR_DEPENDENCY_UNAVAILABLE', message: 'store down for 1', retryable: true });
  assert.deepEqual(d?.source, { topic: t, partition: 0, offset: '1', timestamp: d?.source.timestamp, groupId: group });
  assert.equal(d?.key, 'b');
  assert.deepEqual(Buffer.from(d?.payloadBase64 ?? '', 'base64'), payload(1));
  assert.equal(d?.headers['request_id'], 'req-b', 'the original headers ride along');
});

void test('a non-retryable failure is dead-lettered at once, also after retryable ones, with the attempts made', async () => {
  const t = await topic('reject');
  const group = groupName('reject');
  await send(t, 'd', payload(0)); // retryable first, then refused
  await send(t, 'e', payload(1)); // refused on its first attempt: never retried
  await send(t, 'f', payload(2));
  const events: string[] = [];
  const dead = new ObservedDeadLetters(events);
  const c = consumer<number>(events, t, group, {
    decode, deadLetter: dead, retry: { maxAttempts: 5, initialBackoffMs: 2, maxBackoffMs: 8 },
    handler: tracked(events, async (m) => {
      if (m.value === 0 && m.attempt === 1) throw new DependencyUnavailableError('blip');
      if (m.value < 2) throw new InvalidInputError(`message ${m.value} is not acceptable`);
    }),
  });
  await c.start();
  await eventually(has(events, 'commit 0:3'), 30_000, 'all three settled');
  await c.close();
  assert.deepEqual(events, [
    'start 0#1', 'fail 0#1', 'start 0#2', 'fail 0#2', 'dlq 0 handler_rejected', 'commit 0:1',
    'start 1#1', 'fail 1#1', 'dlq 1 handler_rejected', 'commit 0:2',
    'start 2#1', 'end 2', 'commit 0:3',
  ]);
  assert.deepEqual(dead.records.map((r) => [r.source.offset, r.attempts, r.error.code, r.error.retryable]), [
    ['0', 2, 'DALSTON_ERR_INVALID_INPUT', false],
    ['1', 1, 'DALSTON_ERR_INVALID_INPUT', false],
  ]);
});

void test('with maxAttempts Infinity a retryable failure is retried past the default limit and never dead-lettered', async () => {
  const t = await topic('forever');
  const group = groupName('forever');
  await send(t, 'g', payload(0));
  const events: string[] = [];
  const dead = new ObservedDeadLetters(events);
  const c = consumer<number>(events, t, group, {
    decode, deadLetter: dead, retry: { maxAttempts: Number.POSITIVE_INFINITY, initialBackoffMs: 1, maxBackoffMs: 4 },
    handler: tracked(events, async (m) => {
      if (m.attempt <= 7) throw new DependencyUnavailableError('ClickHouse down');
    }),
  });
  await c.start();
  await eventually(has(events, 'commit 0:1'), 30_000, 'the message finally handled');
  await c.close();
  const attempts = Array.from({ length: 7 }, (_, i) => [`start 0#${i + 1}`, `fail 0#${i + 1}`]).flat();
  assert.deepEqual(events, [...attempts, 'start 0#8', 'end 0', 'commit 0:1']);
  assert.equal(dead.records.length, 0);
});

void test('undecodable records (no Dalston headers, bad bytes, a tombstone nobody expects) are dead-lettered verbatim without reaching the handler', async () => {
  const t = await topic('poison');
  const group = groupName('poison');
  await send(t, 'p', payload(0)); // 0
  const foreign = kafka.producer({ allowAutoTopicCreation: false });
  await foreign.connect();
  await foreign.send({ topic: t, messages: [{ key: 'p', value: 'from a stranger', headers: { origin: 'elsewhere' } }] }); // 1
  await foreign.disconnect();
  await send(t, 'p', Buffer.from([0xde, 0xad, 0xbe, 0xef])); // 2: our headers, bytes the schema refuses
  await send(t, 'p', null); // 3: a tombstone, and this consumer has no onTombstone
  await send(t, 'p', payload(4)); // 4
  const events: string[] = [];
  const dead = new ObservedDeadLetters(events);
  const c = consumer<number>(events, t, group, { decode, deadLetter: dead, handler: tracked(events, async () => undefined) });
  await c.start();
  await eventually(has(events, 'commit 0:5'), 30_000, 'past the poison');
  await c.close();
  assert.deepEqual(events, [
    'start 0#1', 'end 0', 'commit 0:1',
    'dlq 1 undecodable', 'commit 0:2', 'dlq 2 undecodable', 'commit 0:3', 'dlq 3 undecodable', 'commit 0:4',
    'start 4#1', 'end 4', 'commit 0:5',
  ]);
  const [stranger, bytes, tombstone] = dead.records;
  assert.deepEqual(dead.records.map((r) => [r.attempts, r.error.code, r.key]), Array.from({ length: 3 }, () => [0, 'DALSTON_ERR_MESSAGE_DECODE', 'p']));
  assert.match(stranger?.error.message ?? '', /message_id/);
  assert.equal(Buffer.from(stranger?.payloadBase64 ?? '', 'base64').toString(), 'from a stranger');
  assert.deepEqual(stranger?.headers, { origin: 'elsewhere' });
  assert.equal(bytes?.error.message, 'not JSON');
  assert.deepEqual(Buffer.from(bytes?.payloadBase64 ?? '', 'base64'), Buffer.from([0xde, 0xad, 0xbe, 0xef]));
  assert.equal(bytes?.headers['tenant_id'], 'tenant-c');
  assert.equal(tombstone?.payloadBase64, null);
  assert.equal(tombstone?.error.message, 'record has no value');

  // They are durable on the dead-letter topic, not only handed to the writer.
  const inTopic: DeadLetterRecord[] = [];
  const reader = new StreamConsumer<DeadLetterRecord>({
    kafka, log: silentLogger, deadLetter: dlqWriter, groupId: groupName('poison-dlq-reader'), topics: [DLQ], commitOffsets: false, maxWaitTimeMs: 100,
    decode: (v) => decodeDeadLetter(v),
    handler: async (m) => {
      if (m.value.source.topic === t) inTopic.push(m.value);
    },
  });
  await reader.start();
  try {
    await eventually(() => (inTopic.length >= 3 ? true : undefined), 30_000, 'dead letters on the topic');
  } finally {
    await reader.close();
  }
  assert.deepEqual(inTopic.map((r) => [r.source.offset, r.reason]), [['1', 'undecodable'], ['2', 'undecodable'], ['3', 'undecodable']]);
});

void test('while a dead letter cannot be written the poison message stays uncommitted and its partition waits; once written, it is written once', async () => {
  const t = await topic('dlq-down');
  const group = groupName('dlq-down');
  await send(t, 'q', payload(0));
  await send(t, 'q', Buffer.from('poison')); // 1
  await send(t, 'q', payload(2));
  const events: string[] = [];
  // More failures than one round of dead-letter attempts (5): the message goes back to Kafka and comes round again.
  const dead = new ObservedDeadLetters(events, 7);
  const c = consumer<number>(events, t, group, { decode, deadLetter: dead, handler: tracked(events, async () => undefined) });
  await c.start();
  await eventually(has(events, 'commit 0:3'), 60_000, 'past the poison once the dead letter was written');
  await c.close();
  assert.deepEqual(events, [
    'start 0#1', 'end 0', 'commit 0:1',
    ...Array<string>(7).fill('dlq-fail 1'), 'dlq 1 undecodable', 'commit 0:2',
    'start 2#1', 'end 2', 'commit 0:3',
  ]);
  assert.equal(dead.records.length, 1);
});

void test('deferred durability: offsets are committed as the contiguous durable prefix, never past a message still pending', async () => {
  const t = await topic('deferred');
  const group = groupName('deferred');
  for (let seq = 0; seq < 5; seq++) await send(t, 'r', payload(seq));
  const events: string[] = [];
  const gates = new Map<number, () => void>();
  const c = consumer<number>(events, t, group, {
    decode,
    handler: tracked(events, async (m) => {
      // 0-2 become durable later, in the order the test chooses; 3 is dead-lettered and 4 done inline.
      if (m.value === 3) throw new InvalidInputError('refused');
      if (m.value > 2) return undefined;
      return { durable: new Promise<void>((resolve) => gates.set(m.value, resolve)) };
    }),
  });
  await c.start();
  await eventually(has(events, 'end 4'), 30_000, 'every message handed over');
  const durable = async (seq: number): Promise<void> => {
    events.push(`durable ${seq}`);
    gates.get(seq)?.();
    // Let the consumer react (settle its promises) before the next step.
    await nextTurn();
  };
  await durable(2);
  await durable(1);
  assert.equal((await committed(group, t)).get(0), '-1', 'nothing committed while message 0 is pending');
  await durable(0);
  await eventually(has(events, 'commit 0:5'), 30_000, 'the whole prefix committed');
  await c.close();
  assert.deepEqual(events, [
    'start 0#1', 'end 0', 'start 1#1', 'end 1', 'start 2#1', 'end 2', 'start 3#1', 'fail 3#1', 'dlq 3 handler_rejected', 'start 4#1', 'end 4',
    'durable 2', 'durable 1', 'durable 0', 'commit 0:5',
  ]);
});

void test('deferred effects that fail leave their offset uncommitted (later ones too), and a restart redelivers from there', async () => {
  const t = await topic('deferred-fail');
  const group = groupName('deferred-fail');
  for (let seq = 0; seq < 3; seq++) await send(t, 's', payload(seq));
  const events: string[] = [];
  const a = consumer<number>(events, t, group, {
    decode,
        // The batch holding message 1's rows fails to be written (after the handler returned).
    handler: tracked(events, async (m) => (m.value === 1 ? { durable: sleep(1).then(() => Promise.reject(new DependencyUnavailableError('batch write failed'))) } : undefined)),
  });
  await a.start();
  await eventually(has(events, 'end 2'), 30_000, 'all handed over');
  await a.close();
  assert.deepEqual(events, ['start 0#1', 'end 0', 'commit 0:1', 'start 1#1', 'end 1', 'start 2#1', 'end 2']);
  assert.equal((await committed(group, t)).get(0), '1');

  const again: string[] = [];
  const b = consumer<number>(again, t, group, { decode, handler: tracked(again, async () => undefined) });
  await b.start();
  await eventually(has(again, 'commit 0:3'), 30_000, 'redelivered and committed');
  await b.close();
  assert.deepEqual(again, ['start 1#1', 'end 1', 'commit 0:2', 'start 2#1', 'end 2', 'commit 0:3']);
});

void test('a requeued message comes back before anything after it, and is committed only when handled', async () => {
  const t = await topic('requeue');
  const group = groupName('requeue');
  for (let seq = 0; seq < 3; seq++) await send(t, 'u', payload(seq));
  const events: string[] = [];
  let requeued = false;
  const c = consumer<number>(events, t, group, {
    decode,
    handler: tracked(events, async (m) => {
      if (m.value === 1 && !requeued) {
        requeued = true;
        m.requeue(); // every slot busy: take it again later
      }
    }),
  });
  await c.start();
  await eventually(has(events, 'commit 0:3'), 30_000, 'all handled');
  await c.close();
  assert.deepEqual(events, [
    'start 0#1', 'end 0', 'commit 0:1', 'start 1#1', 'end 1', 'start 1#1', 'end 1', 'commit 0:2', 'start 2#1', 'end 2', 'commit 0:3',
  ]);
});

void test('order within a key holds with several partitions in flight: one message per partition in the handler at a time', async () => {
  const t = await topic('order', 3);
  const group = groupName('order');
  const keys = ['k-a', 'k-b', 'k-c', 'k-d', 'k-e', 'k-f'];
  const perKey = 8;
  for (let seq = 0; seq < perKey; seq++) {
    await producer.sendBatch([{ topic: t, messages: keys.map((key) => ({ key, value: Buffer.from(JSON.stringify({ seq, key })), headers: newMessageHeaders() })) }]);
  }
  const events: string[] = [];
  const seen: { key: string; seq: number; partition: number }[] = [];
  const busy = new Set<number>();
  let overlap = 0;
  let parallel = 0;
  const c = consumer<{ seq: number; key: string }>(events, t, group, {
    partitionsConsumedConcurrently: 3,
    decode: (v) => JSON.parse(v.toString('utf8')) as { seq: number; key: string },
    handler: async (m) => {
      if (busy.has(m.partition)) overlap++;
      busy.add(m.partition);
      parallel = Math.max(parallel, busy.size);
      // Uneven work, so a message overtaking another of its partition would show.
      await sleep((m.value.seq * 7 + m.value.key.length) % 4);
      seen.push({ key: m.value.key, seq: m.value.seq, partition: m.partition });
      busy.delete(m.partition);
    },
  });
  await c.start();
  await eventually(() => (seen.length >= keys.length * perKey ? true : undefined), 30_000, 'every message');
  await c.close();
  assert.equal(seen.length, keys.length * perKey, 'each message once');
  assert.equal(overlap, 0, 'never two messages of one partition in the handler');
  for (const key of keys) {
    const mine = seen.filter((s) => s.key === key);
    assert.deepEqual(mine.map((s) => s.seq), Array.from({ length: perKey }, (_, i) => i), `${key} in order`);
    assert.equal(new Set(mine.map((s) => s.partition)).size, 1, `${key} from one partition`);
  }
  assert.ok(new Set(seen.map((s) => s.partition)).size >= 2, 'the keys used several partitions');
  // Commits per partition only move forward.
  for (const p of [0, 1, 2]) {
    const offsets = events.filter((e) => e.startsWith(`commit ${p}:`)).map((e) => Number(e.split(':')[1]));
    assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y), `partition ${p} commits ascend`);
  }
  const end = await committed(group, t);
  const total = [...end.values()].reduce((sum, o) => sum + Number(o), 0);
  assert.equal(total, keys.length * perKey, 'everything committed');
});

void test('no message is handled before onPartitionsAssigned succeeds; a failing hook is retried with the same partitions', async () => {
  const t = await topic('hooks', 2);
  const group = groupName('hooks');
  await send(t, 'v', payload(0), 0);
  await send(t, 'w', payload(1), 1);
  const events: string[] = [];
  const assigned: TopicPartitions[][] = [];
  const c = consumer<number>(events, t, group, {
    decode,
    retry: { initialBackoffMs: 2, maxBackoffMs: 8 },
    hooks: {
      onPartitionsAssigned: async (a) => {
        assigned.push([...a]);
        events.push(`assigned#${assigned.length}`);
        if (assigned.length < 3) throw new DependencyUnavailableError('restore failed');
      },
      onPartitionsRevoked: (r) => {
        events.push(`revoked ${r.map((x) => x.partitions.join(',')).join(';')}`);
      },
    },
    handler: tracked(events, async () => undefined),
  });
  await c.start();
  await eventually(() => (events.filter((e) => e.startsWith('commit')).length >= 2 ? true : undefined), 30_000, 'both messages');
  await c.close();
  assert.deepEqual(events.slice(0, 3), ['assigned#1', 'assigned#2', 'assigned#3'], 'messages waited for the hook');
  assert.deepEqual(assigned, Array.from({ length: 3 }, () => [{ topic: t, partitions: [0, 1] }]));
  assert.deepEqual(events.filter((e) => e.startsWith('start')).sort(), ['start 0#1', 'start 0#1']);
  assert.equal(events.at(-1), 'revoked 0,1', 'close revokes what was assigned, last');
});

void test('a compaction tombstone goes to onTombstone when the consumer reads compacted state', async () => {
  const t = await topic('tombstone');
  const group = groupName('tombstone');
  await send(t, 'job_1', payload(0));
  await send(t, 'job_1', null);
  const events: string[] = [];
  const got: (number | string)[] = [];
  const dead = new ObservedDeadLetters(events);
  const c = consumer<number | string>(events, t, group, {
    decode, deadLetter: dead, onTombstone: (key) => `deleted ${key ?? '?'}`,
    handler: tracked(events, async (m) => void got.push(m.value)),
  });
  await c.start();
  await eventually(has(events, 'commit 0:2'), 30_000, 'both');
  await c.close();
  assert.deepEqual(got, [0, 'deleted job_1']);
  assert.equal(dead.records.length, 0);
});

void test('a reader that does not commit leaves no offsets; waitCaughtUp resolves once everything present was handled', async () => {
  const t = await topic('nocommit');
  const group = groupName('nocommit');
  for (let seq = 0; seq < 4; seq++) await send(t, 'x', payload(seq));
  const events: string[] = [];
  const c = consumer<number>(events, t, group, { decode, commitOffsets: false, handler: tracked(events, async () => undefined) });
  await c.start();
  await c.waitCaughtUp(admin, 30_000);
  assert.deepEqual(events.filter((e) => e.startsWith('end')), ['end 0', 'end 1', 'end 2', 'end 3'], 'caught up means handled');
  await c.close();
  assert.equal(events.some((e) => e.startsWith('commit')), false);
  assert.equal((await committed(group, t)).get(0), '-1');

  // A consumer that never gets there times out rather than waiting for ever.
  const stuck: string[] = [];
  const s = consumer<number>(stuck, t, groupName('nocommit-stuck'), {
    decode, commitOffsets: false, drainTimeoutMs: 100,
    handler: (m) => new Promise((resolve) => m.signal.addEventListener('abort', () => resolve(), { once: true })),
  });
  await s.start();
  await assert.rejects(s.waitCaughtUp(admin, 1500), TimeoutError);
  await s.destroy();
});

void test('records of producers outside Dalston: their headers are optional, the id and time come from the record', async () => {
  const t = await topic('external');
  const group = groupName('external');
  const foreign = kafka.producer({ allowAutoTopicCreation: false });
  await foreign.connect();
  await foreign.send({ topic: t, messages: [{ key: 'ext', value: payload(0), headers: { 'x-signature': 'sig-1', request_id: 'their-req' }, timestamp: '1700000000999' }] });
  await foreign.disconnect();
  const events: string[] = [];
  const got: { headers: unknown; raw: Readonly<Record<string, string>>; seq: number }[] = [];
  const c = consumer<{ seq: number; raw: Readonly<Record<string, string>> }>(events, t, group, {
    externalProducers: true,
    decode: (v, _h, raw) => ({ seq: decode(v), raw }),
    handler: tracked(events, async (m) => void got.push({ headers: m.headers, raw: m.value.raw, seq: m.value.seq })),
  });
  await c.start();
  await eventually(has(events, 'commit 0:1'), 30_000, 'the foreign record handled');
  await c.close();
  assert.deepEqual(got, [{
    seq: 0, raw: { 'x-signature': 'sig-1', request_id: 'their-req' },
    headers: { messageId: `${t}/0/0`, enqueuedAt: 1_700_000_000_999, requestId: 'their-req' },
  }]);
});

void test('destroy() abandons a handler in flight: its signal aborts and its message stays uncommitted', async () => {
  const t = await topic('destroy');
  const group = groupName('destroy');
  await send(t, 'y', payload(0));
  await send(t, 'y', payload(1));
  const events: string[] = [];
  let signal: AbortSignal | undefined;
  const c = consumer<number>(events, t, group, {
    decode,
    handler: tracked(events, async (m) => {
      if (m.value === 1) {
        signal = m.signal;
        await new Promise((resolve) => m.signal.addEventListener('abort', resolve, { once: true }));
      }
    }),
  });
  await c.start();
  await eventually(has(events, 'start 1#1'), 30_000, 'message 1 in the handler');
  await c.destroy();
  assert.equal(signal?.aborted, true);
  assert.equal(c.state, 'closed');
  // The abandoned handler ends (its promise settles) but is neither committed nor retried.
  assert.deepEqual(events.filter((e) => e.startsWith('commit') || e.startsWith('start')), ['start 0#1', 'commit 0:1', 'start 1#1']);
  assert.equal((await committed(group, t)).get(0), '1');
});

/**
 * The real client, whose consumer's first delivery of `seq` throws an error kafkajs may not retry: its runner then
 * crashes with restart=false and disconnects, as after "Failed to find group coordinator" in a long broker outage.
 */
function crashingOnce(seq: number): Kafka {
  let crashed = false;
  return withConsumerMethod('run', (real) => (cfg) => real.run({
    ...cfg,
    eachMessage: async (payload) => {
      if (!crashed && payload.message.value && decode(payload.message.value) === seq) {
        crashed = true;
        throw Object.assign(new Error('injected: an error kafkajs does not restart from'), { retriable: false });
      }
      await cfg?.eachMessage?.(payload);
    },
  }));
}

void test('a crash kafkajs will not restart from: the consumer rejoins by itself and handles the rest, the crashed message included', async () => {
  const t = await topic('rejoin');
  const group = groupName('rejoin');
  const lines: LogLine[] = [];
  const seen: number[] = [];
  const c = new StreamConsumer<number>({
    kafka: crashingOnce(1), log: recordingLogger(lines), deadLetter: dlqWriter, topics: [t], groupId: group, maxWaitTimeMs: 100,
    decode, handler: async (m) => void seen.push(m.value),
  });
  built.push(c);
  await c.start();
  for (let seq = 0; seq < 3; seq++) await send(t, 'r', payload(seq));
  await eventually(() => (seen.includes(2) ? true : undefined), 60_000, 'every message handled after the crash');
  const msgs = lines.map((l) => l.msg);
  assert.ok(msgs.includes('Kafka consumer crashed and kafkajs will not restart it; rejoining'), msgs.join(' | '));
  assert.ok(msgs.includes('consumer running again after the crash'), msgs.join(' | '));
  assert.ok(!msgs.includes('Kafka consumer crashed and will not restart'));
  // Message 1 was never handled before the crash, so it is not lost: each message is handled once, in order.
  assert.deepEqual(seen, [0, 1, 2]);
  assert.equal(c.state, 'running');
  await eventually(async () => ((await committed(group, t)).get(0) === '3' ? true : undefined), 30_000, 'all three committed');
  await c.close();
  assert.equal(c.state, 'closed');
});

void test('a message requeued as its partition moved away is not read again from that offset when the partition comes back: the committed offset never goes backwards', async () => {
  const t = await topic('stale-seek');
  const group = groupName('stale-seek');
  for (let seq = 0; seq < 3; seq++) await send(t, 's', payload(seq));
  // The round-robin assignor gives a lone partition to the member whose id (client id first) sorts first: B takes it
  // from A when it joins and hands it back when it leaves, whatever the generated ids.
  const client = (id: string): Kafka => createKafka({ brokers: broker.brokers, clientId: `${id}-${run}`, log: silentLogger });
  const seenA: string[] = [];
  const seenB: string[] = [];
  const commitsA: string[] = [];
  let releaseA: () => void = () => undefined;
  const holdA = new Promise<void>((r) => (releaseA = r));
  const a: StreamConsumer<number> = new StreamConsumer<number>({
    kafka: observed(commitsA, client('zz-member-a')), log: silentLogger, deadLetter: dlqWriter, topics: [t], groupId: group, maxWaitTimeMs: 100, heartbeatIntervalMs: 200,
    decode,
    handler: async (m) => {
      seenA.push(m.offset);
      if (seenA.length > 1) return;
      // Like an engine whose task slots are all busy: give the message back, stop fetching; it stays in the handler
      // until the group is rebalancing, so the partition moves to B before A fetches again.
      m.requeue();
      a.pause();
      await holdA;
    },
  });
  built.push(a);
  await a.start();
  await eventually(() => (seenA.length === 1 ? true : undefined), 30_000, 'A requeued message 0');
  const b = new StreamConsumer<number>({
    kafka: client('aa-member-b'), log: silentLogger, deadLetter: dlqWriter, topics: [t], groupId: group, maxWaitTimeMs: 100, heartbeatIntervalMs: 200,
    decode, handler: async (m) => void seenB.push(m.offset),
  });
  built.push(b);
  const bJoined = b.start();
  await sleep(1500); // B's join request is in: the group is rebalancing
  releaseA();
  await bJoined;
  assert.deepEqual(b.assignment, [{ topic: t, partitions: [0] }], 'the partition moved to B');
  await eventually(() => (seenB.length === 3 ? true : undefined), 30_000, 'B handled the three messages');
  assert.deepEqual(seenB, ['0', '1', '2']);
  await eventually(async () => ((await committed(group, t)).get(0) === '3' ? true : undefined), 30_000, 'B committed them');
  await b.close(); // the partition goes back to A
  await eventually(() => (a.assignment.length === 1 ? true : undefined), 60_000, 'A owns the partition again');
  a.resume();
  await send(t, 's', payload(3));
  await eventually(() => (seenA.includes('3') ? true : undefined), 30_000, 'A handled the new message');
  assert.deepEqual(seenA, ['0', '3'], 'A read on from the committed offset, not again from its requeue of 0');
  await eventually(async () => ((await committed(group, t)).get(0) === '4' ? true : undefined), 30_000, 'committed past the new message');
  assert.deepEqual(commitsA, ['commit 0:4'], 'A committed nothing below what B had committed');
  await a.close();
});

void test('a commit kafkajs drops without a word (its fetch loop had stopped) is logged as such, not taken as made', async () => {
  const t = await topic('dropped-commit');
  const group = groupName('dropped-commit');
  const lines: LogLine[] = [];
  const seen: number[] = [];
  // kafkajs's runner returns from commitOffsets without committing once it is not running: the same silence here.
  const c = new StreamConsumer<number>({
    kafka: withConsumerMethod('commitOffsets', () => async () => undefined), log: recordingLogger(lines), deadLetter: dlqWriter, topics: [t], groupId: group,
    maxWaitTimeMs: 100, decode, handler: async (m) => void seen.push(m.value),
  });
  built.push(c);
  await c.start();
  await send(t, 'd', payload(0));
  await eventually(() => (lines.some((l) => l.msg.startsWith('offset commit dropped')) ? true : undefined), 30_000, 'the dropped commit logged');
  assert.deepEqual(seen, [0]);
  assert.equal((await committed(group, t)).get(0), '-1', 'nothing reached the broker');
  await c.close();
});
