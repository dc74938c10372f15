import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UrlAllowList } from '../core/network-policy.js';
import { postWebhook } from './http-delivery.js';

void test('a delivery attempt: 2xx delivered, 5xx and silence failed, a name resolving to loopback refused at connection time unless allow-listed', async () => {
  const seen: { headers: IncomingMessage['headers']; body: string }[] = [];
  let answer = 204;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ headers: req.headers, body });
      if (answer === 0) return; // never answers
      res.writeHead(answer).end(answer >= 300 ? 'try later' : '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const allowLoopback = new UrlAllowList(['127.0.0.1']);
    const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': '1', 'webhook-signature': 'v1,x' };
    const ok = await postWebhook(`http://127.0.0.1:${port}/hook`, headers, '{"a":1}', allowLoopback, 2000);
    assert.equal(ok.kind, 'delivered');
    assert.equal(seen[0]?.body, '{"a":1}');
    assert.equal(seen[0]?.headers['webhook-id'], 'msg_1');
    assert.equal(seen[0]?.headers['content-type'], 'application/json');
    answer = 503;
    const failed = await postWebhook(`http://127.0.0.1:${port}/hook`, headers, '{}', allowLoopback, 2000);
    assert.deepEqual(failed.kind === 'failed' ? [failed.httpStatus, failed.error] : failed, [503, 'answered 503: try later']);
    answer = 0;
    const silent = await postWebhook(`http://127.0.0.1:${port}/hook`, headers, '{}', allowLoopback, 300);
    assert.equal(silent.kind === 'failed' && silent.error, 'no answer within 300 ms');
    const before = seen.length;
    // The same receiver by a name: the name's address is judged when connecting, and loopback is not allowed.
    const byName = await postWebhook(`http://localhost:${port}/hook`, headers, '{}', new UrlAllowList([]), 2000);
    assert.equal(byName.kind, 'refused');
    assert.match(byName.kind === 'refused' ? byName.error : '', /localhost resolves to (127\.0\.0\.1|::1)/);
    const literal = await postWebhook(`http://10.1.2.3:${port}/hook`, headers, '{}', new UrlAllowList([]), 2000);
    assert.equal(literal.kind, 'refused');
    assert.equal(seen.length, before, 'nothing reached the receiver');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
