/**
 * The Kafka transport of streams/ against a real broker: headers and per-key order survive the trip, poison
 * messages are dead-lettered without blocking their partition, offsets are committed only after the handler
 * resolves. The file also starts and stops a broker of its own (even under the suite's shared one) to check that
 * stop() leaves no process behind. No timing is asserted here: produce-to-consume latency is a figure of
 * `npm run bench:batch` (Kafka hop p50/p99).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DependencyUnavailableError, InvalidInputError, TimeoutError } from '../../core/errors.js';
import { createLogger, type LogFields, type Logger } from '../../core/logger.js';
import { isPortTaken } from '../../infra/ports.js';
import { StreamConsumer, type ConsumedMessage, type StreamConsumerOptions, type TopicPartitions } from '../../streams/consumer.js';
import { consumerGroupLag } from '../../streams/consumer-lag.js';
import { DeadLetterWriter, decodeDeadLetter, type DeadLetterRecord } from '../../streams/dead-letter.js';
import { newMessageHeaders, type MessageHeaders } from '../../streams/headers.js';
import { createKafka, describeCluster, ensureTopics, waitForGroupCoordinator, type Kafka, type TopicSpec } from '../../streams/kafka-client.js';
import { StreamProducer } from '../../streams/producer.js';
import { MessageDecodeError } from '../../streams/validate.js';
import { isAlive, processesMentioning, startOwnKafka, startTestKafka, type TestKafka } from '../../harness/kafka-fixture.js';

const log: Logger = createLogger({ service: 'kafka-transport-test', level: 'error' });
const run = randomBytes(4).toString('hex');
const topicName = (s: string): string => `test.${run}.${s}`;
const groupName = (s: string): string => `test-${run}-${s}`;

let broker: TestKafka;
let kafka: Kafka;
let producer: StreamProducer;
let deadLetters: DeadLetterWriter;
const DLQ = topicName('dead-letter');

interface Payload {
  readonly v: 1;
  readonly key: string;
  readonly seq: number;
}

function encode(p: Omit<Payload, 'v'>): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, ...p }));
}

/** The kind of decode a schema module supplies: rejects non-JSON and unknown schema versions. */
function decode(value: Buffer): Payload {
  let raw: unknown;
  try {
    raw = JSON.parse(value.toString('utf8'));
  } catch (err) {
    throw new MessageDecodeError('not JSON', { cause: err });
  }
  const r = raw as Partial<Payload>;
  if (r.v !== 1) throw new MessageDecodeError(`unsupported schema version ${JSON.stringify(r.v)}`);
  return r as Payload;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function consumer<T>(o: Omit<StreamConsumerOptions<T>, 'kafka' | 'log' | 'deadLetter'> & { readonly log?: Logger }): StreamConsumer<T> {
  return new StreamConsumer<T>({ kafka, log, deadLetter: deadLetters, maxWaitTimeMs: 500, ...o });
}

async function committed(groupId: string, topic: string): Promise<Map<number, string>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const res = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((res[0]?.partitions ?? []).map((p) => [p.partition, p.offset]));
  } finally {
    await admin.disconnect();
  }
}

async function lagOf(groupId: string, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [t] = await consumerGroupLag(admin, groupId, [topic]);
    return t?.lag ?? NaN;
  } finally {
    await admin.disconnect();
  }
}

/** Reads every dead letter that came from `sourceTopic` (the DLQ topic is shared by the tests of this file). */
async function deadLettersFrom(sourceTopic: string, expected: number): Promise<DeadLetterRecord[]> {
  const got: DeadLetterRecord[] = [];
  const c = consumer<DeadLetterRecord>({
    groupId: groupName(`dlq-reader-${sourceTopic}`),
    topics: [DLQ],
    decode: (v) => decodeDeadLetter(v),
    handler: async (m) => {
      if (m.value.source.topic === sourceTopic) got.push(m.value);
    },
  });
  await c.start();
  try {
    await waitFor(`${expected} dead letters from ${sourceTopic}`, () => got.length >= expected);
  } finally {
    await c.close();
  }
  return got;
}

before(async () => {
  broker = await startTestKafka(log);
  console.log(
    `Kafka ${broker.version} at ${broker.brokers.join(',')}` +
      (broker.external ? ' (shared, from DALSTON_TEST_KAFKA_BROKERS)' : ` started in ${broker.startMs} ms, pid ${broker.pid}`),
  );
  kafka = createKafka({ brokers: broker.brokers, clientId: `kafka-transport-test-${run}`, log });
  producer = new StreamProducer({ kafka, log });
  await producer.connect();
  deadLetters = new DeadLetterWriter({ producer, topic: DLQ });
});

