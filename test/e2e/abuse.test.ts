/**
 * Our own hostile probe of the running stack (issue 11): malformed HTTP at the socket level, path tricks, header
 * abuse, multipart abuse, lifecycle races on a real job, and unauthenticated large bodies, against the real gateway,
 * actor host and engines over the run's Kafka and ClickHouse. Every answer must be below 500 and, when it is an
 * error, the JSON envelope with X-Request-ID; requests uWebSockets.js cannot parse get no answer and a closed
 * connection. Afterwards the processes are healthy, the gateway counted no 5xx, and its memory stayed bounded.
 * Bounded: the probes run concurrently, the slowest waits out uWS's 10 s idle close of an unparseable request.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { synthesizeFile } from '../../harness/speech-fixtures.js';
import { parseMetrics } from '../../harness/metrics-scrape.js';
import { floodUpload, rawExchange, rawStatus } from '../support/raw-http.js';
import { TERMINAL, startHarness, type Harness } from '../../harness/pipeline-harness.js';

let h: Harness;
let speech: Buffer;
let rssBeforeKb = 0;

function gatewayPid(): number {
  const g = h.services.find((s) => s.spec.kind === 'gateway');
  assert.ok(g);
  return g.pid;
}

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
}

before(async () => {
  h = await startHarness({ name: 'abuse' });
  speech = await readFile(await synthesizeFile('the quick brown fox jumps over the lazy dog'));
  rssBeforeKb = await rssKb(gatewayPid());
});
after(async () => h.stop());

/** Asserts an HTTP answer is not a 5xx and, when an error, is the JSON envelope with X-Request-ID. */
async function assertClean(what: string, res: Response): Promise<void> {
  assert.ok(res.status < 500, `${what}: ${res.status}`);
  assert.ok(res.headers.get('x-request-id'), `${what}: X-Request-ID`);
  if (res.status >= 400) {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
    assert.equal(typeof body.error?.code, 'string', `${what}: error.code`);
    assert.equal(typeof body.error?.message, 'string', `${what}: error.message`);
  } else {
    await res.arrayBuffer();
  }
}

