/**
 * Two actor hosts and two transcribe engine instances share the work; cancelling a queued and a running job
 * ends both as `cancelled`; a running job cannot be deleted (409), a finished one is, with its tasks rows.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { ESPEAK_SENTENCES, synthesizeFile } from '../../harness/speech-fixtures.js';
import { POCKETSPHINX_ENGINE, TERMINAL, startHarness, type Harness } from '../../harness/pipeline-harness.js';

const harnesses: Harness[] = [];
after(async () => {
  await Promise.all(harnesses.map((h) => h.stop()));
});

/** Polls `check` until it holds; fails naming `what` after `timeoutMs`. */
async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function countLines(h: Harness, service: string, needle: string): Promise<number> {
  const svc = h.services.find((s) => s.spec.name === service);
  const text = await readFile(svc!.logFile, 'utf8');
  return text.split('\n').filter((l) => l.includes(needle)).length;
}

test('two actor hosts and two engine instances both take part', async (t) => {
  const h = await startHarness({
    name: 'scale',
    actorHosts: 2,
    engines: ['audio-prepare', { engineId: POCKETSPHINX_ENGINE, name: 'asr-a' }, { engineId: POCKETSPHINX_ENGINE, name: 'asr-b' }, 'merge'],
  });
  harnesses.push(h);
  const files = await Promise.all(ESPEAK_SENTENCES.slice(0, 3).map((s) => synthesizeFile(s)));
  const ids: string[] = [];
  for (let i = 0; i < 12; i++) {
    const res = await h.submit(files[i % files.length]!);
    assert.equal(res.status, 201);
    ids.push(res.body.id);
  }
  for (const id of ids) {
    const job = await h.waitFor(id, (j) => TERMINAL.has(j.status), 180_000);
    assert.equal(job.status, 'completed', `${id}: ${JSON.stringify(job.error)}`);
  }
  const perHost = await Promise.all(['actors-0', 'actors-1'].map((n) => countLines(h, n, '"job finished"')));
  const perEngine = await Promise.all(['asr-a', 'asr-b'].map((n) => countLines(h, n, '"task completed"')));
  t.diagnostic(`jobs finished per actor host: ${perHost.join(', ')}; transcribe tasks per engine instance: ${perEngine.join(', ')}`);
  assert.equal(perHost[0]! + perHost[1]!, 12, 'every job finished exactly once across hosts');
  assert.ok(perHost.every((n) => n > 0), 'both actor hosts finished jobs');
  assert.ok(perEngine.every((n) => n > 0), 'both engine instances transcribed');
});

test('cancelling a queued job and a running job ends both as cancelled; DELETE is 409 while running, then removes the tasks rows', async () => {
  const h = await startHarness({
    name: 'cancel',
    engines: ['audio-prepare', { engineId: POCKETSPHINX_ENGINE, env: { DALSTON_FAULT_INJECTION: 'hang' } }, 'merge'],
  });
  harnesses.push(h);
  const speech = await synthesizeFile('go forward ten meters');
  const running = await h.submit(speech);
  await h.waitFor(running.body.id, (j) => j.stages.some((s) => s.stage === 'transcribe' && s.status === 'running'), 30_000);
  // The single transcribe engine is busy: the second job's transcribe task waits in its topic.
  const queued = await h.submit(speech);
  await h.waitFor(queued.body.id, (j) => j.stages.some((s) => s.stage === 'transcribe' && s.status === 'ready'), 30_000);

  const c1 = await h.api(`/v1/audio/transcriptions/${queued.body.id}/cancel`, { method: 'POST' });
  assert.equal(c1.status, 200);
  const q = await h.waitFor(queued.body.id, (j) => TERMINAL.has(j.status), 30_000);
  assert.equal(q.status, 'cancelled');
  assert.equal(q.stages.find((s) => s.stage === 'transcribe')?.status, 'cancelled');

  // A running job cannot be deleted (an engine could still write into it): 409, and the job is untouched.
  const early = await h.api(`/v1/audio/transcriptions/${running.body.id}`, { method: 'DELETE' });
  assert.equal(early.status, 409);
  const refusal = (await early.json()) as { error: { code: string; message: string } };
  assert.equal(refusal.error.code, 'conflict');
  assert.match(refusal.error.message, /is running; cancel it before deleting it/);
  assert.equal((await h.job(running.body.id)).status, 'running', 'the refused deletion left the job as it was');

  const c2 = await h.api(`/v1/audio/transcriptions/${running.body.id}/cancel`, { method: 'POST' });
  assert.equal(c2.status, 200);
  const r = await h.waitFor(running.body.id, (j) => TERMINAL.has(j.status), 30_000);
  assert.equal(r.status, 'cancelled');
  assert.equal(r.stages.find((s) => s.stage === 'transcribe')?.status, 'cancelled', 'the engine honoured the cancel signal mid-task');
  assert.equal(r.stages.find((s) => s.stage === 'merge')?.status, 'cancelled');

  const again = await h.api(`/v1/audio/transcriptions/${running.body.id}/cancel`, { method: 'POST' });
  assert.equal(again.status, 409, 'a terminal job cannot be cancelled');

  // Once finished it can be deleted, and its tasks rows go from ClickHouse too. Wait for the sink to have written the
  // tasks' last states first, so the rows exist (and no late write of them is still on its way) before the deletion.
  const taskStates = (id: string) => h.clickhouse.client.query<{ task_id: string; status: string }>(
    `SELECT task_id, argMax(status, version) AS status FROM ${h.database}.tasks WHERE job_id = '${id}' GROUP BY task_id ORDER BY task_id`,
  );
  await until(async () => (await taskStates(r.id)).filter((t) => TERMINAL.has(t.status)).length === 3, 30_000, 'the tasks rows of the cancelled job');
  const del = await h.api(`/v1/audio/transcriptions/${r.id}`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  assert.equal((await h.api(`/v1/audio/transcriptions/${r.id}`)).status, 404);
  // ALTER … DELETE is a mutation ClickHouse applies asynchronously.
  await until(async () => (await taskStates(r.id)).length === 0, 60_000, 'the deleted job\'s tasks rows removed');
  assert.equal((await taskStates(q.id)).length, 3, 'the other job\'s tasks rows stay');
});