after(async () => {
  await producer?.close();
  await broker?.stop();
});

void test('ensureTopics creates topics once and describeCluster answers', async () => {
  const specs: TopicSpec[] = [
    { name: DLQ, partitions: 1, cleanupPolicy: 'delete' },
    { name: topicName('ordered'), partitions: 3, cleanupPolicy: 'delete', config: { 'retention.ms': '3600000' } },
    { name: topicName('poison'), partitions: 1, cleanupPolicy: 'delete' },
    { name: topicName('retry'), partitions: 1, cleanupPolicy: 'delete' },
    { name: topicName('commit'), partitions: 1, cleanupPolicy: 'delete' },
    { name: topicName('pause'), partitions: 1, cleanupPolicy: 'delete' },
    { name: topicName('sequential'), partitions: 1, cleanupPolicy: 'delete' },
    { name: topicName('snapshots'), partitions: 2, cleanupPolicy: 'compact' },
  ];
  const first = await ensureTopics(kafka, specs, log);
  assert.deepEqual([...first.created].sort(), specs.map((s) => s.name).sort());
  const second = await ensureTopics(kafka, specs, log);
  assert.deepEqual(second.created, []);
  assert.equal(second.existing.length, specs.length);

  const admin = kafka.admin();
  await admin.connect();
  try {
    const cfg = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: 2, name: topicName('snapshots'), configNames: ['cleanup.policy'] }],
    });
    assert.equal(cfg.resources[0]?.configEntries[0]?.configValue, 'compact');
  } finally {
    await admin.disconnect();
  }
  const cluster = await describeCluster(kafka);
  assert.equal(cluster.brokers.length, 1);
  assert.ok(cluster.clusterId.length > 0);
});

void test('headers survive the trip and each key keeps its order within its partition', async () => {
  const topic = topicName('ordered');
  const keys = ['job-a', 'job-b', 'job-c', 'job-d'];
  const perKey = 15;
  const sent = new Map<string, MessageHeaders>();
  const traceparent = (i: number): string => `00-${'ab'.repeat(15)}${i.toString(16).padStart(2, '0')}-${'cd'.repeat(8)}-01`;

  const received: ConsumedMessage<Payload>[] = [];
  const assignedEvents: TopicPartitions[][] = [];
  const revokedEvents: TopicPartitions[][] = [];
  let restored = false;
  const c = consumer<Payload>({
    groupId: groupName('ordered'),
    topics: [topic],
    partitionsConsumedConcurrently: 3,
    decode,
    hooks: {
      onPartitionsAssigned: async (a) => {
        assignedEvents.push([...a]);
        await sleep(200); // an actor host restoring state: no message may be handled before this ends
        restored = true;
      },
      onPartitionsRevoked: (r) => {
        revokedEvents.push([...r]);
      },
    },
    handler: async (m) => {
      assert.equal(restored, true, 'handler ran before onPartitionsAssigned finished');
      received.push(m);
    },
  });
  await c.start();

  // Interleave keys; half the rounds go out as one multi-message batch.
  for (let seq = 0; seq < perKey; seq++) {
    const batch = keys.map((key, k) => {
      const headers: MessageHeaders = {
        ...newMessageHeaders({ requestId: `req-${key}-${seq}`, tenantId: `tenant-${k}` }),
        traceparent: traceparent(seq),
        tracestate: 'dalston=test',
      };
      sent.set(headers.messageId, headers);
      return { key, value: encode({ key, seq }), headers };
    });
    if (seq % 2 === 0) await producer.sendBatch([{ topic, messages: batch }]);
    else for (const m of batch) await producer.send(topic, m);
  }

  await waitFor('all ordered messages', () => received.length >= keys.length * perKey);
  await c.close();
  assert.equal(received.length, keys.length * perKey, 'no duplicates');

  for (const key of keys) {
    const mine = received.filter((m) => m.key === key);
    assert.deepEqual(
      mine.map((m) => m.value.seq),
      Array.from({ length: perKey }, (_, i) => i),
      `order of ${key}`,
    );
    assert.equal(new Set(mine.map((m) => m.partition)).size, 1, `${key} stays in one partition`);
  }
  for (const m of received) assert.deepEqual(m.headers, sent.get(m.headers.messageId), 'headers round-trip');
  assert.equal(new Set(received.map((m) => m.headers.messageId)).size, received.length, 'message ids are unique');

  assert.deepEqual(assignedEvents, [[{ topic, partitions: [0, 1, 2] }]]);
  assert.deepEqual(revokedEvents, [[{ topic, partitions: [0, 1, 2] }]]);
  assert.equal(await lagOf(groupName('ordered'), topic), 0);
});