/** The same for a raw answer: no answer at all is allowed only when the server closed the connection. */
function assertCleanRaw(what: string, r: { text: string; closed: boolean }): void {
  const status = rawStatus(r.text);
  if (status === undefined) {
    assert.ok(r.closed, `${what}: no answer, so the connection must be closed`);
    return;
  }
  assert.ok(status < 500, `${what}: ${status}`);
  assert.match(r.text, /\r\nx-request-id: \S+/i, `${what}: X-Request-ID`);
  if (status >= 400) assert.match(r.text, /\{"error":\{"code":"[a-z_]+","message":/, `${what}: the JSON error envelope`);
}

void test('malformed HTTP at the socket level: every request is answered cleanly or its connection closed', { timeout: 60_000 }, async () => {
  const auth = `Authorization: Bearer ${h.apiKey}`;
  const probes: Record<string, string | Buffer> = {
    'garbage request line': 'GARBAGE\r\n\r\n',
    'HTTP/9.9': 'GET /health HTTP/9.9\r\nHost: x\r\n\r\n',
    'HTTP/0.9 style': 'GET /health\r\n\r\n',
    'a space in the path': 'GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n',
    'a NUL in a header': 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n',
    'a 1 MB header': `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(1_000_000)}\r\n\r\n`,
    '300 headers': `GET /health HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 300 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`,
    'Content-Length not a number': `POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n${auth}\r\nContent-Length: abc\r\n\r\n`,
    'Content-Length negative': `POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n${auth}\r\nContent-Length: -5\r\n\r\n`,
    'Content-Length and chunked': `POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n${auth}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    'a bad chunk size': `POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n${auth}\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n`,
    'an unknown method': 'PROPFIND /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n\r\n',
    'TRACE': `TRACE /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    'two Content-Length headers': `POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n${auth}\r\nContent-Length: 3\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd`,
    'two Authorization headers': `GET /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n${auth}\r\nAuthorization: Bearer x\r\nConnection: close\r\n\r\n`,
    'a body on GET': `GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`,
    'a half-sent request line': 'GET /heal',
  };
  const answers = await Promise.all(Object.entries(probes).map(async ([name, req]) => [name, await rawExchange(h.gatewayUrl, req, 25_000)] as const));
  for (const [name, r] of answers) assertCleanRaw(name, r);
  const trace = answers.find(([n]) => n === 'TRACE')?.[1];
  assert.equal(rawStatus(trace?.text ?? ''), 405);
  assert.equal(rawStatus(answers.find(([n]) => n === 'two Authorization headers')?.[1].text ?? ''), 400);
});

void test('path tricks: dot segments, backslashes, empty segments, encoded slashes, NUL, a 10 KB path', async () => {
  const auth = { authorization: `Bearer ${h.apiKey}` };
  // One trailing slash names the same resource.
  assertCleanRaw('/health/', await rawExchange(h.gatewayUrl, 'GET /health/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
  const paths = [
    '/./health', '/v1/audio/transcriptions/x/export/%2e%2e', '/v1\\audio\\transcriptions', '//evil.example/v1/audio/transcriptions',
    '/v1/audio/transcriptions/%2F..%2Fetc%2Fpasswd', '/v1/audio/transcriptions/%00', '/v1/audio/transcriptions/%zz', `/v1/audio/transcriptions/${'a'.repeat(10_000)}`,
    '/v1/audio/transcriptions/job_%F0%9F%92%A9/export/json', '/v1/audio/transcriptions?limit=-1', '/v1/audio/transcriptions?limit=99999999999999999999',
    '/v1/audio/transcriptions?status=%00', '/metrics/../v1/models', '/v1/models%2F', '/.env', '/v1/audio/transcriptions/..%5C..%5Cetc',
  ];
  for (const path of paths) {
    // Sent raw, so the client does not normalise the path first.
    const r = await rawExchange(h.gatewayUrl, `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth.authorization}\r\nConnection: close\r\n\r\n`);
    assertCleanRaw(path.slice(0, 80), r);
    assert.notEqual(rawStatus(r.text), 200, `${path.slice(0, 80)} must not be routed to a handler`);
  }
});

void test('header abuse: oversized and odd credentials, request ids, trace contexts, content types and ranges', async () => {
  const key = h.apiKey;
  const cases: [string, Record<string, string>][] = [
    ['an 8 KB bearer token', { authorization: `Bearer ${'k'.repeat(8192)}` }],
    ['a Basic credential', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
    ['a bearer with no key', { authorization: 'Bearer' }],
    ['a key of the right prefix', { authorization: 'Bearer dk_0000000000000000000000000000' }],
    ['an empty xi-api-key', { 'xi-api-key': '' }],
    ['a hostile X-Request-ID', { authorization: `Bearer ${key}`, 'x-request-id': '<script>alert(1)</script>'.repeat(40) }],
    ['a garbage traceparent', { authorization: `Bearer ${key}`, traceparent: '00-zz-yy-01' }],
    ['a huge tracestate', { authorization: `Bearer ${key}`, tracestate: `a=${'b'.repeat(5000)}` }],
    ['a bogus Accept', { authorization: `Bearer ${key}`, accept: 'application/x-nonsense;q=abc' }],
  ];
  for (const [what, headers] of cases) {
    const res = await fetch(`${h.gatewayUrl}/v1/audio/transcriptions?limit=1`, { headers });
    await assertClean(what, res);
    const rid = res.headers.get('x-request-id') ?? '';
    assert.ok(rid.length <= 128 && !/[<>]/.test(rid), `${what}: the request id is sanitised (${rid.slice(0, 40)})`);
  }
  // A submission whose Content-Type lies, and a Range that makes no sense.
  const lies = await fetch(`${h.gatewayUrl}/v1/audio/transcriptions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'multipart/form-data' }, body: speech });
  const liesStatus = lies.status;
  await assertClean('multipart without a boundary', lies);
  assert.ok(liesStatus === 400 || liesStatus === 415, `multipart without a boundary: ${liesStatus}`);
});

void test('multipart abuse: bad boundaries, unterminated bodies, many fields, hostile names, empty and repeated parts', async () => {
  const key = h.apiKey;
  const post = (body: string | Buffer, boundary = 'b') => fetch(`${h.gatewayUrl}/v1/audio/transcriptions`, {
    method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': `multipart/form-data; boundary=${boundary}` }, body,
  });
  const filePart = (name: string, filename: string, data: string | Buffer) => Buffer.concat([
    Buffer.from(`--b\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\nContent-Type: audio/wav\r\n\r\n`), Buffer.from(data), Buffer.from('\r\n'),
  ]);
  const field = (name: string, value: string) => `--b\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  const cases: [string, Promise<Response>][] = [
    ['a boundary that never appears', post(Buffer.concat([filePart('file', 'a.wav', speech), Buffer.from('--b--\r\n')]), 'other')],
    ['an unterminated body', post(filePart('file', 'a.wav', speech))],
    ['no parts at all', post('--b--\r\n')],
    ['1000 fields', post(`${Array.from({ length: 1000 }, (_, i) => field(`f${i}`, 'v')).join('')}--b--\r\n`)],
    ['a 10 KB field name', post(`${field('n'.repeat(10_000), 'v')}--b--\r\n`)],
    ['a path in the filename', post(Buffer.concat([filePart('file', '../../../../etc/passwd', speech), Buffer.from('--b--\r\n')]))],
    ['an empty file', post(Buffer.concat([filePart('file', 'a.wav', ''), Buffer.from('--b--\r\n')]))],
    ['two file parts', post(Buffer.concat([filePart('file', 'a.wav', speech), filePart('file', 'b.wav', speech), Buffer.from('--b--\r\n')]))],
    ['file as a text field', post(`${field('file', 'not a file')}--b--\r\n`)],
    ['a field sent twice', post(Buffer.concat([Buffer.from(field('language', 'en') + field('language', 'de')), filePart('file', 'a.wav', speech), Buffer.from('--b--\r\n')]))],
    ['a 100 KB field value', post(Buffer.concat([Buffer.from(field('language', 'x'.repeat(100_000))), filePart('file', 'a.wav', speech), Buffer.from('--b--\r\n')]))],
    ['not audio at all', post(Buffer.concat([filePart('file', 'a.wav', 'hello, this is text'), Buffer.from('--b--\r\n')]))],
  ];
  const jobs: string[] = [];
  for (const [what, pending] of cases) {
    const res = await pending;
    const clone = res.clone();
    await assertClean(what, res);
    if (res.status === 201) jobs.push(((await clone.json()) as { id: string }).id);
  }
  // Text that passes as an upload becomes a job that fails cleanly in prepare, with a message fit for a client.
  for (const id of jobs) {
    const job = await h.waitFor(id, (j) => TERMINAL.has(j.status), 60_000);
    assert.ok(job.status === 'failed' || job.status === 'completed', `${id}: ${job.status}`);
    if (job.error) assert.doesNotMatch(job.error.message, /0x[0-9a-f]{6,}|\/tmp\/|\/work\//, 'no heap addresses or server paths');
  }
});

void test('lifecycle races on a real job: concurrent delete, cancel, get and export answer below 500, and one delete wins', async () => {
  const first = await h.submit(await synthesizeFile('the quick brown fox jumps over the lazy dog'));
  assert.equal(first.status, 201);
  const id = first.body.id;
  // Racing a live job: cancels and reads interleave while it runs.
  const early = await Promise.all([
    h.api(`/v1/audio/transcriptions/${id}/cancel`, { method: 'POST' }), h.api(`/v1/audio/transcriptions/${id}`),
    h.api(`/v1/audio/transcriptions/${id}`, { method: 'DELETE' }), h.api(`/v1/audio/transcriptions/${id}/export/json`),
  ]);
  for (const res of early) await assertClean(`early ${res.url}`, res);
  await h.waitFor(id, (j) => TERMINAL.has(j.status), 60_000);

  const second = await h.submit(await synthesizeFile('the quick brown fox jumps over the lazy dog'));
  const done = await h.waitFor(second.body.id, (j) => TERMINAL.has(j.status), 60_000);
  assert.equal(done.status, 'completed', JSON.stringify(done.error));
  const p = `/v1/audio/transcriptions/${done.id}`;
  const racing = await Promise.all([
    ...Array.from({ length: 5 }, () => h.api(p, { method: 'DELETE' })),
    ...Array.from({ length: 5 }, () => h.api(p)),
    ...Array.from({ length: 3 }, () => h.api(`${p}/export/json`)),
    ...Array.from({ length: 2 }, () => h.api(`${p}/cancel`, { method: 'POST' })),
    h.api(`${p}/audio`), h.api(`${p}/export/srt`),
  ]);
  for (const res of racing) await assertClean(`race ${res.url}`, res);
  assert.equal(racing.slice(0, 5).filter((r) => r.status === 204).length, 1, 'exactly one DELETE wins');
  assert.equal((await h.api(p)).status, 404);
});

const FLOOD_BYTES = 500 * 1024 * 1024;
const unauthenticatedFlood = (expectContinue: boolean) => floodUpload(h.gatewayUrl, '/v1/audio/transcriptions', FLOOD_BYTES, expectContinue);

void test('unauthenticated large bodies are refused at once and not read', async () => {
  // As curl sends a large upload (Expect: 100-continue): the 401 arrives, the connection is closed.
  const curlLike = await unauthenticatedFlood(true);
  assert.equal(rawStatus(curlLike.text), 401);
  assert.match(curlLike.text, /\r\nConnection: close\r\n/i);
  assert.ok(curlLike.closed, 'the connection is closed');
  assert.ok(curlLike.written < FLOOD_BYTES, `the body was not read to its end (${curlLike.written} bytes written)`);
  // A client that streams without waiting: the server answers and closes at once (uWS shuts the socket down and
  // closes it so the client cannot keep sending); with its upload unread, TCP may reset the connection before the
  // client reads the 401. Either way the body is not read.
  const eager = await unauthenticatedFlood(false);
  assert.ok(eager.closed, 'the connection is closed');
  const status = rawStatus(eager.text);
  assert.ok(status === undefined || status === 401, `401 or a reset, got ${String(status)}`);
  assert.ok(eager.written < FLOOD_BYTES, `the body was not read to its end (${eager.written} bytes written)`);
});

void test('afterwards: every process is healthy, the gateway counted no 5xx, and its memory stayed bounded', async () => {
  for (const s of h.services) {
    assert.ok(s.running, `${s.spec.name} still runs`);
    assert.equal((await fetch(`http://127.0.0.1:${s.spec.port}/health`)).status, 200, `${s.spec.name} /health`);
  }
  assert.equal((await fetch(`${h.gatewayUrl}/ready`)).status, 200);
  const gateway = h.services.find((s) => s.spec.kind === 'gateway');
  assert.ok(gateway);
  const samples = parseMetrics(await (await fetch(`http://127.0.0.1:${gateway.spec.port}/metrics`)).text());
  const fivexx = samples.filter((s) => s.name === 'dalston_gateway_requests_total' && s.labels['status']?.startsWith('5') && s.value > 0);
  assert.deepEqual(fivexx.map((s) => s.labels), [], 'no request answered 5xx');
  const rss = await rssKb(gatewayPid());
  assert.ok(rss - rssBeforeKb < 300 * 1024, `gateway RSS grew ${Math.round((rss - rssBeforeKb) / 1024)} MiB (from ${Math.round(rssBeforeKb / 1024)} MiB)`);
  const errors = (await h.logLines()).filter((l) => l['level'] === 'error' && l['service'] === 'dalston-gateway');
  assert.deepEqual(errors.map((l) => l['msg']), [], 'the gateway logged no error');
});
