import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../core/logger.js';
import { CancelledError, ConfigError } from '../../core/errors.js';
import type { Engine, EngineTaskContext } from '../sdk/engine.js';
import { InjectedFaultError, parseFaultPlan, withFaults } from './fault-injection.js';

const echo: Engine = { engineId: 'echo', stage: 'prepare', process: async (ctx) => ({ data: { attempt: ctx.attempt } }) };
const ctx = (attempt: number, signal = new AbortController().signal): EngineTaskContext => ({
  jobId: 'j', taskId: 't', stage: 'prepare', attempt, config: {}, inputs: {}, workDir: '/tmp', signal, log: silentLogger,
  measureModelLoad: (_m, load) => load(),
});

test('fault plans parse strictly and wrap a real engine', async () => {
  assert.deepEqual(parseFaultPlan('fail-attempts:2'), { kind: 'fail-attempts', attempts: 2 });
  assert.throws(() => parseFaultPlan('explode'), ConfigError);
  // An empty count used to parse as 0 (Number('') === 0): `slow:` silently injected nothing.
  for (const bad of ['slow:', 'fail-attempts:', 'slow:10:1']) assert.throws(() => parseFaultPlan(bad), ConfigError, bad);
  const flaky = withFaults(echo, parseFaultPlan('fail-attempts:2'));
  await assert.rejects(flaky.process(ctx(1)), InjectedFaultError);
  await assert.rejects(flaky.process(ctx(2)), (e: unknown) => e instanceof InjectedFaultError && e.retryable);
  assert.deepEqual((await flaky.process(ctx(3))).data, { attempt: 3 });
  const ac = new AbortController();
  const hung = withFaults(echo, parseFaultPlan('hang')).process(ctx(1, ac.signal));
  ac.abort(new CancelledError('stop'));
  await assert.rejects(hung, CancelledError);
});

test('slow:MS delays every task by MS on the timer (then runs the engine), and a cancel during the delay stops it', async (t) => {
  assert.deepEqual(parseFaultPlan('slow:250'), { kind: 'slow', ms: 250 });
  assert.deepEqual(parseFaultPlan('slow:0'), { kind: 'slow', ms: 0 });
  for (const bad of ['slow', 'slow:-1', 'slow:1.5', 'slow:fast']) {
    assert.throws(() => parseFaultPlan(bad), (e: unknown) => e instanceof ConfigError && e.message.startsWith('DALSTON_FAULT_INJECTION'), bad);
  }
  // Mocked timers: the delay is asserted in timer ticks, not measured on the wall clock.
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const calls: number[] = [];
  const counted: Engine = { ...echo, process: async (c) => { calls.push(c.attempt); return { data: { attempt: c.attempt } }; } };
  const slow = withFaults(counted, parseFaultPlan('slow:250'));
  let done: unknown;
  const running = slow.process(ctx(1)).then((r) => (done = r.data));
  await settle();
  t.mock.timers.tick(249);
  await settle();
  assert.equal(done, undefined, 'not finished 1 ms before the delay ends');
  assert.deepEqual(calls, [], 'the engine has not started during the delay');
  t.mock.timers.tick(1);
  await running;
  assert.deepEqual(done, { attempt: 1 });
  assert.deepEqual(calls, [1], 'then the real engine runs, once');

  // Every task, not only the first, is delayed.
  const second = slow.process(ctx(2));
  await settle();
  assert.deepEqual(calls, [1]);
  t.mock.timers.tick(250);
  assert.deepEqual((await second).data, { attempt: 2 });

  // Cancelled during the delay: rejects with the signal's reason at once and never runs the engine.
  const ac = new AbortController();
  const cancelled = slow.process(ctx(3, ac.signal));
  t.mock.timers.tick(100);
  ac.abort(new CancelledError('stop'));
  await assert.rejects(cancelled, (e: unknown) => e instanceof CancelledError && e.message === 'stop');
  t.mock.timers.tick(1000);
  await settle();
  assert.deepEqual(calls, [1, 2], 'the cancelled task never reached the engine');
  // Already cancelled before it starts: no delay at all.
  await assert.rejects(slow.process(ctx(4, AbortSignal.abort(new CancelledError('gone')))), CancelledError);
});

/** Lets pending callbacks run; only setTimeout is mocked, so this does not move the mocked time. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