void test('poison messages go to the dead-letter topic and later messages on the partition still flow', async () => {
  const topic = topicName('poison');
  const groupId = groupName('poison');
  const raw = kafka.producer({ allowAutoTopicCreation: false });
  await raw.connect();
  const h = (requestId: string): MessageHeaders => newMessageHeaders({ requestId, tenantId: 'tenant-p' });

  await producer.send(topic, { key: 'k', value: encode({ key: 'k', seq: 1 }), headers: h('r1') }); // offset 0
  await raw.send({ topic, messages: [{ key: 'k', value: 'not produced by Dalston' }] }); // 1: no headers
  await producer.send(topic, { key: 'k', value: Buffer.from('{"v":99,"key":"k","seq":0}'), headers: h('r-v99') }); // 2
  await producer.send(topic, { key: 'k', value: Buffer.from([0xff, 0x00, 0x13]), headers: h('r-bytes') }); // 3
  await producer.send(topic, { key: 'k', value: encode({ key: 'k', seq: 2 }), headers: h('r2') }); // 4
  await producer.send(topic, { key: 'k', value: encode({ key: 'k', seq: -1 }), headers: h('r-reject') }); // 5
  await producer.send(topic, { key: 'k', value: encode({ key: 'k', seq: 3 }), headers: h('r3') }); // 6
  await raw.disconnect();

  const handled: number[] = [];
  const c = consumer<Payload>({
    groupId,
    topics: [topic],
    decode,
    handler: async (m) => {
      if (m.value.seq < 0) throw new InvalidInputError('negative sequence');
      handled.push(m.value.seq);
    },
  });
  await c.start();
  await waitFor('good messages after the poison ones', () => handled.length >= 3);
  await waitFor('offsets committed past the poison', async () => (await committed(groupId, topic)).get(0) === '7');
  await c.close();
  assert.deepEqual(handled, [1, 2, 3]);
  assert.equal(await lagOf(groupId, topic), 0);

  const dead = (await deadLettersFrom(topic, 4)).sort((a, b) => Number(a.source.offset) - Number(b.source.offset));
  assert.deepEqual(
    dead.map((d) => [d.source.offset, d.reason, d.error.code]),
    [
      ['1', 'undecodable', 'DALSTON_ERR_MESSAGE_DECODE'],
      ['2', 'undecodable', 'DALSTON_ERR_MESSAGE_DECODE'],
      ['3', 'undecodable', 'DALSTON_ERR_MESSAGE_DECODE'],
      ['5', 'handler_rejected', 'DALSTON_ERR_INVALID_INPUT'],
    ],
  );
  const [noHeaders, v99, bytes, rejected] = dead;
  assert.match(noHeaders?.error.message ?? '', /message_id/);
  assert.equal(Buffer.from(noHeaders?.payloadBase64 ?? '', 'base64').toString(), 'not produced by Dalston');
  assert.match(v99?.error.message ?? '', /schema version 99/);
  assert.equal(v99?.headers['request_id'], 'r-v99');
  assert.equal(v99?.headers['tenant_id'], 'tenant-p');
  assert.deepEqual(Buffer.from(bytes?.payloadBase64 ?? '', 'base64'), Buffer.from([0xff, 0x00, 0x13]));
  assert.equal(rejected?.attempts, 1);
  for (const d of dead) {
    assert.equal(d.source.topic, topic);
    assert.equal(d.source.partition, 0);
    assert.equal(d.source.groupId, groupId);
    assert.equal(d.key, 'k');
  }
});

