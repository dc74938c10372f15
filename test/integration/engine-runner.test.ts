/**
 * The engine runner's own promises, on the real Kafka of the suite: heartbeats while a task runs (and none after),
 * at most DALSTON_ENGINE_CONCURRENCY tasks at once, and a dispatch committed only once its task.started is
 * acknowledged (never before: a dispatch whose task.started was not published goes to the next instance). The engine
 * is a test engine whose tasks the test finishes by hand, so nothing here depends on how long anything takes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../core/clock.js';
import { loadConfig } from '../../core/config.js';
import { DependencyUnavailableError, InvalidInputError } from '../../core/errors.js';
import type { Engine } from '../../engines/sdk/engine.js';
import {
  JOB_EVENTS, SCHEMA_VERSION, consumerGroupLag, encodeMessage, engineGroupId, engineTaskTopic, ensureTopics, newMessageHeaders,
  type MessageSender, type OutgoingMessage, type SendResult, type TaskDispatch, type TopicBatch,
} from '../../streams/index.js';
import {
  FaultySender, eventually, fixtureTaskTopic, raw, recordingLogger, sleep, startRuntimeFixture, type LogLine, type RuntimeFixture,
} from '../support/runtime-fixture.js';

const ENGINE_ID = 'eng-prepare';

/** An engine whose tasks run until the test finishes them (or their signal aborts); it records what ran and how many at once. */
function gatedEngine(): Engine & {
  readonly started: string[];
  readonly ended: string[];
  readonly maxInFlight: () => number;
  readonly running: () => string[];
  finish(taskId: string, error?: Error): void;
} {
  const started: string[] = [];
  const ended: string[] = [];
  const gates = new Map<string, (error?: Error) => void>();
  let inFlight = 0;
  let max = 0;
  return {
    engineId: ENGINE_ID, stage: 'prepare', started, ended,
    maxInFlight: () => max,
    running: () => [...gates.keys()],
    finish(taskId, error) {
      const gate = gates.get(taskId);
      assert.ok(gate, `${taskId} is running`);
      gate(error);
    },
    async process(ctx) {
      started.push(ctx.taskId);
      inFlight++;
      max = Math.max(max, inFlight);
      try {
        await new Promise<void>((resolve, reject) => {
          gates.set(ctx.taskId, (error) => (error ? reject(error) : resolve()));
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error('aborted')), { once: true });
        });
        return { data: { ok: true } };
      } finally {
        gates.delete(ctx.taskId);
        inFlight--;
        ended.push(ctx.taskId);
      }
    },
  };
}

async function dispatch(f: RuntimeFixture, jobId: string): Promise<string> {
  const taskId = `task_${jobId}_prepare`;
  const now = Date.now();
  const task: TaskDispatch = {
    v: SCHEMA_VERSION, type: 'task.dispatch', jobId, taskId, stage: 'prepare', engineId: ENGINE_ID, attempt: 1,
    enqueuedAt: now, deadlineAt: now + 300_000, inputs: {}, config: {},
  };
  await f.streams.producer.send(f.topic(fixtureTaskTopic('prepare')), { key: jobId, value: encodeMessage(task), headers: newMessageHeaders({}) });
  return taskId;
}

const eventsFor = (events: Record<string, unknown>[], taskId: string, type: string): Record<string, unknown>[] =>
  events.filter((e) => e['taskId'] === taskId && e['type'] === type);

const until = (what: string, check: () => boolean, timeoutMs = 30_000): Promise<true> =>
  eventually(() => (check() ? true : undefined), timeoutMs, what);

/** Committed offsets of the engine's group on its queue, by partition ('-1': nothing committed). */
async function committed(f: RuntimeFixture): Promise<Map<number, string>> {
  const [topic] = await f.streams.admin.fetchOffsets({ groupId: engineGroupId(f.prefix, ENGINE_ID), topics: [f.topic(fixtureTaskTopic('prepare'))] });
  return new Map((topic?.partitions ?? []).map((p) => [p.partition, p.offset]));
}

interface FakeTimer {
  readonly beat: () => void;
  readonly ms: number;
  cancelled: boolean;
}

