/**
 * IMDSv2 instance-id lookup against loopback fakes (never the real 169.254.169.254): present with a working fake,
 * absent, and quickly, when nothing listens or the server never answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { freePort } from '../../infra/ports.js';
import { readEc2InstanceId } from '../../core/telemetry/instance-id.js';

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ endpoint: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { endpoint: `http://127.0.0.1:${port}`, server };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

void test('IMDSv2 fake: PUT token with TTL header, then GET instance-id with the token', async () => {
  const seen: string[] = [];
  const { endpoint, server } = await serve((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      assert.equal(req.headers['x-aws-ec2-metadata-token-ttl-seconds'], '21600');
      res.end('AQAEAtoken==');
    } else if (req.method === 'GET' && req.url === '/latest/meta-data/instance-id') {
      if (req.headers['x-aws-ec2-metadata-token'] !== 'AQAEAtoken==') res.writeHead(401).end();
      else res.end('i-0123456789abcdef0');
    } else res.writeHead(404).end();
  });
  try {
    assert.equal(await readEc2InstanceId({ endpoint }), 'i-0123456789abcdef0');
    assert.deepEqual(seen, ['PUT /latest/api/token', 'GET /latest/meta-data/instance-id']);
  } finally {
    await close(server);
  }
});

void test('IMDSv1-only or failing metadata (token refused, 404 id) gives undefined', async () => {
  const { endpoint, server } = await serve((req, res) => res.writeHead(req.method === 'PUT' ? 403 : 200).end('i-should-not-be-used'));
  try {
    assert.equal(await readEc2InstanceId({ endpoint }), undefined);
  } finally {
    await close(server);
  }
  const { endpoint: e2, server: s2 } = await serve((req, res) => (req.method === 'PUT' ? res.end('tok') : res.writeHead(404).end('nope')));
  try {
    assert.equal(await readEc2InstanceId({ endpoint: e2 }), undefined);
  } finally {
    await close(s2);
  }
});

void test('nothing listening (closed loopback port): undefined, immediately', async () => {
  const port = await freePort();
  const t0 = Date.now();
  assert.equal(await readEc2InstanceId({ endpoint: `http://127.0.0.1:${port}` }), undefined);
  const elapsed = Date.now() - t0;
  assert.ok(elapsed < 2500, `took ${elapsed} ms`);
});

void test('a server that accepts and never answers: undefined after the 1 s timeout, not later', async () => {
  const { endpoint, server } = await serve(() => undefined);
  try {
    const t0 = Date.now();
    assert.equal(await readEc2InstanceId({ endpoint }), undefined);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 900, `waited for the timeout (${elapsed} ms)`);
    assert.ok(elapsed < 2500, `gave up after one timeout (${elapsed} ms)`);
  } finally {
    await close(server);
  }
});

void test('token answers, instance-id hangs: undefined after the id call timeout', async () => {
  const { endpoint, server } = await serve((req, res) => {
    if (req.method === 'PUT') res.end('tok');
    // GET: never answer
  });
  try {
    const t0 = Date.now();
    assert.equal(await readEc2InstanceId({ endpoint }), undefined);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 900 && elapsed < 2500, `one timeout for the id call (${elapsed} ms)`);
  } finally {
    await close(server);
  }
});

void test('headers sent then the body stalls: still bounded by the timeout', async () => {
  const { endpoint, server } = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial');
  });
  try {
    const t0 = Date.now();
    assert.equal(await readEc2InstanceId({ endpoint }), undefined);
    assert.ok(Date.now() - t0 < 2500);
  } finally {
    await close(server);
  }
});
