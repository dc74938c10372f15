import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCOPES } from '../../streams/index.js';
import { createApiKeyAuthenticator, grants, keyIdOf } from '../auth.js';
import { HttpError } from '../errors.js';
import { requireAccess } from '../route-access.js';
import { issueKey } from './key-issuance.js';
import { InMemoryKeyStore } from './key-store.js';

const NOW = Date.UTC(2026, 11, 7, 12);

function refusal(fn: () => unknown): { status: number; code: string; message: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HttpError, String(err));
    return { status: err.status, code: err.apiCode, message: err.message };
  }
  assert.fail('expected a refusal');
}

void test('issued keys: active → its tenant and scopes; revoked, expired, wrong secret or unknown → 401 saying which; the bootstrap key still works', async () => {
  const store = new InMemoryKeyStore();
  const issue = async (name: string, extra: { expiresAt?: number; revoked?: boolean } = {}) => {
    const { key, record } = issueKey({ tenantId: 'acme', name, scopes: ['jobs:read'], ...(extra.expiresAt !== undefined ? { expiresAt: extra.expiresAt } : {}) }, { bootstrapKey: 'boot', createdBy: 'cli', now: NOW - 1000 });
    await store.put(extra.revoked ? { ...record, revokedAt: NOW - 10 } : record);
    return { key, record };
  };
  const active = await issue('active');
  const revoked = await issue('revoked', { revoked: true });
  const expired = await issue('expired', { expiresAt: NOW });
  const later = await issue('later', { expiresAt: NOW + 1 });
  let now = NOW;
  const auth = createApiKeyAuthenticator({ bootstrapKey: 'boot', keys: store, now: () => now });

  assert.deepEqual(auth.authenticate(`Bearer ${active.key}`), { tenantId: 'acme', keyId: active.record.keyId, scopes: ['jobs:read'] });
  assert.equal(store.lastUsed(active.record.keyId), NOW, 'an accepted use is noted');
  assert.equal(auth.authenticate(`Bearer ${later.key}`).keyId, later.record.keyId);
  assert.deepEqual(refusal(() => auth.authenticate(`Bearer ${revoked.key}`)), { status: 401, code: 'unauthorized', message: 'API key revoked' });
  assert.deepEqual(refusal(() => auth.authenticate(`Bearer ${expired.key}`)), { status: 401, code: 'unauthorized', message: 'API key expired' });
  now = NOW + 1;
  assert.equal(refusal(() => auth.authenticate(`Bearer ${later.key}`)).message, 'API key expired', 'expiry is checked at each use');
  const wrongSecret = `${active.key.slice(0, -2)}${active.key.endsWith('AA') ? 'BB' : 'AA'}`;
  assert.equal(refusal(() => auth.authenticate(`Bearer ${wrongSecret}`)).message, 'invalid API key');
  assert.equal(refusal(() => auth.authenticate('Bearer dk_00000000000000aa_' + 'A'.repeat(43))).message, 'invalid API key');
  assert.equal(store.lastUsed(revoked.record.keyId), undefined, 'a refused key is not noted as used');
  assert.deepEqual(auth.authenticate('Bearer boot'), { tenantId: 'default', keyId: keyIdOf('boot'), scopes: [...SCOPES], operator: true });
});

void test('scopes: admin holds every scope; others only their own; public and any-key routes need none', () => {
  assert.ok(grants({ scopes: ['admin'] }, 'jobs:write'));
  assert.ok(grants({ scopes: ['jobs:read', 'realtime'] }, 'realtime'));
  assert.equal(grants({ scopes: ['jobs:read'] }, 'jobs:write'), false);
  const reader = { tenantId: 't', keyId: 'k', scopes: ['jobs:read'] as const };
  requireAccess(reader, 'jobs:read');
  requireAccess(reader, 'any');
  requireAccess(reader, 'public');
  assert.deepEqual(refusal(() => requireAccess(reader, 'admin')), { status: 403, code: 'insufficient_scope', message: 'this API key lacks the admin scope' });
});
