/**
 * What a production HTTP server must do and uWebSockets.js does differently from node:http, pinned on the real
 * gateway over real loopback sockets: HEAD, 100-continue, a streamed upload over the limit (413, reading stops),
 * a client leaving mid-upload (no temporary file, logged as 499), graceful close of an in-flight request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { TEST_API_KEY, eventually, makeWav, recordingLogger, startHarness } from './test-harness.js';
import { createUwsServer } from './uws-server.js';
import { silentLogger } from '../core/logger.js';
import { freePort } from '../infra/ports.js';

const UPLOAD = '/v1/audio/transcriptions';
const BOUNDARY = 'dalstontestboundary';
const partHead = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n`;
const partTail = `\r\n--${BOUNDARY}--\r\n`;

/** Retries an async assertion until it passes or `ms` elapse (`eventually` is for synchronous checks). */
async function until(check: () => Promise<void>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

function post(base: string, headers: Record<string, string | number> = {}): ClientRequest {
  return request(`${base}${UPLOAD}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, ...headers },
  });
}

function responseOf(req: ClientRequest): Promise<{ res: IncomingMessage; body: string }> {
  return new Promise((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ res, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

void test('issue 11 defect 9: HEAD is answered like GET without a body on GET routes (404 elsewhere, 405 naming the methods on others); the connection stays usable', async () => {
  const h = await startHarness();
  try {
    const head = await h.request('/health', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.match(head.headers.get('content-type') ?? '', /application\/json/);
    assert.match(head.headers.get('x-request-id') ?? '', /^req_/);
    assert.equal(await head.text(), '');
    const unknown = await h.request('/nowhere', { method: 'HEAD' });
    assert.equal(unknown.status, 404);
    assert.equal(await unknown.text(), '');
    const put = await h.request('/health', { method: 'PUT' });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get('allow'), 'GET, HEAD');
    const refused = await h.request('/v1/audio/transcriptions/job_1', { auth: false });
    assert.equal(refused.status, 401);
    assert.notEqual(refused.headers.get('connection'), 'close', 'an answer given at once to a bodiless request keeps the connection');
    const after = await h.request('/health');
    assert.deepEqual(await after.json(), { status: 'ok', pid: process.pid });
  } finally {
    await h.close();
  }
});

/** One raw request line over a socket, exactly as written (clients' URL parsing would rewrite these paths). */
function rawGet(base: string, path: string): Promise<{ status: number; body: string; head: string }> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), '127.0.0.1', () => s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_API_KEY}\r\nConnection: close\r\n\r\n`));
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (text += c));
    s.on('end', () => {
      const [head = '', body = ''] = text.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0), body, head });
    });
    s.on('error', reject);
  });
}

void test('issue 11 defects 1 and 8: health paths with a trailing slash answer; dot segments, backslashes and empty segments are a 400, never routed elsewhere', async () => {
  const h = await startHarness();
  try {
    for (const p of ['/health/', '/ready/', '/metrics/']) assert.equal((await rawGet(h.base, p)).status, 200, p);
    for (const p of ['/./health', '/v1/audio/transcriptions/job_1/export/%2e%2e', '/v1/audio/transcriptions/job_1/export/..', '/v1\\audio\\transcriptions\\job_1', '//evil.example/v1/audio/transcriptions/job_1']) {
      const r = await rawGet(h.base, p);
      assert.equal(r.status, 400, p);
      assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'invalid_request', p);
      assert.match(r.head, /x-request-id: req_/i, p);
    }
  } finally {
    await h.close();
  }
});

