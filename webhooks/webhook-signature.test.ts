import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Webhook } from 'standardwebhooks';
import { newWebhookSecret, signedHeaders, webhookSignature } from './webhook-signature.js';

void test('signatures verify with the standardwebhooks package; during a rotation either secret verifies; a changed body does not', () => {
  const current = newWebhookSecret();
  const previous = newWebhookSecret();
  assert.match(current, /^whsec_[A-Za-z0-9+/]{43}=$/);
  const body = JSON.stringify({ object: 'event', type: 'transcription.completed', data: { transcription_id: 'job_1' } });
  const now = Math.floor(Date.now() / 1000);
  const headers = signedHeaders([current, previous], 'msg_abc', now, body);
  assert.equal(headers['webhook-signature']?.split(' ').length, 2);
  for (const secret of [current, previous]) assert.deepEqual(new Webhook(secret).verify(body, headers), JSON.parse(body));
  assert.throws(() => new Webhook(newWebhookSecret()).verify(body, headers), /No matching signature found/);
  assert.throws(() => new Webhook(current).verify(body.replace('job_1', 'job_2'), headers), /No matching signature found/);
  // Our own signer and the package's agree byte for byte.
  assert.equal(webhookSignature(current, 'msg_abc', now, body), new Webhook(current).sign('msg_abc', new Date(now * 1000), body));
});
