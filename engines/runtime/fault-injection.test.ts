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
