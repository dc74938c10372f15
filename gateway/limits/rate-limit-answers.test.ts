import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { makeWav, startHarness } from '../test-harness.js';
import { LocalRequestCounter, RequestLimiter } from './request-limiter.js';
import { parseTenantLimits } from './tenant-limits.js';

void test('over the per-minute limit: 429 rate_limited with Retry-After and X-RateLimit-*; an upload in flight still gets the answer; health needs no quota', async () => {
  const h = await startHarness({ limiter: new RequestLimiter(parseTenantLimits('default:requests_per_minute=3'), new LocalRequestCounter()) });
  try {
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const ok = await h.request('/v1/audio/transcriptions');
      await ok.body?.cancel();
      assert.equal(ok.status, 200);
      remaining.push(ok.headers.get('x-ratelimit-remaining') ?? '');
      assert.equal(ok.headers.get('x-ratelimit-limit'), '3');
    }
    assert.deepEqual(remaining, ['2', '1', '0']);
    const refused = await h.request('/v1/audio/transcriptions');
    const body = (await refused.json()) as { error: { code: string; message: string } };
    assert.equal(refused.status, 429);
    assert.equal(body.error.code, 'rate_limited');
    assert.match(body.error.message, /limit of 3 requests per minute/);
    const retry = Number(refused.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    assert.equal(refused.headers.get('x-ratelimit-remaining'), '0');
    // A refused upload: the body is read before the answer, so the client sees the 429, not a reset connection.
    const form = new FormData();
    form.append('file', new Blob([await readFile(await makeWav(h.dir, 2))]), 'a.wav');
    const upload = await h.request('/v1/audio/transcriptions', { method: 'POST', body: form });
    await upload.body?.cancel();
    assert.equal(upload.status, 429);
    assert.equal(h.publisher.created.length, 0, 'nothing was queued');
    const health = await h.request('/health', { auth: false });
    await health.body?.cancel();
    assert.equal(health.status, 200);
  } finally {
    await h.close();
  }
});