test('heartbeats: a running task beats every heartbeatIntervalMs (injected timer and clock), and the beats stop when it completes or fails', async () => {
  const f = await startRuntimeFixture('beats');
  try {
    const events = await f.recorder(JOB_EVENTS.name, raw);
    const clock = new ManualClock(1_700_000_000_000);
    const timers: FakeTimer[] = [];
    const engine = gatedEngine();
    const runner = await f.runner({
      engine, clock, heartbeatIntervalMs: 700,
      heartbeatTimer: (beat, ms) => {
        const t: FakeTimer = { beat, ms, cancelled: false };
        timers.push(t);
        return { cancel: () => { t.cancelled = true; } };
      },
    });
    await runner.start();

    const ok = await dispatch(f, 'job_beat_ok');
    await until('the task runs', () => engine.started.includes(ok));
    assert.equal(timers.length, 1, 'one heartbeat timer for the running task');
    const [first] = timers;
    assert.ok(first);
    assert.equal(first.ms, 700, 'at the configured interval');
    assert.equal(first.cancelled, false, 'beating while the task runs');
    const t0 = clock.now();
    for (let i = 1; i <= 3; i++) {
      clock.advance(700);
      first.beat();
      await until(`heartbeat ${i}`, () => eventsFor(events.values(), ok, 'task.heartbeat').length === i);
    }
    const beats = eventsFor(events.values(), ok, 'task.heartbeat');
    assert.deepEqual(beats.map((b) => b['at']), [t0 + 700, t0 + 1400, t0 + 2100], 'each beat stamped by the injected clock');
    assert.ok(beats.every((b) => b['attempt'] === 1 && b['instanceId'] === runner.instanceId && b['jobId'] === 'job_beat_ok'));
    engine.finish(ok);
    await until('task.completed', () => eventsFor(events.values(), ok, 'task.completed').length === 1);
    assert.equal(first.cancelled, true, 'the heartbeat stops when the task completes');
    // One job, one partition: the beats sit between the task's start and its result.
    const order = events.values().filter((e) => e['taskId'] === ok).map((e) => e['type']);
    assert.deepEqual(order, ['task.started', 'task.heartbeat', 'task.heartbeat', 'task.heartbeat', 'task.completed']);

    const bad = await dispatch(f, 'job_beat_fail');
    await until('the failing task runs', () => engine.started.includes(bad));
    assert.equal(timers.length, 2, 'a new timer for the next task');
    const second = timers[1];
    assert.ok(second);
    assert.equal(second.cancelled, false);
    engine.finish(bad, new InvalidInputError('unreadable audio'));
    await until('task.failed', () => eventsFor(events.values(), bad, 'task.failed').length === 1);
    assert.equal(second.cancelled, true, 'the heartbeat stops when the task fails');
    assert.equal(eventsFor(events.values(), bad, 'task.heartbeat').length, 0, 'no beat was fired for it');
  } finally {
    await f.stop();
  }
});

test('heartbeats on the default timer: sent while a task runs, none of a finished task while the next one beats', async () => {
  const f = await startRuntimeFixture('realbeats');
  try {
    const events = await f.recorder(JOB_EVENTS.name, raw);
    const engine = gatedEngine();
    const runner = await f.runner({ engine, heartbeatIntervalMs: 200 });
    await runner.start();
    const first = await dispatch(f, 'job_real_1');
    await until('3 beats of the first task', () => eventsFor(events.values(), first, 'task.heartbeat').length >= 3);
    engine.finish(first);
    await until('the first task completed', () => eventsFor(events.values(), first, 'task.completed').length === 1);
    const beatsOfFirst = eventsFor(events.values(), first, 'task.heartbeat').length;
    const second = await dispatch(f, 'job_real_2');
    // The second task beats on the same interval: a timer the first task left running would have fired meanwhile.
    await until('3 beats of the second task', () => eventsFor(events.values(), second, 'task.heartbeat').length >= 3);
    assert.equal(eventsFor(events.values(), first, 'task.heartbeat').length, beatsOfFirst, 'no beat of the finished task');
    assert.equal(events.values().filter((e) => e['taskId'] === first).at(-1)?.['type'], 'task.completed', 'its result is its last event');
    engine.finish(second);
    await until('the second task completed', () => eventsFor(events.values(), second, 'task.completed').length === 1);
  } finally {
    await f.stop();
  }
});

