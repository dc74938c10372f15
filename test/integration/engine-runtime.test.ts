/**
 * The engine runner under rebalances, shutdown and late cancels, on the real Kafka of the suite. Each test pins one
 * finding of the actor-runtime correctness issue (named in its title). The engines are small test engines (the
 * subject is the runner); dispatches and cancels are published by the test as an actor host would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidInputError } from '../../core/errors.js';
import type { Engine } from '../../engines/sdk/engine.js';
import { SCHEMA_VERSION, TASK_CONTROL, encodeMessage, newMessageHeaders, type TaskDispatch } from '../../streams/index.js';
import { eventually, fixtureTaskTopic, raw, sleep, startRuntimeFixture, type RuntimeFixture } from '../support/runtime-fixture.js';

const ENGINE_ID = 'eng-prepare';

/** An engine that works `ms` per task (checking its signal), or until close() unloads its "model". */
function testEngine(ms: (taskId: string) => number): Engine & { readonly ran: string[] } {
  let closed = false;
  const ran: string[] = [];
  return {
    engineId: ENGINE_ID, stage: 'prepare', ran,
    async process(ctx) {
      ran.push(ctx.taskId);
      const until = Date.now() + ms(ctx.taskId);
      while (Date.now() < until) {
        if (closed) throw new InvalidInputError('the model was unloaded'); // a non-retryable failure, as a model error would be
        if (ctx.signal.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error('aborted');
        await sleep(50);
      }
      return { data: { ok: true } };
    },
    async close() {
      closed = true;
      await sleep(200);
    },
  };
}

async function dispatch(f: RuntimeFixture, jobId: string, attempt = 1): Promise<string> {
  const taskId = `task_${jobId}_prepare`;
  const now = Date.now();
  const task: TaskDispatch = {
    v: SCHEMA_VERSION, type: 'task.dispatch', jobId, taskId, stage: 'prepare', engineId: ENGINE_ID, attempt,
    enqueuedAt: now, deadlineAt: now + 120_000, inputs: {}, config: {},
  };
  await f.streams.producer.send(f.topic(fixtureTaskTopic('prepare')), { key: jobId, value: encodeMessage(task), headers: newMessageHeaders({}) });
  return taskId;
}

const eventsFor = (events: Record<string, unknown>[], taskId: string, type: string): Record<string, unknown>[] =>
  events.filter((e) => e['taskId'] === taskId && e['type'] === type);

test('finding 3: a task longer than the rebalance timeout keeps running while a second instance joins; it runs once and the newcomer takes other work', async () => {
  const f = await startRuntimeFixture('longtask');
  try {
    const events = await f.recorder('jobs.events', raw);
    const a = await f.runner({ engine: testEngine((id) => (id.includes('long') ? 12_000 : 300)), rebalanceTimeoutMs: 3000, sessionTimeoutMs: 6000 });
    await a.start();
    const long = await dispatch(f, 'job_long');
    await eventually(() => eventsFor(events.values(), long, 'task.started')[0], 20_000, 'the long task started');
    const b = await f.runner({ engine: testEngine(() => 300), rebalanceTimeoutMs: 3000, sessionTimeoutMs: 6000 });
    await b.start();
    const others: string[] = [];
    for (let i = 0; i < 6; i++) others.push(await dispatch(f, `job_short${i}`));
    await eventually(() => (b.processed > 0 ? true : undefined), 30_000, 'the new instance processed work');
    const longDoneBefore = eventsFor(events.values(), long, 'task.completed').length;
    assert.equal(longDoneBefore, 0, 'the newcomer took work while the long task still ran');
    await eventually(() => eventsFor(events.values(), long, 'task.completed')[0], 30_000, 'the long task completed');
    await eventually(() => (others.every((t) => eventsFor(events.values(), t, 'task.completed').length > 0) ? true : undefined), 30_000, 'every short task completed');
    assert.equal(eventsFor(events.values(), long, 'task.started').length, 1, 'the long task started exactly once');
    assert.equal(eventsFor(events.values(), long, 'task.completed').length, 1);
    for (const t of others) assert.equal(eventsFor(events.values(), t, 'task.started').length, 1, `${t} ran once`);
    assert.equal(a.processed + b.processed, 7);
  } finally {
    await f.stop();
  }
});

test('finding 9: an engine shut down mid-task gives the task back (task.released), never reports the failure its unloading causes', async () => {
  const f = await startRuntimeFixture('release');
  try {
    const events = await f.recorder('jobs.events', raw);
    const a = await f.runner({ engine: testEngine(() => 60_000), drainMs: 1000 });
    await a.start();
    const taskId = await dispatch(f, 'job_release');
    await eventually(() => eventsFor(events.values(), taskId, 'task.started')[0], 20_000, 'started');
    await a.close();
    const released = await eventually(() => eventsFor(events.values(), taskId, 'task.released')[0], 20_000, 'task.released');
    assert.equal(released['attempt'], 1);
    await sleep(500);
    assert.equal(eventsFor(events.values(), taskId, 'task.failed').length, 0, 'no task.failed');
    assert.equal(a.released, 1);
  } finally {
    await f.stop();
  }
});

test('finding 12: a cancel sent before an engine instance started is honoured, and the control stream leaves no committed group behind', async () => {
  const f = await startRuntimeFixture('latecancel');
  try {
    const events = await f.recorder('jobs.events', raw);
    const cancelled = await dispatch(f, 'job_cancelled');
    await f.streams.producer.send(f.topic(TASK_CONTROL.name), {
      key: 'job_cancelled', headers: newMessageHeaders({}),
      value: encodeMessage({ v: SCHEMA_VERSION, type: 'task.cancel', jobId: 'job_cancelled', taskId: cancelled, attempt: 1, at: Date.now() }),
    });
    const a = await f.runner({ engine: testEngine(() => 100) });
    await a.start();
    const normal = await dispatch(f, 'job_normal');
    await eventually(() => eventsFor(events.values(), normal, 'task.completed')[0], 20_000, 'the next task ran');
    assert.equal(eventsFor(events.values(), cancelled, 'task.started').length, 0, 'the cancelled task never started');
    assert.equal(a.processed, 1);
    const group = `${f.prefix.replace(/\.$/, '')}-engine-control-${a.instanceId}`;
    const offsets = await f.streams.admin.fetchOffsets({ groupId: group, topics: [f.topic(TASK_CONTROL.name)] });
    assert.ok(offsets.every((t) => t.partitions.every((p) => p.offset === '-1')), `no committed control offsets: ${JSON.stringify(offsets)}`);
  } finally {
    await f.stop();
  }
});

test('a dispatch re-sent for an attempt this instance already took is skipped, not run twice', async () => {
  const f = await startRuntimeFixture('dupdispatch');
  try {
    const events = await f.recorder('jobs.events', raw);
    const a = await f.runner({ engine: testEngine(() => 100) });
    await a.start();
    const taskId = await dispatch(f, 'job_dup');
    await eventually(() => eventsFor(events.values(), taskId, 'task.completed')[0], 20_000, 'completed');
    await dispatch(f, 'job_dup'); // the actor's outbox sent again after a takeover
    const next = await dispatch(f, 'job_after');
    await eventually(() => eventsFor(events.values(), next, 'task.completed')[0], 20_000, 'the next task');
    assert.equal(eventsFor(events.values(), taskId, 'task.started').length, 1, 'the duplicate did not run');
    assert.equal(a.processed, 2);
  } finally {
    await f.stop();
  }
});
