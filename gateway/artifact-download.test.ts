/**
 * Downloads of stored artifacts on the real gateway over loopback: `GET /v1/audio/transcriptions/{id}/audio`
 * streams the original upload (whole, or a byte range), a range past the end is a 416, a client that reads slowly
 * gets every byte (the server waits on the socket instead of buffering), and one that leaves mid-download harms
 * nothing. The Range header parser is checked as plain values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { readFile } from 'node:fs/promises';
import { parseByteRange } from './artifact-download.js';
import { TEST_API_KEY, makeWav, startHarness, type Harness } from './test-harness.js';

void test('parseByteRange: single ranges, open-ended and suffix ranges, clipping; several ranges or bad syntax mean the whole object', () => {
  assert.deepEqual(parseByteRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseByteRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(parseByteRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(parseByteRange('bytes=-500', 100), { start: 0, end: 99 });
  assert.deepEqual(parseByteRange('bytes=50-5000', 100), { start: 50, end: 99 });
  assert.equal(parseByteRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseByteRange('bytes=-0', 100), 'unsatisfiable');
  assert.equal(parseByteRange(undefined, 100), undefined);
  assert.equal(parseByteRange('bytes=0-1,5-6', 100), undefined);
  assert.equal(parseByteRange('bytes=9-1', 100), undefined);
  assert.equal(parseByteRange('items=0-1', 100), undefined);
});

async function upload(h: Harness, wav: Buffer): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([wav]), 'call.wav');
  const res = await h.request('/v1/audio/transcriptions', { method: 'POST', body: form });
  assert.equal(res.status, 201);
  return String(((await res.json()) as { id: string }).id);
}

void test('GET …/{id}/audio: the original upload whole or by range; 416 past the end; audited; unknown job 404', async () => {
  const h = await startHarness();
  try {
    const wav = await readFile(await makeWav(h.dir, 2));
    const id = await upload(h, wav);
    const whole = await h.request(`/v1/audio/transcriptions/${id}/audio`);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('content-type'), 'audio/wav');
    assert.equal(whole.headers.get('accept-ranges'), 'bytes');
    assert.equal(whole.headers.get('content-length'), String(wav.length));
    assert.match(whole.headers.get('content-disposition') ?? '', new RegExp(`filename="${id}\\.wav"`));
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(wav));

    const part = await h.request(`/v1/audio/transcriptions/${id}/audio`, { headers: { range: 'bytes=44-143' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 44-143/${wav.length}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(wav.subarray(44, 144)));

    const past = await h.request(`/v1/audio/transcriptions/${id}/audio`, { headers: { range: `bytes=${wav.length}-` } });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), `bytes */${wav.length}`);
    assert.equal(((await past.json()) as { error: { code: string } }).error.code, 'range_not_satisfiable');

    assert.equal(h.publisher.audits.filter((a) => a.eventType === 'artifact.read').length, 2, 'each download is audited (the 416 read nothing)');
    assert.equal((await h.request('/v1/audio/transcriptions/job_01M0000000000000000000000/audio')).status, 404);
  } finally {
    await h.close();
  }
});

void test('a large download to a slow reader arrives whole (the server waits on the socket); a client leaving mid-download harms nothing', async () => {
  const h = await startHarness({ uploadMaxBytes: 64 * 1024 * 1024 });
  try {
    const big = Buffer.alloc(24 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    const id = await upload(h, big);
    const url = `${h.base}/v1/audio/transcriptions/${id}/audio`;
    const got = await new Promise<Buffer>((resolve, reject) => {
      request(url, { headers: { authorization: `Bearer ${TEST_API_KEY}` } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          // Read 1 MiB, then pause 50 ms: the server's send buffer fills and it must wait.
          if (chunks.reduce((n, x) => n + x.length, 0) % (1024 * 1024) < c.length) {
            res.pause();
            setTimeout(() => res.resume(), 50);
          }
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      }).on('error', reject).end();
    });
    assert.equal(got.length, big.length);
    assert.ok(got.equals(big), 'every byte, in order');

    // Leave after the first bytes; the gateway carries on serving.
    await new Promise<void>((resolve) => {
      const req = request(url, { headers: { authorization: `Bearer ${TEST_API_KEY}` } }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      req.end();
    });
    const after = await h.request(`/v1/audio/transcriptions/${id}/audio`, { headers: { range: 'bytes=0-3' } });
    assert.equal(after.status, 206);
    assert.ok(Buffer.from(await after.arrayBuffer()).equals(big.subarray(0, 4)));
  } finally {
    await h.close();
  }
});
