import { test } from 'node:test';
import assert from 'node:assert/strict';
import { artifactKeys } from '../storage/index.js';
import type { JobView } from './ports.js';
import { RetentionPurge } from './retention-purge.js';
import { recordingLogger, startHarness } from './test-harness.js';

void test('purge worker: an expired job is deleted like a DELETE (rows, artifacts, job.deleted), audited with reason retention, once', async () => {
  const h = await startHarness();
  try {
    const jobId = 'job_01PURGEDBYRETENTION0000A';
    const view: JobView = {
      jobId, tenantId: 'acme', status: 'completed', createdAt: h.clock.now() - 5000, completedAt: h.clock.now() - 4000, requestId: 'req_x',
      traceId: undefined, stages: [],
    };
    h.reader.put(view);
    await h.store.put(`${artifactKeys.jobPrefix(jobId)}audio/original.wav`, Buffer.from('RIFF....WAVE'));
    const purge = new RetentionPurge({ finder: { expired: async () => [view] }, deps: h.app.jobDeps, log: recordingLogger([]), intervalMs: 1000 });
    assert.equal(await purge.runOnce(), 1);
    assert.equal(await h.reader.getJob(jobId, 'acme'), undefined);
    assert.deepEqual(await h.store.list(artifactKeys.jobPrefix(jobId)), []);
    assert.equal(h.publisher.deletions.length, 1, 'job.deleted: the actor writes the tombstone of its state record');
    const audits = h.publisher.audits.filter((a) => a.jobId === jobId);
    assert.deepEqual(audits.map((a) => a.eventType).sort(), ['data.deleted', 'job.deleted']);
    for (const a of audits) {
      assert.equal(a.tenantId, 'acme');
      assert.equal(a.actorKeyId, 'retention');
      assert.match(a.details, /"reason":"retention"/);
    }
    assert.equal(await purge.runOnce(), 0, 'a purged job is not purged again while its rows are being removed');
  } finally {
    await h.close();
  }
});