test('DALSTON_ENGINE_CONCURRENCY bounds the tasks one runner runs at once: never more, and the next starts only when one ends', async () => {
  const f = await startRuntimeFixture('concurrency');
  try {
    const events = await f.recorder(JOB_EVENTS.name, raw);
    const concurrency = loadConfig({ DALSTON_ENGINE_CONCURRENCY: '3' }).engineConcurrency;
    assert.equal(concurrency, 3);
    const engine = gatedEngine();
    const runner = await f.runner({ engine, concurrency });
    await runner.start();
    const tasks: string[] = [];
    for (let i = 0; i < 8; i++) tasks.push(await dispatch(f, `job_conc_${i}`)); // spread over the topic's 6 partitions
    await until('3 tasks running', () => engine.started.length === 3);
    // Not a timing assertion: time for a runner that ignored the bound to take a fourth task, which the check below would see.
    await sleep(1500);
    assert.equal(engine.started.length, 3, 'no fourth task while three run');
    assert.equal(runner.inFlight, 3);
    for (let done = 1; done <= tasks.length; done++) {
      const oldest = engine.running()[0];
      assert.ok(oldest, 'a task is running');
      engine.finish(oldest);
      await until(`${done} finished`, () => engine.ended.length === done);
      const expected = Math.min(tasks.length, done + 3);
      await until(`${expected} started`, () => engine.started.length === expected);
      assert.ok(runner.inFlight <= 3, `in flight after ${done} finished: ${runner.inFlight}`);
    }
    assert.equal(engine.maxInFlight(), 3, 'the bound was reached and never exceeded');
    assert.deepEqual([...engine.started].sort(), [...tasks].sort(), 'every task ran once');
    await until('every task completed', () => tasks.every((t) => eventsFor(events.values(), t, 'task.completed').length === 1));
    for (const t of tasks) assert.equal(eventsFor(events.values(), t, 'task.started').length, 1, `${t} started once`);
  } finally {
    await f.stop();
  }
});

/** Sends through the real producer, except task.started on jobs.events, which waits until the test fails it. */
class HeldStarted implements MessageSender {
  reached = 0;
  #fail: (err: Error) => void = () => undefined;
  readonly #gate = new Promise<never>((_, reject) => (this.#fail = reject));

  constructor(private readonly inner: MessageSender, private readonly eventsTopic: string) {
    this.#gate.catch(() => undefined);
  }

  failHeld(): void {
    this.#fail(new DependencyUnavailableError('injected: task.started was never acknowledged'));
  }

  async send(topic: string, message: OutgoingMessage): Promise<SendResult> {
    if (topic === this.eventsTopic) {
      this.reached++;
      await this.#gate;
    }
    return this.inner.send(topic, message);
  }

  sendBatch(batches: readonly TopicBatch[]): Promise<SendResult[]> {
    return this.inner.sendBatch(batches);
  }
}

test('a dispatch is committed only once its task.started is acknowledged: unacknowledged, it stays uncommitted and the next instance runs it', async () => {
  const f = await startRuntimeFixture('commit');
  const held = new HeldStarted(f.streams.producer, f.topic(JOB_EVENTS.name));
  try {
    const events = await f.recorder(JOB_EVENTS.name, raw);
    const dlq = await f.recorder('dead-letter', (v) => JSON.parse(v.toString('utf8')) as Record<string, unknown>);
    const engineA = gatedEngine();
    const a = await f.runner({ engine: engineA, producer: held, drainMs: 500 });
    await a.start();
    const taskId = await dispatch(f, 'job_commit');
    await until('instance A publishes task.started', () => held.reached === 1);
    assert.deepEqual(engineA.started, [], 'nothing runs before task.started is acknowledged');

    // A goes away while its task.started hangs; once its consumer has left the group, what it committed is final.
    const closingA = a.close();
    const group = engineGroupId(f.prefix, ENGINE_ID);
    await eventually(async () => {
      const { groups } = await f.streams.admin.describeGroups([group]);
      return groups[0]?.members.length === 0 ? true : undefined;
    }, 60_000, 'instance A left the group');
    const afterA = await committed(f);
    assert.ok([...afterA.values()].every((o) => o === '-1'), `nothing committed by A: ${JSON.stringify([...afterA])}`);
    held.failHeld();
    await closingA;
    assert.deepEqual(engineA.started, [], 'A never ran the task');

    // B's first five task.started publishes fail (Kafka unavailable): it keeps retrying the dispatch, never drops it.
    const faulty = new FaultySender(f.streams.producer);
    faulty.failNext((topic) => topic === f.topic(JOB_EVENTS.name), 5);
    const engineB = gatedEngine();
    const b = await f.runner({ engine: engineB, producer: faulty });
    await b.start();
    await until('instance B runs the redelivered task', () => engineB.started.includes(taskId), 60_000);
    assert.equal(faulty.failures, 5);
    // Committed once started, while the task still runs (a rebalance now must not run it again).
    await eventually(async () => ([...(await committed(f)).values()].some((o) => o === '1') ? true : undefined), 30_000, 'the dispatch committed');
    assert.equal(eventsFor(events.values(), taskId, 'task.completed').length, 0, 'still running when committed');
    engineB.finish(taskId);
    await until('task.completed', () => eventsFor(events.values(), taskId, 'task.completed').length === 1);
    assert.equal(eventsFor(events.values(), taskId, 'task.started').length, 1, 'started once, by B');
    assert.equal(eventsFor(events.values(), taskId, 'task.started')[0]?.['instanceId'], b.instanceId);
    assert.equal(b.processed, 1);
    assert.equal(dlq.records.length, 0, 'the dispatch was never dead-lettered');
  } finally {
    held.failHeld(); // after a failed assertion too: instance A's close waits for its held send
    await f.stop();
  }
});