void test('retryable handler errors are retried with back-off, then dead-lettered when attempts run out', async () => {
  const topic = topicName('retry');
  const groupId = groupName('retry');
  await producer.send(topic, { key: 'a', value: encode({ key: 'a', seq: 1 }), headers: newMessageHeaders() });
  await producer.send(topic, { key: 'b', value: encode({ key: 'b', seq: 2 }), headers: newMessageHeaders() });
  await producer.send(topic, { key: 'c', value: encode({ key: 'c', seq: 3 }), headers: newMessageHeaders() });

  const attempts: [number, number, number][] = [];
  const done: number[] = [];
  // The back-off each retry announces (its log line), to compare with the wait that really came before it.
  const announced: number[] = [];
  const capture: Logger = {
    ...log,
    warn: (fields: LogFields, msg: string) => {
      if (msg === 'handler failed, retrying') announced.push(Number(fields['backoff_ms']));
    },
    child: () => capture,
  };
  const c = consumer<Payload>({
    groupId,
    topics: [topic],
    decode,
    log: capture,
    retry: { maxAttempts: 3, initialBackoffMs: 100, maxBackoffMs: 400 },
    handler: async (m) => {
      attempts.push([m.value.seq, m.attempt, performance.now()]);
      if (m.value.seq === 1 && m.attempt < 3) throw new DependencyUnavailableError('store not ready');
      if (m.value.seq === 2) throw new DependencyUnavailableError('store still not ready');
      done.push(m.value.seq);
    },
  });
  await c.start();
  await waitFor('third message', () => done.includes(3));
  await waitFor('offsets committed', async () => (await committed(groupId, topic)).get(0) === '3');
  await c.close();

  assert.deepEqual(done, [1, 3]);
  assert.deepEqual(
    attempts.map(([seq, attempt]) => [seq, attempt]),
    [
      [1, 1],
      [1, 2],
      [1, 3],
      [2, 1],
      [2, 2],
      [2, 3],
      [3, 1],
    ],
  );
  // Each message's two retries announce back-offs jittered from half to all of 100 ms, then of 200 ms.
  assert.equal(announced.length, 4, `announced back-offs ${JSON.stringify(announced)}`);
  for (const [i, [lo, hi]] of ([[50, 100], [100, 200], [50, 100], [100, 200]] as const).entries()) {
    const b = announced[i] ?? NaN;
    assert.ok(b >= lo && b <= hi, `back-off ${i + 1} is ${b} ms, not within ${lo}-${hi} ms`);
  }
  // And the retry waited at least that long. Only a lower bound, which load can only make easier to meet; 1 ms
  // of slack because a timer may fire up to 1 ms early against a clock read elsewhere.
  // [the retry's index in attempts, the attempt before it, its announced back-off]
  for (const [retry, before, b] of [[1, 0, 0], [2, 1, 1], [4, 3, 2], [5, 4, 3]] as const) {
    const waited = (attempts[retry]?.[2] ?? NaN) - (attempts[before]?.[2] ?? NaN);
    const backoff = announced[b] ?? NaN;
    assert.ok(waited >= backoff - 1, `attempt ${retry + 1} came ${waited.toFixed(1)} ms after the one before, under its ${backoff} ms back-off`);
  }

  const [dead] = await deadLettersFrom(topic, 1);
  assert.equal(dead?.reason, 'retries_exhausted');
  assert.equal(dead?.attempts, 3);
  assert.equal(dead?.source.offset, '1');
  assert.equal(dead?.error.retryable, true);
});

// The timeout turns a close() that never returns (no drain deadline) into a failure instead of a hung suite.
void test('offsets are committed only after the handler resolves; a restart redelivers exactly the uncommitted work', { timeout: 120_000 }, async () => {
  const topic = topicName('commit');
  const groupId = groupName('commit');
  for (let seq = 0; seq < 4; seq++) {
    await producer.send(topic, { key: 'job', value: encode({ key: 'job', seq }), headers: newMessageHeaders() });
  }
  assert.equal(await lagOf(groupId, topic), 4, 'a group that never committed lags by the whole topic');

  const firstRun: number[] = [];
  let committedDuringFirstHandler: string | undefined;
  let m2Started = false;
  let abandonedWith: unknown;
  const a = consumer<Payload>({
    groupId,
    topics: [topic],
    decode,
    drainTimeoutMs: 500,
    handler: async (m) => {
      if (m.value.seq === 0) committedDuringFirstHandler = (await committed(groupId, topic)).get(0);
      if (m.value.seq === 2) {
        m2Started = true;
        // Effects never become durable: wait until the consumer abandons us at its drain deadline.
        await new Promise((resolve) => m.signal.addEventListener('abort', resolve, { once: true }));
        abandonedWith = m.signal.reason;
        throw new DependencyUnavailableError('abandoned');
      }
      firstRun.push(m.value.seq);
    },
  });
  await a.start();
  await waitFor('message 2 in the handler', () => m2Started);
  assert.equal(committedDuringFirstHandler, '-1', 'nothing is committed while the first handler runs');
  assert.equal((await committed(groupId, topic)).get(0), '2', 'messages 0 and 1 committed, 2 not yet');
  // The handler never finishes on its own: close() returns only because the drain deadline abandoned it.
  await a.close();
  assert.ok(abandonedWith instanceof TimeoutError && abandonedWith.message === 'drain exceeded 500 ms', `abandoned with ${String(abandonedWith)}`);
  assert.deepEqual(firstRun, [0, 1]);
  assert.equal((await committed(groupId, topic)).get(0), '2', 'the abandoned message stays uncommitted');
  assert.equal(await lagOf(groupId, topic), 2);

  const secondRun: number[] = [];
  let slowStarted = false;
  const b = consumer<Payload>({
    groupId,
    topics: [topic],
    decode,
    handler: async (m) => {
      if (m.value.seq === 3) {
        slowStarted = true;
        await sleep(300); // still in flight when close() begins: drained, then committed
      }
      secondRun.push(m.value.seq);
    },
  });
  await b.start();
  await waitFor('the restarted consumer reaches message 3', () => slowStarted);
  await b.close();
  assert.deepEqual(secondRun, [2, 3], 'no redelivery of committed work, redelivery of uncommitted work');
  assert.equal((await committed(groupId, topic)).get(0), '4');
  assert.equal(await lagOf(groupId, topic), 0);
});

