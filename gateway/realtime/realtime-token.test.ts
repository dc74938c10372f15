import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mintToken, tokenSecret, verifyToken } from './realtime-token.js';

const secret = tokenSecret('dk_test');
const claims = { tenantId: 'default', keyId: 'key_0123456789ab', expiresAt: 1_000_000 };

void test('a minted token verifies with its claims until it expires', () => {
  const { token, claims: c } = mintToken(secret, claims);
  assert.match(token, /^rtt_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  const ok = verifyToken(secret, token, 999_999);
  assert.deepEqual(ok, { ok: true, claims: c });
  assert.deepEqual(verifyToken(secret, token, 1_000_000), { ok: false, code: 'token_expired', message: 'real-time token expired' });
});

void test('another API key\'s secret, a changed payload or signature, and garbage are invalid', () => {
  const { token } = mintToken(secret, claims);
  assert.equal(verifyToken(tokenSecret('dk_other'), token, 0).ok, false);
  const [payload, sig] = token.slice(4).split('.') as [string, string];
  const longer = Buffer.from(JSON.stringify(['x', 'default', 'key_0123456789ab', 9e15])).toString('base64url');
  assert.equal(verifyToken(secret, `rtt_${longer}.${sig}`, 0).ok, false);
  assert.equal(verifyToken(secret, `rtt_${payload}.${sig.slice(0, -2)}AA`, 0).ok, false);
  for (const bad of ['', 'rtt_', 'dk_test', 'rtt_a.b.c', `rtt_${payload}`]) assert.equal(verifyToken(secret, bad, 0).ok, false, bad);
});

void test('token ids differ: each token is its own single use', () => {
  assert.notEqual(mintToken(secret, claims).claims.jti, mintToken(secret, claims).claims.jti);
});