test("an engine reads only its own queue: work for another engine of its stage waits in that engine's queue as its backlog", async () => {
  const f = await startRuntimeFixture('routing');
  try {
    const lines: LogLine[] = [];
    const engine = gatedEngine();
    const runner = await f.runner({ engine, log: recordingLogger(lines) });
    await runner.start();
    // Three tasks for an engine of the same stage that is not running, then two for this one.
    const otherQueue = engineTaskTopic('prepare', 'eng-prepare-other');
    await ensureTopics(f.kafka, [{ ...otherQueue, name: f.topic(otherQueue.name) }]);
    const now = Date.now();
    for (const jobId of ['job_other_1', 'job_other_2', 'job_other_3']) {
      const task: TaskDispatch = {
        v: SCHEMA_VERSION, type: 'task.dispatch', jobId, taskId: `task_${jobId}_prepare`, stage: 'prepare', engineId: 'eng-prepare-other', attempt: 1,
        enqueuedAt: now, deadlineAt: now + 300_000, inputs: {}, config: {},
      };
      await f.streams.producer.send(f.topic(otherQueue.name), { key: jobId, value: encodeMessage(task), headers: newMessageHeaders({}) });
    }
    const mine = [await dispatch(f, 'job_mine_1'), await dispatch(f, 'job_mine_2')];
    for (const taskId of mine) {
      await until(`${taskId} runs`, () => engine.started.includes(taskId));
      engine.finish(taskId);
    }
    await until('both tasks finished', () => runner.processed === 2);
    assert.deepEqual([...engine.started].sort(), [...mine].sort(), 'this engine ran its own tasks and nothing else');
    assert.equal(lines.filter((l) => l.msg === 'dispatch for another engine skipped').length, 0, 'another engine\'s dispatch never reached this one');

    // Queue depth per engine is the true backlog: the absent engine's three tasks; this engine's queue drains to 0.
    const [other] = await consumerGroupLag(f.streams.admin, engineGroupId(f.prefix, 'eng-prepare-other'), [f.topic(otherQueue.name)]);
    assert.equal(other?.lag, 3, 'the absent engine\'s backlog');
    await eventually(async () => {
      const [own] = await consumerGroupLag(f.streams.admin, engineGroupId(f.prefix, ENGINE_ID), [f.topic(fixtureTaskTopic('prepare'))]);
      return own?.lag === 0 ? true : undefined;
    }, 30_000, 'this engine\'s queue drained');
    const [crossRead] = await f.streams.admin.fetchOffsets({ groupId: engineGroupId(f.prefix, ENGINE_ID), topics: [f.topic(otherQueue.name)] });
    assert.ok((crossRead?.partitions ?? []).every((p) => p.offset === '-1'), 'this engine\'s group never committed on the other queue');
  } finally {
    await f.stop();
  }
});
