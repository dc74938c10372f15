/**
 * A 300-job burst (the suite's version of `npm run bench:burst`): 32 clients submit as fast as they can against a
 * gateway that refuses beyond 40 queued tasks; one actor host is SIGKILLed and another added a third of the way in.
 * Every accepted job ends completed with exactly one terminal audit row, every refusal carried Retry-After, and no
 * process grew past its memory bound.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { runBurst } from '../../load-tests/batch/burst.js';
import { MOONSHINE_TINY, batchEngineId } from '../../engines/models/catalogue.js';
import { synthesizeFile } from '../../harness/speech-fixtures.js';
import { startHarness, type Harness } from '../../harness/pipeline-harness.js';

const ENGINE = batchEngineId(MOONSHINE_TINY);
/** Every Dalston process stays well below this (the engine holds Moonshine tiny, ~100 MB of weights). */
const MEMORY_BOUND_MB = 1024;
let h: Harness;
before(async () => {
  h = await startHarness({
    name: 'burst', actorHosts: 2, engines: ['audio-prepare', ENGINE, 'merge'],
    env: { DALSTON_TRANSCRIBE_ENGINE: ENGINE, DALSTON_MAX_QUEUED_TASKS: '40', DALSTON_LOG_LEVEL: 'warn' },
  });
});
after(async () => {
  await h?.stop();
});

test('300 jobs in a burst: refusals carry Retry-After, every accepted job completes exactly once through an actor host crash', async (t) => {
  const audio = await synthesizeFile('go forward ten meters', { padBefore: 0.1, padAfter: 0.1 });
  const r = await runBurst(h, { jobs: 300, concurrency: 32, audio, killActorHostAfter: 100, maxRetryWaitSeconds: 10, drainTimeoutMs: 900_000 });
  t.diagnostic(`accepted ${r.accepted}, refusals ${r.refusals} (Retry-After p50 ${r.retryAfterSeconds.p50} s), ended after ${r.drainSeconds.toFixed(0)} s, ` +
    `outcomes ${JSON.stringify(r.outcomes)}, no answer ${r.networkErrors}, killed ${r.actorHostKilled}, added ${r.actorHostAdded}, ` +
    `peak RSS ${r.processes.map((p) => `${p.name} ${p.rssPeakMb.toFixed(0)} MB`).join(', ')}`);
  assert.deepEqual(r.otherFailures, [], 'every answer was 201 or 503');
  // A submission that got no answer (the connection failed) was tried again; it is no refusal and created no job.
  t.diagnostic(`submissions without an answer (retried): ${r.networkErrors}`);
  assert.equal(r.accepted, 300, 'every job accepted in the end (the clients retried after each refusal)');
  assert.ok(r.refusals > 0, 'the limit of 40 queued tasks was reached: some submissions were refused');
  assert.equal(r.refusalsWithoutRetryAfter, 0, 'every refusal carried Retry-After');
  assert.ok(r.retryAfterSeconds.max <= 60 && r.retryAfterSeconds.p50 >= 1, `Retry-After within 1–60 s: ${JSON.stringify(r.retryAfterSeconds)}`);
  assert.ok(r.actorHostKilled !== undefined && r.actorHostAdded !== undefined, 'an actor host was killed and another added mid-burst');
  assert.deepEqual(r.stuck, []);
  assert.deepEqual(r.outcomes, { completed: 300 });
  assert.equal(r.createdJobs, 300, 'the stack created exactly the accepted jobs: no answer lost on its way made a job the client does not know');
  assert.deepEqual(r.duplicateTerminalAudits, [], 'no job ended twice');
  assert.deepEqual(r.missingTerminalAudits, [], 'every job has its terminal audit row');
  for (const p of r.processes) assert.ok(p.rssPeakMb < MEMORY_BOUND_MB, `${p.name} peak RSS ${p.rssPeakMb.toFixed(0)} MB`);
});
