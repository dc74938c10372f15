/**
 * Crash tests with processes really killed (SIGKILL): an actor host dies mid-job and its replacement finishes
 * the job from the compacted state topic; an engine dies mid-task and the task is retried on another instance.
 * Each job completes exactly once (one job.completed audit event in ClickHouse), with the retry in `stages`.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { ANALYTICS, prefixed } from '../../streams/index.js';
import { synthesizeFile } from '../../harness/speech-fixtures.js';
import { waitUntilConsumed } from '../support/consumer-progress.js';
import { POCKETSPHINX_ENGINE, TERMINAL, startHarness, type Harness } from '../../harness/pipeline-harness.js';

const harnesses: Harness[] = [];
after(async () => {
  await Promise.all(harnesses.map((h) => h.stop()));
});

/**
 * job.completed audit rows of a job in ClickHouse. The host sends the audit event after the snapshot the status API
 * reads, so first wait for its row to land; then wait until the sink has handled every analytics record written by
 * then (it commits a record only once its row is written) and count. A duplicate completion, had the system sent one,
 * would be among those records: once the first row is in, the job is finished and nothing sends its completion again.
 */
async function completedAuditEvents(h: Harness, jobId: string): Promise<number> {
  const count = async (): Promise<number> => Number((await h.clickhouse.client.query<{ n: number }>(
    `SELECT count() AS n FROM ${h.database}.audit_events WHERE job_id = '${jobId}' AND event_type = 'job.completed'`,
  ))[0]?.n ?? 0);
  const deadline = Date.now() + 30_000;
  while ((await count()) === 0) {
    if (Date.now() > deadline) return 0;
    await new Promise((r) => setTimeout(r, 200));
  }
  await waitUntilConsumed(h.kafka, `${h.prefix.replace(/\.$/, '')}-sink-clickhouse`, prefixed(h.prefix, ANALYTICS.name), 60_000);
  return count();
}

test('an actor host killed mid-job: a new host restores the actor and the job completes exactly once', async (t) => {
  const h = await startHarness({
    name: 'actorcrash',
    engines: ['audio-prepare', { engineId: POCKETSPHINX_ENGINE, env: { DALSTON_FAULT_INJECTION: 'slow:4000' } }, 'merge'],
  });
  harnesses.push(h);
  const speech = await synthesizeFile('go forward ten meters');
  const res = await h.submit(speech);
  assert.equal(res.status, 201);
  await h.waitFor(res.body.id, (j) => j.stages.some((s) => s.stage === 'transcribe' && s.status === 'running'), 30_000);
  const host = h.services.find((s) => s.spec.name === 'actors-0');
  assert.ok(host);
  await host.kill();
  t.diagnostic('actor host SIGKILLed while transcribe was running');
  await h.start({ name: 'actors-1', kind: 'actors' });
  const job = await h.waitFor(res.body.id, (j) => TERMINAL.has(j.status), 90_000);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  assert.deepEqual(job.stages.map((s) => s.status), ['completed', 'completed', 'completed']);
  assert.equal(await completedAuditEvents(h, res.body.id), 1, 'exactly one completion');
  const restored = (await readFile(h.services.find((s) => s.spec.name === 'actors-1')!.logFile, 'utf8')).includes('"restored":1');
  assert.ok(restored, 'the new host restored one live actor from the state topic');
});

test('an engine killed mid-task: the task is retried on another instance and the retry shows in stages', async (t) => {
  const slow = { DALSTON_FAULT_INJECTION: 'slow:3000' };
  const h = await startHarness({
    name: 'enginecrash',
    engines: [
      'audio-prepare',
      { engineId: POCKETSPHINX_ENGINE, env: slow, name: 'asr-a' },
      { engineId: POCKETSPHINX_ENGINE, env: slow, name: 'asr-b' },
      'merge',
    ],
  });
  harnesses.push(h);
  const speech = await synthesizeFile('go forward ten meters');
  const res = await h.submit(speech);
  await h.waitFor(res.body.id, (j) => j.stages.some((s) => s.stage === 'transcribe' && s.status === 'running'), 30_000);
  // Find the instance that picked the task up, from its own log.
  let victim;
  for (const name of ['asr-a', 'asr-b']) {
    const svc = h.services.find((s) => s.spec.name === name);
    const text = await readFile(svc!.logFile, 'utf8');
    if (text.split('\n').some((l) => l.includes('"task started"') && l.includes(res.body.id))) victim = svc;
  }
  assert.ok(victim, 'one transcribe instance logged the task start');
  await victim.kill();
  t.diagnostic(`killed ${victim.spec.name} mid-task`);
  const job = await h.waitFor(res.body.id, (j) => TERMINAL.has(j.status), 120_000);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  const tr = job.stages.find((s) => s.stage === 'transcribe');
  assert.ok((tr?.retries ?? 0) >= 1, `the retry is visible: ${JSON.stringify(tr)}`);
  assert.equal(await completedAuditEvents(h, res.body.id), 1, 'exactly one completion');
  t.diagnostic(`transcribe stage after the crash: ${JSON.stringify(tr)}`);
});
