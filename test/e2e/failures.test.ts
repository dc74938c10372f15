/**
 * Failure handling end to end: an engine that fails twice then succeeds shows retries: 2; one that keeps failing
 * fails the job with its error in `stages`; a corrupt upload fails fast with a clear, non-retried error; a poison
 * message on jobs.events lands in the dead-letter topic while the partition keeps flowing.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../core/logger.js';
import {
  DEAD_LETTER, JOB_EVENTS, StreamConsumer, StreamProducer, decodeDeadLetter, newMessageHeaders, prefixed, type DeadLetterRecord,
} from '../../streams/index.js';
import { synthesizeFile } from '../../harness/speech-fixtures.js';
import { POCKETSPHINX_ENGINE, TERMINAL, startHarness, type Harness } from '../../harness/pipeline-harness.js';

const harnesses: Harness[] = [];
after(async () => {
  await Promise.all(harnesses.map((h) => h.stop()));
});

test('retries: a flaky prepare engine succeeds on its third attempt; poison goes to the DLQ while partitions keep flowing', async (t) => {
  const h = await startHarness({
    name: 'flaky',
    engines: [{ engineId: 'audio-prepare', env: { DALSTON_FAULT_INJECTION: 'fail-attempts:2' } }, POCKETSPHINX_ENGINE, 'merge'],
  });
  harnesses.push(h);
  const speech = await synthesizeFile('go forward ten meters', { padBefore: 0.2, padAfter: 0.2 });

  const ok = await h.submit(speech);
  assert.equal(ok.status, 201);
  const job = await h.waitFor(ok.body.id, (j) => TERMINAL.has(j.status), 60_000);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  const prepare = job.stages.find((s) => s.stage === 'prepare');
  assert.equal(prepare?.retries, 2, 'two failed attempts, then success');
  assert.equal(prepare?.error, null, 'a stage that finally succeeded reports no error');
  t.diagnostic(`flaky prepare: ${JSON.stringify(prepare)}`);

  // Poison: undecodable bytes on every partition of jobs.events. They go to the DLQ and the next job still completes.
  const producer = new StreamProducer({ kafka: h.kafka, log: silentLogger });
  await producer.connect();
  const eventsTopic = prefixed(h.prefix, JOB_EVENTS.name);
  for (let partition = 0; partition < JOB_EVENTS.partitions; partition++) {
    await producer.send(eventsTopic, { key: `poison-${partition}`, value: Buffer.from([0xc1, 0xff, 0x00, partition]), headers: newMessageHeaders({ requestId: 'req_poison' }), partition });
  }
  await producer.close();
  const after = await h.submit(speech);
  const afterJob = await h.waitFor(after.body.id, (j) => TERMINAL.has(j.status), 60_000);
  assert.equal(afterJob.status, 'completed', 'the partitions keep flowing after poison');

  const letters: DeadLetterRecord[] = [];
  const dlq = new StreamConsumer<DeadLetterRecord>({
    kafka: h.kafka, groupId: `${h.prefix}dlq-reader`, topics: [prefixed(h.prefix, DEAD_LETTER.name)], decode: (v) => decodeDeadLetter(v),
    handler: async (m) => void letters.push(m.value), deadLetter: { write: async () => undefined }, log: silentLogger, maxWaitTimeMs: 100,
  });
  await dlq.start();
  const deadline = Date.now() + 20_000;
  while (letters.filter((l) => l.source.topic === eventsTopic).length < JOB_EVENTS.partitions && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await dlq.close();
  const poisoned = letters.filter((l) => l.source.topic === eventsTopic);
  assert.equal(poisoned.length, JOB_EVENTS.partitions, 'one dead letter per poison message');
  assert.ok(poisoned.every((l) => l.reason === 'undecodable'));
  t.diagnostic(`dead letter example: ${JSON.stringify({ reason: poisoned[0]?.reason, error: poisoned[0]?.error })}`);
});

test('an engine that keeps failing fails the job with its error in stages; a corrupt file fails fast', async () => {
  const h = await startHarness({
    name: 'broken',
    engines: ['audio-prepare', { engineId: POCKETSPHINX_ENGINE, env: { DALSTON_FAULT_INJECTION: 'fail-attempts:99' } }, 'merge'],
  });
  harnesses.push(h);
  const speech = await synthesizeFile('go forward ten meters');
  const res = await h.submit(speech);
  const job = await h.waitFor(res.body.id, (j) => TERMINAL.has(j.status), 60_000);
  assert.equal(job.status, 'failed');
  const tr = job.stages.find((s) => s.stage === 'transcribe');
  assert.equal(tr?.status, 'failed');
  assert.equal(tr?.retries, 2, 'the default two retries were used');
  assert.equal(tr?.error?.code, 'DALSTON_ERR_INJECTED_FAULT');
  assert.match(job.error?.message ?? '', /^transcribe failed: /);
  assert.equal(job.stages.find((s) => s.stage === 'merge')?.status, 'skipped');

  // A corrupt upload: not audio at all. Fails in prepare, not retried, with a human-readable message.
  const dir = await mkdtemp(join(tmpdir(), 'dalston-corrupt-'));
  const corrupt = join(dir, 'broken.mp3');
  await writeFile(corrupt, Buffer.from('this is plainly not an mp3 file, just text pretending to be one\n'.repeat(20)));
  const bad = await h.submit(corrupt);
  assert.equal(bad.status, 201);
  const failed = await h.waitFor(bad.body.id, (j) => TERMINAL.has(j.status), 60_000);
  await rm(dir, { recursive: true, force: true });
  assert.equal(failed.status, 'failed');
  const badPrepare = failed.stages.find((s) => s.stage === 'prepare');
  assert.equal(badPrepare?.status, 'failed');
  assert.equal(badPrepare?.retries, 0, 'bad input is not retried');
  assert.equal(badPrepare?.error?.code, 'DALSTON_ERR_INVALID_INPUT');
  assert.match(failed.error?.message ?? '', /prepare failed: .*(audio|decod)/i);
  assert.ok(failed.stages.filter((s) => s.stage !== 'prepare').every((s) => s.status === 'skipped'), 'later stages never ran');
});
