import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestSigningSecret } from '../../streams/index.js';
import { hashSecret, newApiKey, parseApiKey, sealRequestSecret, secretMatches, unsealRequestSecret } from './api-key-secret.js';

void test('api key: dk_<id>_<secret>; the record keeps a salted hash that matches only the same secret', () => {
  const k = newApiKey();
  assert.match(k.key, /^dk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  const parsed = parseApiKey(k.key);
  assert.equal(parsed?.keyId, k.keyId);
  assert.ok(parsed && secretMatches(parsed.secret, k));
  assert.equal(k.hash.includes(parsed.secret), false);
  assert.equal(k.hash, hashSecret(parsed.secret, k.salt).toString('hex'));
  const other = newApiKey();
  assert.notEqual(other.salt, k.salt, 'a fresh salt per key');
  assert.equal(secretMatches(parsed.secret, other), false);
  const flipped = parsed.secret.slice(0, -1) + (parsed.secret.endsWith('A') ? 'B' : 'A');
  assert.equal(secretMatches(flipped, k), false);
  for (const bad of ['', 'dk_', 'dk_test_0123456789abcdef', `${k.key}x`, k.key.replace('dk_', 'sk_'), k.key.toUpperCase()]) assert.equal(parseApiKey(bad), undefined, bad);
});

void test('sealed Kafka signing secret: opens only with the same bootstrap key and is never the key itself', () => {
  const k = newApiKey();
  const sealed = sealRequestSecret(k.key, 'bootstrap-1');
  assert.equal(sealed.includes(k.key), false);
  assert.equal(unsealRequestSecret(sealed, 'bootstrap-1'), requestSigningSecret(k.key));
  assert.notEqual(requestSigningSecret(k.key), k.key);
  assert.equal(unsealRequestSecret(sealed, 'bootstrap-2'), undefined);
  assert.equal(unsealRequestSecret(undefined, 'bootstrap-1'), undefined);
  assert.equal(unsealRequestSecret('AAAA', 'bootstrap-1'), undefined);
  assert.equal(requestSigningSecret('dk_test_bootstrap'), 'dk_test_bootstrap', 'the bootstrap key signs with itself, as before');
});
