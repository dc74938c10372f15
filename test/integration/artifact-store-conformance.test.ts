/**
 * One conformance suite for every artifact store backend: the local filesystem and S3. S3 runs against moto's
 * S3 server on loopback (installed by `./dalston test` from PyPI), the only S3 protocol implementation this
 * machine can reach; the AWS SDK client and our key layout are exercised for real.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MOTO_REGION, startMotoS3, type MotoS3 } from '../support/moto-server.js';
import { FsArtifactStore, NotFoundError, S3ArtifactStore, artifactKeys, type ArtifactStore } from '../../storage/index.js';

let dir: string;
let moto: MotoS3 | undefined;
let s3Endpoint = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dalston-store-conf-'));
  moto = await startMotoS3();
  s3Endpoint = moto.endpoint;
  await moto.createBucket('dalston-test');
});

after(async () => {
  await moto?.stop();
  await rm(dir, { recursive: true, force: true });
});

const backends: [string, () => ArtifactStore][] = [
  ['fs', () => new FsArtifactStore(join(dir, 'fs'))],
  ['s3', () => new S3ArtifactStore({ bucket: 'dalston-test', region: MOTO_REGION, endpoint: s3Endpoint })],
];

for (const [name, make] of backends) {
  void describe(`artifact store conformance: ${name}`, () => {
    test('put/get/putFile/getToFile round-trip bytes exactly', async () => {
      const store = make();
      assert.equal(store.backend, name);
      const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
      await store.put(artifactKeys.taskOutput('job_a', 'task_1'), bytes, 'application/octet-stream');
      assert.deepEqual(await store.get(artifactKeys.taskOutput('job_a', 'task_1')), bytes);
      const src = join(dir, `${name}-src.bin`);
      await writeFile(src, bytes);
      await store.putFile(artifactKeys.originalAudio('job_a', 'wav'), src, 'audio/wav');
      const copy = join(dir, `${name}-copy.bin`);
      await store.getToFile(artifactKeys.originalAudio('job_a', 'wav'), copy);
      assert.deepEqual(await readFile(copy), bytes);
      assert.equal(await store.exists(artifactKeys.originalAudio('job_a', 'wav')), true);
      assert.equal(await store.exists('jobs/job_a/nothing'), false);
    });

    test('putStream stores a stream as it arrives: one byte, under one part, and over two parts (S3 multipart) come back exactly', async () => {
      const store = make();
      for (const size of [1, 70_000, 2 * 8 * 1024 * 1024 + 12_345]) {
        const bytes = Buffer.alloc(size);
        for (let i = 0; i < size; i++) bytes[i] = (i * 7) % 251;
        // Chunks of uneven sizes, as a socket delivers them.
        const chunks = function* () {
          for (let at = 0, n = 1; at < size; at += n, n = (n * 3 + 1) % 100_003 || 1) yield bytes.subarray(at, Math.min(size, at + n));
        };
        const key = artifactKeys.originalAudio(`job_stream${size}`, 'wav');
        assert.equal(await store.putStream(key, Readable.from(chunks()), 'audio/wav'), size);
        assert.ok((await store.get(key)).equals(bytes), `${size} bytes round-trip`);
      }
    });

    test('size and getStream: the whole object or a byte range, streamed; a missing key is NotFoundError', async () => {
      const store = make();
      const bytes = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 13) % 256));
      const key = artifactKeys.originalAudio('job_read', 'wav');
      await store.put(key, bytes, 'audio/wav');
      assert.equal(await store.size(key), bytes.length);
      const read = async (r: Readable) => {
        const chunks: Buffer[] = [];
        for await (const c of r) chunks.push(c as Buffer);
        return Buffer.concat(chunks);
      };
      const whole = await store.getStream(key);
      assert.equal(whole.size, bytes.length);
      assert.ok((await read(whole.body)).equals(bytes));
      const part = await store.getStream(key, { start: 1000, end: 1999 });
      assert.equal(part.size, bytes.length, 'the size is the whole object\'s');
      assert.ok((await read(part.body)).equals(bytes.subarray(1000, 2000)));
      await assert.rejects(store.size('jobs/job_read/nothing'), NotFoundError);
      await assert.rejects(store.getStream('jobs/job_read/nothing'), NotFoundError);
    });

    test('putStream of a stream that fails part-way (a limit crossed, a client gone) leaves nothing under the key', async () => {
      const store = make();
      const key = artifactKeys.originalAudio('job_broken', 'wav');
      const failing = new Readable({ read() {} });
      const stored = store.putStream(key, failing, 'audio/wav');
      // More than one S3 part first, so a multipart upload is under way when the stream fails.
      for (let i = 0; i < 10; i++) failing.push(Buffer.alloc(1024 * 1024, i));
      setTimeout(() => failing.destroy(new Error('over the limit')), 50);
      await assert.rejects(stored, /over the limit/);
      assert.equal(await store.exists(key), false);
      assert.deepEqual(await store.list(artifactKeys.jobPrefix('job_broken')), []);
    });

    test("a job's data lists and deletes together; other jobs are untouched; missing keys are NotFoundError", async () => {
      const store = make();
      await store.put(artifactKeys.transcript('job_b'), Buffer.from('{}'));
      await store.put(artifactKeys.taskBlob('job_b', 'task_2', 'audio.wav'), Buffer.from('x'));
      await store.put(artifactKeys.transcript('job_c'), Buffer.from('{}'));
      assert.deepEqual(await store.list(artifactKeys.jobPrefix('job_b')), ['jobs/job_b/tasks/task_2/audio.wav', 'jobs/job_b/transcript.json']);
      assert.equal(await store.deletePrefix(artifactKeys.jobPrefix('job_b')), 2);
      assert.deepEqual(await store.list(artifactKeys.jobPrefix('job_b')), []);
      assert.equal(await store.exists(artifactKeys.transcript('job_c')), true);
      await assert.rejects(store.get(artifactKeys.transcript('job_b')), NotFoundError);
      await assert.rejects(store.put('../escape', Buffer.from('x')), /unsafe artifact key/);
    });
  });
}