void test('pause stops delivery and resume restarts it', async () => {
  const topic = topicName('pause');
  const got: number[] = [];
  const c = consumer<Payload>({ groupId: groupName('pause'), topics: [topic], decode, handler: async (m) => void got.push(m.value.seq) });
  await c.start();
  await producer.send(topic, { key: 'p', value: encode({ key: 'p', seq: 1 }), headers: newMessageHeaders() });
  await waitFor('first message', () => got.length === 1);
  c.pause();
  assert.equal(c.paused, true);
  await producer.send(topic, { key: 'p', value: encode({ key: 'p', seq: 2 }), headers: newMessageHeaders() });
  await sleep(1500);
  assert.deepEqual(got, [1], 'nothing delivered while paused');
  c.resume();
  await waitFor('message after resume', () => got.length === 2);
  await c.close();
  assert.deepEqual(got, [1, 2]);
});

void test('sequential sends: each lone message is delivered before the next is sent, once, in order, with its headers', async () => {
  const topic = topicName('sequential');
  const rounds = 50;
  const received: ConsumedMessage<Payload>[] = [];
  const c = consumer<Payload>({ groupId: groupName('sequential'), topics: [topic], decode, handler: async (m) => void received.push(m) });
  await c.start();
  const sent: MessageHeaders[] = [];
  for (let seq = 0; seq < rounds; seq++) {
    const headers = newMessageHeaders({ requestId: `req-seq-${seq}` });
    sent.push(headers);
    await producer.send(topic, { key: 'l', value: encode({ key: 'l', seq }), headers });
    // Nothing follows this message until it arrives: a consumer that waits for a fuller batch would stall here.
    await waitFor(`message ${seq}`, () => received.length > seq);
  }
  await c.close();
  assert.deepEqual(received.map((m) => m.value.seq), Array.from({ length: rounds }, (_, i) => i));
  assert.deepEqual(received.map((m) => m.headers), sent);
  assert.deepEqual(received.map((m) => m.offset), Array.from({ length: rounds }, (_, i) => String(i)));
  assert.equal(await lagOf(groupName('sequential'), topic), 0);
});

void test('a broker started here stops cleanly: its process is gone, nothing runs with its data directory, its ports are free', async () => {
  // Its own broker even under the suite, whose shared broker this file cannot stop. A small heap: it carries one topic.
  const own = await startOwnKafka(log, { heapMb: 256 });
  const { pid, dataDir } = own;
  const port = Number(own.brokers[0]?.split(':')[1]);
  try {
    assert.ok(pid !== undefined && dataDir !== undefined && Number.isInteger(port), `own broker ${JSON.stringify(own)}`);
    // The check below can see the broker: while it runs, exactly its JVM carries the data directory.
    assert.deepEqual(processesMentioning(dataDir), [pid]);
    const ownKafka = createKafka({ brokers: own.brokers, clientId: `kafka-transport-own-${run}`, log });
    const cluster = await describeCluster(ownKafka);
    assert.equal(cluster.brokers.length, 1, 'a working broker, not just a process');
    // What set-up waits for before starting services on a fresh broker: then a consumer group joins at its first try.
    await waitForGroupCoordinator(ownKafka, 120_000);
    const admin = ownKafka.admin();
    await admin.connect();
    try {
      const [probe] = (await admin.describeGroups(['dalston-readiness-probe'])).groups;
      assert.equal(probe?.state, 'Dead', 'the coordinator answers for a group nobody uses');
    } finally {
      await admin.disconnect();
    }
  } finally {
    await own.stop();
  }
  assert.ok(pid !== undefined && dataDir !== undefined);
  assert.equal(isAlive(pid), false, `Kafka pid ${pid} still alive after stop()`);
  assert.deepEqual(processesMentioning(dataDir), [], 'a process still runs with the broker data dir');
  assert.equal(await isPortTaken(port), false, `client port ${port} released`);
});
