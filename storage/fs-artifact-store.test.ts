import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsArtifactStore, NotFoundError, artifactKeys } from './index.js';

test('fs artifact store: put/get/list/delete per job, and refuses keys that escape its root', async () => {
  const root = await mkdtemp(join(tmpdir(), 'dalston-store-'));
  try {
    const store = new FsArtifactStore(root);
    await store.put(artifactKeys.taskOutput('j1', 't1'), Buffer.from('{"a":1}'));
    const src = join(root, 'src.bin');
    await writeFile(src, Buffer.from([1, 2, 3]));
    await store.putFile(artifactKeys.originalAudio('j1', 'wav'), src);
    await store.put(artifactKeys.transcript('j2'), Buffer.from('other job'));

    assert.deepEqual(JSON.parse((await store.get('jobs/j1/tasks/t1/output.json')).toString()), { a: 1 });
    assert.deepEqual(await store.list('jobs/j1/'), ['jobs/j1/audio/original.wav', 'jobs/j1/tasks/t1/output.json']);
    const copy = join(root, 'copy.bin');
    await store.getToFile('jobs/j1/audio/original.wav', copy);
    assert.deepEqual([...(await readFile(copy))], [1, 2, 3]);

    assert.equal(await store.deletePrefix('jobs/j1/'), 2);
    assert.deepEqual(await store.list('jobs/j1/'), []);
    assert.equal(await store.exists('jobs/j2/transcript.json'), true);
    await assert.rejects(store.get('jobs/j1/tasks/t1/output.json'), NotFoundError);
    await assert.rejects(store.put('../escape', Buffer.from('x')), /unsafe artifact key/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