void test('an unread request body stops the socket being read (backpressure) and resumes when read', async () => {
  let startReading: () => void = () => undefined;
  const reading = new Promise<void>((r) => (startReading = r));
  const server = createUwsServer((req, res) => {
    void (async () => {
      await reading;
      let bytes = 0;
      for await (const chunk of req.body) bytes += (chunk as Buffer).length;
      res.send(200, { 'content-type': 'text/plain' }, String(bytes));
    })();
  }, { log: recordingLogger([]) });
  const port = await server.listen(0, '127.0.0.1');
  try {
    const offered = 256 * 1024 * 1024;
    const req = request(`http://127.0.0.1:${port}/sink`, { method: 'POST', headers: { 'content-length': offered } });
    const answered = responseOf(req);
    const chunk = Buffer.alloc(256 * 1024, 3);
    let written = 0;
    const writeAll = (async () => {
      while (written < offered) {
        written += chunk.length;
        if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    })();
    await new Promise((r) => setTimeout(r, 500));
    const whileUnread = written;
    assert.ok(whileUnread < offered / 8, `the client is held back while nothing reads (${whileUnread} bytes of ${offered} written)`);
    startReading();
    await writeAll;
    const { res, body } = await answered;
    assert.equal(res.statusCode, 200);
    assert.equal(Number(body), offered, 'every byte arrives once reading resumes');
  } finally {
    await server.close(100);
  }
});

void test('listen() on a port already taken rejects instead of sharing it', async () => {
  const h = await startHarness();
  const other = await startHarness();
  try {
    const port = Number(new URL(h.base).port);
    await assert.rejects(other.app.listen(port, '127.0.0.1'), /could not listen on 127\.0\.0\.1:\d+/);
  } finally {
    await other.close();
    await h.close();
  }
});

void test('a fixed port held by one server is refused to a second (no SO_REUSEPORT sharing between gateways)', async () => {
  const port = await freePort();
  const first = createUwsServer((_req, res) => res.send(200, {}, 'first'), { log: silentLogger });
  const second = createUwsServer((_req, res) => res.send(200, {}, 'second'), { log: silentLogger });
  try {
    assert.equal(await first.listen(port, '127.0.0.1'), port);
    await assert.rejects(second.listen(port, '127.0.0.1'), /could not listen on 127\.0\.0\.1:\d+ \(address in use/);
    for (let i = 0; i < 5; i++) assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'first', 'every connection reaches the server that owns the port');
  } finally {
    await second.close(100);
    await first.close(100);
  }
});

void test('Expect: 100-continue gets its interim answer and the upload then succeeds', async () => {
  const h = await startHarness();
  try {
    const wav = await readFile(await makeWav(h.dir, 1));
    const body = Buffer.concat([Buffer.from(partHead), wav, Buffer.from(partTail)]);
    const req = post(h.base, { expect: '100-continue', 'content-length': body.length });
    const answered = responseOf(req);
    await new Promise<void>((resolve) => req.on('continue', resolve));
    req.end(body);
    const { res, body: text } = await answered;
    assert.equal(res.statusCode, 201, text);
    assert.equal(h.publisher.created[0]?.msg.audio.bytes, wav.length);
  } finally {
    await h.close();
  }
});

void test('a streamed upload over the limit answers 413 and the server stops reading; nothing is left in the store', async () => {
  const limit = 256 * 1024;
  const h = await startHarness({ uploadMaxBytes: limit });
  try {
    // Chunked, so no Content-Length lets the gateway refuse up front: the limit must trip while streaming.
    const req = post(h.base);
    const answered = responseOf(req);
    const chunk = Buffer.alloc(64 * 1024, 7);
    const offered = 64 * 1024 * 1024;
    let written = 0;
    let stopped = false;
    req.on('error', () => (stopped = true));
    req.on('response', () => (stopped = true));
    req.write(partHead);
    while (!stopped && written < offered) {
      written += chunk.length;
      if (!req.write(chunk)) await Promise.race([new Promise((r) => req.once('drain', r)), new Promise((r) => setTimeout(r, 200))]);
    }
    const { res, body } = await answered;
    assert.equal(res.statusCode, 413);
    assert.equal(res.headers['connection'], 'close', 'the connection is not reused mid-body');
    assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, 'file_too_large');
    assert.match(String(res.headers['x-request-id']), /^req_/);
    assert.ok(written < offered / 4, `the client stopped early (${written} of ${offered} bytes written)`);
    req.destroy();
    await until(async () => assert.deepEqual(await h.storedFiles(), []));
    assert.deepEqual(await h.storedFiles(), [], 'no partial object is left');
    assert.equal(h.publisher.created.length, 0);
  } finally {
    await h.close();
  }
});

void test('an upload streams into the store as it arrives; a client leaving mid-upload leaves nothing there and is logged as 499', async () => {
  const h = await startHarness();
  try {
    const req = post(h.base, { 'content-length': 10 * 1024 * 1024, 'x-request-id': 'leaver' });
    req.on('error', () => undefined);
    req.write(partHead);
    req.write(Buffer.alloc(256 * 1024, 1));
    // The partial object under the job's audio key: the bytes are in the store before the body ends.
    await until(async () => assert.match((await h.storedFiles()).join(), /^jobs\/job_[0-9A-Z]+\/audio\/original\.wav\.[0-9a-f-]+\.tmp$/, 'the upload is being stored'));
    req.destroy();
    const line = await eventually(() => {
      const found = h.logs.find((l) => l.fields['request_id'] === 'leaver');
      assert.ok(found);
      return found;
    });
    assert.equal(line.fields['status'], 499);
    await until(async () => assert.deepEqual(await h.storedFiles(), []));
    assert.equal(h.publisher.created.length, 0);
  } finally {
    await h.close();
  }
});

void test('close(): an in-flight request finishes within the grace period; then the port is closed', async () => {
  let release: () => void = () => undefined;
  const slow = new Promise<void>((r) => (release = r));
  const h = await startHarness({ readinessChecks: { kafka: () => slow } });
  const inflight = h.request('/ready');
  await new Promise((r) => setTimeout(r, 50));
  // A long grace: close() must resolve when the request is done, long before it (a loaded machine only adds seconds).
  const closing = h.close(60_000);
  assert.equal(h.app.listening, false, 'stops accepting at once');
  let secondDone = false;
  const second = h.app.close(60_000).then(() => (secondDone = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(secondDone, false, 'a second close() waits for the same drain');
  setTimeout(release, 50);
  const res = await inflight;
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('connection'), 'close');
  assert.deepEqual(await res.json(), { status: 'ready', checks: { kafka: 'ok' } });
  const started = Date.now();
  await closing;
  await second;
  assert.ok(Date.now() - started < 30_000, 'close resolves once the request is done, not at the end of the 60 s grace');
  await assert.rejects(fetch(`${h.base}/health`), 'nothing listens any more');
});
