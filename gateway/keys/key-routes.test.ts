import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TEST_API_KEY, eventually, startHarness } from '../test-harness.js';
import { InMemoryKeyStore } from './key-store.js';

const json = (body: unknown): RequestInit => ({ method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

void test('/v1/keys: the operator issues keys for tenants; a tenant admin sees and revokes only its own; the key is shown once and audited', async () => {
  const keys = new InMemoryKeyStore();
  const h = await startHarness({ keys });
  try {
    const created = await h.request('/v1/keys', json({ name: 'acme admin', scopes: ['admin'], tenant: 'acme' }));
    assert.equal(created.status, 201);
    const acmeAdmin = (await created.json()) as Record<string, unknown>;
    assert.equal(acmeAdmin['tenant'], 'acme');
    assert.match(String(acmeAdmin['key']), /^dk_[0-9a-f]{16}_/);
    assert.equal('hash' in acmeAdmin || 'salt' in acmeAdmin, false);
    const adminKey = String(acmeAdmin['key']);
    const other = (await (await h.request('/v1/keys', json({ name: 'globex admin', scopes: ['admin'], tenant: 'globex' }))).json()) as Record<string, unknown>;

    // acme's admin: creates in its own tenant; naming another is a 404 (that tenant "does not exist" to it).
    const reader = await h.request('/v1/keys', { ...json({ name: 'reader', scopes: 'jobs:read', expires_in_seconds: 3600 }), headers: { ...bearer(adminKey), 'content-type': 'application/json' } });
    assert.equal(reader.status, 201);
    const readerBody = (await reader.json()) as Record<string, unknown>;
    assert.equal(readerBody['tenant'], 'acme');
    assert.deepEqual(readerBody['scopes'], ['jobs:read']);
    assert.ok(readerBody['expires_at']);
    const cross = await h.request('/v1/keys', { ...json({ name: 'x', scopes: ['admin'], tenant: 'globex' }), headers: { ...bearer(adminKey), 'content-type': 'application/json' } });
    assert.equal(cross.status, 404);

    const listed = (await (await h.request('/v1/keys', { headers: bearer(adminKey) })).json()) as { data: Record<string, unknown>[] };
    assert.deepEqual(listed.data.map((k) => k['name']).sort(), ['acme admin', 'reader']);
    assert.equal(listed.data.some((k) => 'key' in k), false, 'a listing never shows a key');
    assert.equal((await h.request(`/v1/keys/${String(other['id'])}`, { headers: bearer(adminKey) })).status, 404);
    assert.equal((await h.request(`/v1/keys/${String(other['id'])}`, { method: 'DELETE', headers: bearer(adminKey) })).status, 404);
    const all = (await (await h.request('/v1/keys')).json()) as { data: unknown[] };
    assert.equal(all.data.length, 3, 'the operator sees every tenant');

    // The reader key lacks admin: 403. Revoked by its admin: 401 at once; revoking again answers the same.
    assert.equal((await h.request('/v1/keys', { headers: bearer(String(readerBody['key'])) })).status, 403);
    assert.equal((await h.request('/v1/audio/transcriptions', { headers: bearer(String(readerBody['key'])) })).status, 200);
    const revoked = await h.request(`/v1/keys/${String(readerBody['id'])}`, { method: 'DELETE', headers: bearer(adminKey) });
    assert.equal(revoked.status, 200);
    assert.equal(((await revoked.json()) as Record<string, unknown>)['status'], 'revoked');
    assert.equal((await h.request('/v1/audio/transcriptions', { headers: bearer(String(readerBody['key'])) })).status, 401);
    assert.equal((await h.request(`/v1/keys/${String(readerBody['id'])}`, { method: 'DELETE', headers: bearer(adminKey) })).status, 200);

    const audits = h.publisher.audits.map((a) => a.eventType);
    assert.equal(audits.filter((t) => t === 'api_key.created').length, 3);
    assert.equal(audits.filter((t) => t === 'api_key.revoked').length, 1, 'a repeated revocation is not audited twice');
    await eventually(() => assert.ok(h.publisher.audits.some((a) => a.eventType === 'access.denied' && a.actorKeyId === readerBody['id'] && a.tenantId === 'acme')));
  } finally {
    await h.close();
  }
});

void test('/v1/keys: bad requests are 400 with what is wrong; nothing is stored', async () => {
  const keys = new InMemoryKeyStore();
  const h = await startHarness({ keys });
  try {
    const cases: [unknown, RegExp][] = [
      [{ scopes: ['admin'] }, /name must be/],
      [{ name: 'n' }, /scopes must be a non-empty list/],
      [{ name: 'n', scopes: ['root'] }, /unknown scope "root"/],
      [{ name: 'n', scopes: ['admin'], tenant: 'Not A Tenant' }, /tenant must be/],
      [{ name: 'n', scopes: ['admin'], expires_at: '2001-01-01T00:00:00Z' }, /in the future/],
      [{ name: 'n', scopes: ['admin'], expires_in_seconds: -5 }, /positive integer/],
      [[1, 2], /JSON object/],
    ];
    for (const [body, message] of cases) {
      const res = await h.request('/v1/keys', json(body));
      const answer = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(answer.error.code, 'invalid_request');
      assert.match(answer.error.message, message);
    }
    assert.equal(keys.list(undefined).length, 0);
    assert.equal(TEST_API_KEY.startsWith('dk_'), true);
  } finally {
    await h.close();
  }
});
