/**
 * IMDSv2 instance-id lookup against loopback fakes (never the real 169.254.169.254): present with a working fake,
 * absent when nothing listens, and absent after exactly one timeout per call when the server stalls. The timeouts
 * run on a ManualClock, so "after the 1 s timeout, not before" is checked in clock time, whatever the machine's load.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setImmediate as tick } from 'node:timers/promises';
import { ManualClock } from '../../core/clock.js';
import { freePort } from '../../infra/ports.js';
import { readEc2InstanceId } from '../../core/telemetry/instance-id.js';
import { until } from '../../harness/metrics-scrape.js';

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ endpoint: string; server: Server; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method ?? '?'} ${req.url ?? '?'}`);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { endpoint: `http://127.0.0.1:${port}`, server, seen };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** One lookup on a ManualClock; `answered` lists each call whose response headers arrived, as `METHOD status`. */
function lookup(endpoint: string) {
  const clock = new ManualClock(Date.UTC(2026, 10, 28, 10, 0, 0));
  const answered: string[] = [];
  const observed: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    answered.push(`${init?.method ?? 'GET'} ${res.status}`);
    return res;
  };
  const state: { done: boolean } = { done: false };
  const result = readEc2InstanceId({ endpoint, clock, fetch: observed }).finally(() => (state.done = true));
  return { clock, answered, result, settled: () => state.done };
}

/** Gives a lookup that should stay pending every chance to finish early (I/O and promise callbacks) before it is checked. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await tick();
}

void test('IMDSv2 fake: PUT token with TTL header, then GET instance-id with the token, with no timer left', async () => {
  const { endpoint, server, seen } = await serve((req, res) => {
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      assert.equal(req.headers['x-aws-ec2-metadata-token-ttl-seconds'], '21600');
      res.end('AQAEAtoken==');
    } else if (req.method === 'GET' && req.url === '/latest/meta-data/instance-id') {
      if (req.headers['x-aws-ec2-metadata-token'] !== 'AQAEAtoken==') res.writeHead(401).end();
      else res.end('i-0123456789abcdef0');
    } else res.writeHead(404).end();
  });
  try {
    const l = lookup(endpoint);
    assert.equal(await l.result, 'i-0123456789abcdef0');
    assert.deepEqual(seen, ['PUT /latest/api/token', 'GET /latest/meta-data/instance-id']);
    assert.deepEqual(l.answered, ['PUT 200', 'GET 200']);
    assert.deepEqual(l.clock.pendingTimers(), [], 'both timeouts cancelled once their call ended');
  } finally {
    await close(server);
  }
});

void test('IMDSv1-only or failing metadata (token refused, 404 id) gives undefined', async () => {
  const { endpoint, server, seen } = await serve((req, res) => res.writeHead(req.method === 'PUT' ? 403 : 200).end('i-should-not-be-used'));
  try {
    assert.equal(await readEc2InstanceId({ endpoint }), undefined);
    assert.deepEqual(seen, ['PUT /latest/api/token'], 'no GET without a token');
  } finally {
    await close(server);
  }
  const { endpoint: e2, server: s2, seen: seen2 } = await serve((req, res) => (req.method === 'PUT' ? res.end('tok') : res.writeHead(404).end('nope')));
  try {
    assert.equal(await readEc2InstanceId({ endpoint: e2 }), undefined);
    assert.deepEqual(seen2, ['PUT /latest/api/token', 'GET /latest/meta-data/instance-id']);
  } finally {
    await close(s2);
  }
});

void test('nothing listening (closed loopback port): undefined without waiting for the timeout', async () => {
  const l = lookup(`http://127.0.0.1:${await freePort()}`);
  // The clock never moves: the lookup can only end because the connection was refused.
  assert.equal(await l.result, undefined);
  assert.deepEqual(l.answered, []);
  assert.deepEqual(l.clock.pendingTimers(), []);
});

void test('a server that accepts and never answers: undefined at the 1 s timeout, not before, and no second call', async () => {
  const { endpoint, server, seen } = await serve(() => undefined);
  try {
    const l = lookup(endpoint);
    await until('the token request at the server', async () => (seen.length === 1 ? true : undefined));
    assert.deepEqual(l.clock.pendingTimers(), [1000]);
    l.clock.advance(999);
    await settle();
    assert.equal(l.settled(), false, 'still waiting 1 ms before the timeout');
    l.clock.advance(1);
    assert.equal(await l.result, undefined);
    assert.deepEqual(seen, ['PUT /latest/api/token']);
    assert.deepEqual(l.clock.pendingTimers(), []);
  } finally {
    await close(server);
  }
});

void test('token answers late, instance-id hangs: each call has its own 1 s timeout', async () => {
  let answerToken: (() => void) | undefined;
  const { endpoint, server, seen } = await serve((req, res) => {
    if (req.method === 'PUT') answerToken = () => res.end('tok');
    // GET: never answer
  });
  try {
    const l = lookup(endpoint);
    await until('the token request at the server', async () => answerToken);
    // The token comes 600 ms into its call's second: the id call still gets a full second of its own.
    l.clock.advance(600);
    answerToken?.();
    await until('the instance-id request at the server', async () => (seen.length === 2 ? true : undefined));
    assert.deepEqual(seen, ['PUT /latest/api/token', 'GET /latest/meta-data/instance-id']);
    assert.deepEqual(l.clock.pendingTimers(), [1000], 'the token call\'s timer was cancelled; the id call has a fresh one');
    l.clock.advance(999);
    await settle();
    assert.equal(l.settled(), false, 'the id call waits its whole second');
    l.clock.advance(1);
    assert.equal(await l.result, undefined);
    assert.deepEqual(l.answered, ['PUT 200']);
  } finally {
    await close(server);
  }
});

void test('headers sent then the body stalls: the timeout still ends the call', async () => {
  const { endpoint, server } = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial');
  });
  try {
    const l = lookup(endpoint);
    // Only once the headers are in does this test the body read (not the request) being under the timeout.
    await until('the token call\'s response headers', async () => (l.answered.length === 1 ? true : undefined));
    assert.deepEqual(l.answered, ['PUT 200']);
    assert.deepEqual(l.clock.pendingTimers(), [1000], 'headers do not stop the clock');
    l.clock.advance(999);
    await settle();
    assert.equal(l.settled(), false);
    l.clock.advance(1);
    assert.equal(await l.result, undefined);
  } finally {
    await close(server);
  }
});
