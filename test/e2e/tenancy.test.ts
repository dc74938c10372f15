/**
 * Keys, scopes and tenant isolation on the real stack (issue 10, must-shows 1, 2 and the stored-hash half of 5).
 * The authorisation matrix is generated from gateway/route-access.ts: every route it names (HTTP, the four
 * real-time WebSocket dialects, the Kafka ingress) is called with no key, an unknown key, an expired key, a
 * revoked key, a key lacking the route's scope, another tenant's key, and the right key, and each answer must be
 * what the README documents. A second gateway process shows a revocation holding everywhere within 2 s, and the
 * `auth.keys` topic is read to show only a salted hash is stored.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import WebSocket from 'ws';
import { ROUTE_ACCESS, type RouteAccess } from '../../gateway/route-access.js';
import { API_KEYS, DEAD_LETTER, JOB_REQUESTS, JOB_RESULTS, JOB_STATE, SCOPES, SESSION_STATE, TENANT_USAGE, checkJobResult, decodeMessage, prefixed, requestHeaders, type Scope } from '../../streams/index.js';
import { ESPEAK_SENTENCES, synthesizeFile } from '../../harness/speech-fixtures.js';
import { readWav } from '../../harness/wav.js';
import { streamNative } from '../../harness/realtime-client.js';
import { TERMINAL, startHarness, type Harness } from '../../harness/pipeline-harness.js';
import { TopicRecorder } from '../support/runtime-fixture.js';
import { join } from 'node:path';
import { FsArtifactStore, artifactKeys } from '../../storage/index.js';

interface IssuedKey {
  readonly id: string;
  readonly key: string;
  readonly tenant: string;
  readonly scopes: readonly Scope[];
}

const RATE_LIMIT = 20;
let h: Harness;
let gateway2: string;
let wav: string;
/** Keys of tenant `acme` by what they hold, and others. */
const keys: Record<string, IssuedKey> = {};
/** acme's resources the id routes are called on. */
const acme = { job: '', taskId: '', deleteJob: '', elevenDeleteJob: '', session: '', deleteSession: '', deleteKey: '', webhook: '', deleteWebhook: '' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(150);
  }
}

async function issue(name: string, body: Record<string, unknown>, as = h.apiKey): Promise<IssuedKey> {
  const res = await fetch(`${h.gatewayUrl}/v1/keys`, {
    method: 'POST', body: JSON.stringify({ name, ...body }), headers: { authorization: `Bearer ${as}`, 'content-type': 'application/json' },
  });
  const answer = (await res.json()) as { id: string; key: string; tenant: string; scopes: Scope[] };
  assert.equal(res.status, 201, JSON.stringify(answer));
  return { id: answer.id, key: answer.key, tenant: answer.tenant, scopes: answer.scopes };
}

const withKey = (key: string | undefined, headers: Record<string, string> = {}): Record<string, string> =>
  key === undefined ? headers : { ...headers, authorization: `Bearer ${key}` };

async function submitAs(key: string): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([await readFile(wav)]), 'speech.wav');
  form.append('language', 'en');
  const res = await fetch(`${h.gatewayUrl}/v1/audio/transcriptions`, { method: 'POST', body: form, headers: withKey(key) });
  const body = (await res.json()) as { id: string };
  assert.equal(res.status, 201, JSON.stringify(body));
  return body.id;
}

async function completed(jobId: string, key: string): Promise<{ stages: { task_id: string; stage: string }[] }> {
  return until(`job ${jobId} to end`, async () => {
    const res = await fetch(`${h.gatewayUrl}/v1/audio/transcriptions/${jobId}`, { headers: withKey(key) });
    if (res.status === 404) return undefined;
    const body = (await res.json()) as { status: string; stages: { task_id: string; stage: string }[] };
    return TERMINAL.has(body.status) ? body : undefined;
  });
}

/** A finished real-time session of `key`'s tenant, its history projected. */
async function sessionAs(key: string, readKey: string, query: Record<string, string> = {}): Promise<string> {
  const pcm = (await readWav(wav)).samples;
  const int16 = Int16Array.from(pcm, (s) => Math.max(-32768, Math.min(32767, Math.round(s * 32767))));
  let sessionId = '';
  const run = await streamNative(int16, {
    baseUrl: h.gatewayUrl.replace(/^http/, 'ws'), apiKey: key, speed: 4, query,
    onMessage: (m) => {
      if (m.message.type === 'session.begin' && typeof m.message['session_id'] === 'string') sessionId = m.message['session_id'];
    },
  });
  assert.equal(run.refused, false, run.httpBody);
  assert.notEqual(sessionId, '', `a session id among ${JSON.stringify(run.messages.map((m) => m.message.type))}`);
  await until(`session ${sessionId} in the history`, async () => {
    const res = await fetch(`${h.gatewayUrl}/v1/realtime/sessions/${sessionId}`, { headers: withKey(readKey) });
    if (res.status !== 200) return undefined;
    const body = (await res.json()) as { status: string };
    return body.status !== 'active' ? true : undefined;
  });
  return sessionId;
}

before(async () => {
  h = await startHarness({
    name: 'tenancy', realtimeEngines: 1,
    // The trace route needs the span store; spans go only there (no OTLP receiver in this test).
    env: {
      DALSTON_OTEL_ENABLED: 'true', DALSTON_OTEL_SPAN_STORE: 'clickhouse', OTEL_TRACES_EXPORTER: 'none', OTEL_BSP_SCHEDULE_DELAY: '200',
      // Only the tenant of the rate-limit test is limited.
      DALSTON_TENANT_LIMITS: `throttled:requests_per_minute=${RATE_LIMIT};single:concurrent_jobs=1,concurrent_sessions=1;metered:audio_hours_per_day=0.001`,
      DALSTON_PURGE_INTERVAL_SECONDS: '1',
      // The matrix registers webhook endpoints on loopback (nothing delivers to them: no webhook worker runs here).
      DALSTON_WEBHOOK_ALLOW_HOSTS: '127.0.0.1',
    },
  });
  gateway2 = `http://127.0.0.1:${(await h.start({ name: 'gateway-2', kind: 'gateway' })).spec.port}`;
  wav = await synthesizeFile(ESPEAK_SENTENCES[0] ?? '', { voice: 'en-us+klatt', padBefore: 0.3, padAfter: 0.5 });

  // acme: one key per scope (the "right key" of a route holds exactly the route's scope) and, per scope, one that
  // holds every other scope but it (the "lacking" key); an expired and a revoked admin key; globex: an admin key.
  for (const scope of SCOPES) {
    keys[scope] = await issue(`acme ${scope}`, { tenant: 'acme', scopes: [scope] });
    const others = SCOPES.filter((s) => s !== scope && s !== 'admin');
    keys[`not ${scope}`] = await issue(`acme all but ${scope}`, { tenant: 'acme', scopes: others });
  }
  keys['expired'] = await issue('acme expiring', { tenant: 'acme', scopes: ['admin'], expires_in_seconds: 1 });
  keys['revoked'] = await issue('acme revoked', { tenant: 'acme', scopes: ['admin'] });
  const revoked = await fetch(`${h.gatewayUrl}/v1/keys/${keys['revoked'].id}`, { method: 'DELETE', headers: withKey(h.apiKey) });
  assert.equal(revoked.status, 200);
  keys['globex'] = await issue('globex admin', { tenant: 'globex', scopes: ['admin'] });
  acme.deleteKey = (await issue('acme to delete', { tenant: 'acme', scopes: ['jobs:read'] })).id;
  const endpoint = async (): Promise<string> => {
    const res = await fetch(`${h.gatewayUrl}/v1/webhooks`, {
      method: 'POST', body: JSON.stringify({ url: 'http://127.0.0.1:9/acme' }), headers: { authorization: `Bearer ${keys['webhooks']?.key ?? ''}`, 'content-type': 'application/json' },
    });
    const body = (await res.json()) as { id: string };
    assert.equal(res.status, 201, JSON.stringify(body));
    return body.id;
  };
  acme.webhook = await endpoint();
  acme.deleteWebhook = await endpoint();

  const write = keys['jobs:write']?.key ?? '';
  const read = keys['jobs:read']?.key ?? '';
  acme.job = await submitAs(write);
  acme.deleteJob = await submitAs(write);
  acme.elevenDeleteJob = await submitAs(write);
  const done = await completed(acme.job, read);
  acme.taskId = done.stages[0]?.task_id ?? '';
  await completed(acme.deleteJob, read);
  await completed(acme.elevenDeleteJob, read);
  acme.session = await sessionAs(keys['realtime']?.key ?? '', read);
  acme.deleteSession = await sessionAs(keys['realtime']?.key ?? '', read);
  // The job's spans reach the span store in batches: the trace route must find them for the right key.
  await until('the job trace', async () => {
    const res = await fetch(`${h.gatewayUrl}/v1/audio/transcriptions/${acme.job}/trace`, { headers: withKey(read) });
    await res.body?.cancel();
    return res.status === 200 ? true : undefined;
  });
  await sleep(Math.max(0, 1100)); // the expiring key is past its second by now; this makes sure
});

after(async () => {
  await h?.stop();
});

interface Call {
  readonly status: number;
  readonly body: string;
}

/** The id a template's `:id` stands for: `acme`'s resource of that route family (a deletable one for DELETE). */
function concretePath(method: string, template: string): string {
  const family = template.startsWith('/v1/keys') ? 'key' : template.startsWith('/v1/realtime/sessions') ? 'session' : template.startsWith('/v1/webhooks') ? 'webhook' : 'job';
  const id = family === 'key' ? (method === 'DELETE' ? acme.deleteKey : keys['jobs:read']?.id ?? '')
    : family === 'webhook' ? (method === 'DELETE' ? acme.deleteWebhook : acme.webhook)
    : family === 'session' ? (method === 'DELETE' ? acme.deleteSession : acme.session)
      : method === 'DELETE' ? (template.includes('speech-to-text') ? acme.elevenDeleteJob : acme.deleteJob) : acme.job;
  return template.replace(':id', id).replace(':task_id', acme.taskId).replace(':format', 'srt').replace(':token_type', 'realtime_scribe')
    .replace(':delivery_id', 'msg_000000000000000000000000');
}

async function bodyFor(method: string, template: string): Promise<{ body?: Blob | FormData | string; headers?: Record<string, string> }> {
  if (method === 'PATCH') return { body: JSON.stringify({ name: 'renamed by the matrix' }), headers: { 'content-type': 'application/json' } };
  if (method !== 'POST') return {};
  const audio = new Blob([await readFile(wav)]);
  if (template === '/v1/webhooks') return { body: JSON.stringify({ url: 'http://127.0.0.1:9/matrix' }), headers: { 'content-type': 'application/json' } };
  if (template.endsWith('/rotate-secret') || template.endsWith('/retry')) return {};
  if (template === '/v1/keys') return { body: JSON.stringify({ name: 'made in the matrix', scopes: ['jobs:read'] }), headers: { 'content-type': 'application/json' } };
  if (template === '/v1/listen') return { body: audio, headers: { 'content-type': 'audio/wav' } };
  if (template === '/v1/realtime/transcription_sessions') return { body: JSON.stringify({ input_audio_format: 'pcm16' }), headers: { 'content-type': 'application/json' } };
  if (template === '/v1/realtime/tokens' || template.endsWith('/cancel') || template.includes('single-use-token')) return {};
  const form = new FormData();
  if (template === '/v1/speech-to-text') form.append('model_id', 'scribe_v1');
  // This stack runs no multilingual engine: an English-only model is refused on its merits, after authorisation.
  if (template === '/v1/audio/translations') form.append('model', 'pocketsphinx-en-us');
  form.append('file', audio, 'speech.wav');
  return { body: form };
}

/** The four real-time dialects, each with its own way of presenting a key. */
const DIALECTS: Readonly<Record<string, { query: string; header: (key: string) => Record<string, string> }>> = {
  '/v1/audio/transcriptions/stream': { query: 'encoding=pcm_s16le&sample_rate=16000', header: (k) => ({ authorization: `Bearer ${k}` }) },
  '/v1/realtime': { query: 'intent=transcription', header: (k) => ({ authorization: `Bearer ${k}` }) },
  '/v1/speech-to-text/realtime': { query: 'model_id=scribe_v1', header: (k) => ({ 'xi-api-key': k }) },
  '/v1/listen': { query: 'model=nova-3&encoding=linear16&sample_rate=16000', header: (k) => ({ authorization: `Token ${k}` }) },
};

/** A native upgrade with a query of the test's choosing. */
function callWebSocketWith(template: string, query: string, key: string): Promise<Call> {
  return openSocket(`${h.gatewayUrl.replace(/^http/, 'ws')}${template}?${query}`, { authorization: `Bearer ${key}` });
}

async function callWebSocket(template: string, key: string | undefined, base = h.gatewayUrl): Promise<Call> {
  const dialect = DIALECTS[template];
  assert.ok(dialect, `a client for ${template}`);
  return openSocket(`${base.replace(/^http/, 'ws')}${template}?${dialect.query}`, key === undefined ? {} : dialect.header(key));
}

/** 101 when the upgrade succeeds (the socket is closed at once), else the refusal's status and body. */
function openSocket(url: string, headers: Record<string, string>, protocols: string[] = []): Promise<Call> {
  const ws = new WebSocket(url, protocols, { headers });
  return new Promise<Call>((resolve, reject) => {
    ws.once('open', () => {
      ws.close(1000);
      resolve({ status: 101, body: '' });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', reject);
  });
}

/**
 * One call of a route. Only the right key's call carries the body: a refusal is answered before any body is read,
 * and the gateway then closes the connection rather than read an upload nobody wants, which a client still
 * sending sees as a failed request instead of the answer.
 */
async function call(method: string, template: string, key: string | undefined, withBody = false, base = h.gatewayUrl): Promise<Call> {
  if (method === 'GET' && template in DIALECTS) return callWebSocket(template, key, base);
  const { body, headers = {} } = withBody ? await bodyFor(method, template) : {};
  // A route that hangs fails with its name instead of holding up the suite.
  const res = await fetch(`${base}${concretePath(method, template)}`, { method, body: body ?? null, headers: withKey(key, headers), signal: AbortSignal.timeout(180_000) });
  return { status: res.status, body: await res.text() };
}

const ROUTES = Object.entries(ROUTE_ACCESS)
  .filter(([route, access]) => access !== 'public' && !route.startsWith('KAFKA '))
  .map(([route, access]) => {
    const [method = '', template = ''] = route.split(' ');
    return { method, template, access };
  });
// Deletions last: the other routes need the resources they act on.
ROUTES.sort((a, b) => Number(a.method === 'DELETE') - Number(b.method === 'DELETE'));

/** What a right key may get instead of a 2xx, and why (each still proves the route ran for the caller's tenant). */
const EXPECTED_OTHER: Readonly<Record<string, { status: number; why: string }>> = {
  'POST /v1/audio/transcriptions/:id/cancel': { status: 409, why: 'the job already completed' },
  'POST /v1/audio/translations': { status: 400, why: 'the model named is English-only' },
  'POST /v1/webhooks/:id/deliveries/:delivery_id/retry': { status: 404, why: 'no delivery was ever made to the endpoint: no webhook worker runs in this test' },
};

function rightKey(access: RouteAccess): IssuedKey {
  const k = keys[access === 'any' ? 'jobs:read' : access];
  assert.ok(k, access);
  return k;
}

void test('every route of the access table: no, unknown, expired or revoked key → 401; lacking the scope → 403; another tenant → 404; the right key → served', async () => {
  const unknown = `dk_${randomBytes(8).toString('hex')}_${randomBytes(32).toString('base64url')}`;
  const seen: string[] = [];
  for (const { method, template, access } of ROUTES) {
    const route = `${method} ${template}`;
    const expect = async (key: string | undefined, status: number, what: string, withBody = false) => {
      const got = await call(method, template, key, withBody);
      seen.push(`${route} ${what} → ${got.status}`);
      assert.equal(got.status, status, `${route} with ${what}: ${got.body.slice(0, 300)}`);
      if (status === 401 || status === 403) {
        assert.match(got.body, /"code":"(unauthorized|insufficient_scope)"/, `${route} ${what} answers the error shape`);
      }
    };
    await expect(undefined, 401, 'no key');
    await expect(unknown, 401, 'an unknown key');
    await expect(keys['expired']?.key, 401, 'an expired key');
    await expect(keys['revoked']?.key, 401, 'a revoked key');
    if (access !== 'any') await expect(keys[`not ${access}`]?.key, 403, `a key without ${access}`);
    // With the body the right key sends: the answer must be the tenant check's, not the body's.
    if (template.includes(':id')) await expect(keys['globex']?.key, 404, "another tenant's key", true);
    const right = await call(method, template, rightKey(access).key, true);
    seen.push(`${route} right key → ${right.status}`);
    const other = EXPECTED_OTHER[route];
    if (other) assert.equal(right.status, other.status, `${route} with the right key (${other.why}): ${right.body.slice(0, 300)}`);
    else assert.ok(right.status >= 200 && right.status < 300 || right.status === 101, `${route} with the right key: ${right.status} ${right.body.slice(0, 300)}`);
  }
  console.log(`authorisation matrix: ${seen.length} calls over ${ROUTES.length} routes\n  ${seen.join('\n  ')}`);
});

void test("tenant isolation: globex lists none of acme's jobs, sessions, keys or webhooks, and acme's data is untouched by globex's attempts", async () => {
  const globex = withKey(keys['globex']?.key);
  const jobs = (await (await fetch(`${h.gatewayUrl}/v1/audio/transcriptions?limit=100`, { headers: globex })).json()) as { data: { id: string }[] };
  const sessions = (await (await fetch(`${h.gatewayUrl}/v1/realtime/sessions?limit=100`, { headers: globex })).json()) as { sessions: { id: string }[] };
  const theirKeys = (await (await fetch(`${h.gatewayUrl}/v1/keys`, { headers: globex })).json()) as { data: { id: string; tenant: string }[] };
  const theirHooks = (await (await fetch(`${h.gatewayUrl}/v1/webhooks`, { headers: globex })).json()) as { data: { id: string; tenant: string }[] };
  assert.equal(theirHooks.data.some((w) => w.id === acme.webhook), false, "globex lists none of acme's webhooks");
  assert.equal((await fetch(`${h.gatewayUrl}/v1/webhooks/${acme.webhook}/deliveries`, { headers: globex })).status, 404);
  assert.equal(jobs.data.some((j) => j.id === acme.job), false);
  assert.equal(sessions.sessions.some((s) => s.id === acme.session), false);
  const ours = (await (await fetch(`${h.gatewayUrl}/v1/realtime/sessions?limit=100`, { headers: withKey(keys['jobs:read']?.key) })).json()) as { sessions: { id: string }[] };
  assert.ok(ours.sessions.some((s) => s.id === acme.session), 'acme lists its session');
  assert.deepEqual([...new Set(theirKeys.data.map((k) => k.tenant))], ['globex']);
  // acme sees its own.
  const read = withKey(keys['jobs:read']?.key);
  const mine = (await (await fetch(`${h.gatewayUrl}/v1/audio/transcriptions?limit=100`, { headers: read })).json()) as { data: { id: string }[] };
  assert.ok(mine.data.some((j) => j.id === acme.job));
  const job = (await (await fetch(`${h.gatewayUrl}/v1/audio/transcriptions/${acme.job}`, { headers: read })).json()) as { status: string };
  assert.equal(job.status, 'completed', "globex's cancel and delete attempts changed nothing");
  const session = await fetch(`${h.gatewayUrl}/v1/realtime/sessions/${acme.session}/transcript`, { headers: read });
  assert.equal(session.status, 200);
});

void test('a key revoked through one gateway is refused by the other within 2 s; a key created on one works on the other', async () => {
  const k = await issue('acme short-lived', { tenant: 'acme', scopes: ['jobs:read'] });
  const onSecond = await until('the new key on gateway 2', async () => {
    const res = await fetch(`${gateway2}/v1/audio/transcriptions?limit=1`, { headers: withKey(k.key) });
    await res.body?.cancel();
    return res.status === 200 ? true : undefined;
  }, 5000);
  assert.equal(onSecond, true);
  const revokedAt = Date.now();
  const res = await fetch(`${h.gatewayUrl}/v1/keys/${k.id}`, { method: 'DELETE', headers: withKey(keys['admin']?.key) });
  assert.equal(res.status, 200);
  let refusedAfter = -1;
  while (Date.now() - revokedAt < 10_000) {
    const r = await fetch(`${gateway2}/v1/audio/transcriptions?limit=1`, { headers: withKey(k.key) });
    await r.body?.cancel();
    if (r.status === 401) {
      refusedAfter = Date.now() - revokedAt;
      break;
    }
    await sleep(20);
  }
  console.log(`revocation: refused by the second gateway ${refusedAfter} ms after the DELETE was sent`);
  assert.ok(refusedAfter >= 0 && refusedAfter <= 2000, `refused within 2 s (took ${refusedAfter} ms)`);
  const ws = await callWebSocket('/v1/audio/transcriptions/stream', k.key, gateway2);
  assert.equal(ws.status, 401, 'the WebSocket upgrade too');
});

void test('Kafka ingress: unsigned, unknown, expired, revoked and under-scoped requests are dead-lettered with the reason; the right key queues a job in its own tenant', async () => {
  const results = new TopicRecorder(h.kafka, prefixed(h.prefix, JOB_RESULTS.name), (v) => ({ ...decodeMessage(checkJobResult, v) }));
  const deadLetters = new TopicRecorder(h.kafka, prefixed(h.prefix, DEAD_LETTER.name), (v) => JSON.parse(v.toString('utf8')) as Record<string, unknown>);
  await Promise.all([results.start(), deadLetters.start()]);
  const producer = h.kafka.producer();
  await producer.connect();
  try {
    const audio = (await readFile(wav)).toString('base64');
    const request = (requestId: string) => Buffer.from(JSON.stringify({ v: 1, type: 'job.request', requestId, audio: { base64: audio, filename: 'speech.wav' }, params: { language: 'en' } }));
    const signed = (k: IssuedKey | undefined, value: Buffer) => requestHeaders(k?.key ?? '', k?.id ?? '', value);
    const unknownKey = `dk_${randomBytes(8).toString('hex')}_${randomBytes(32).toString('base64url')}`;
    const cases: [string, (value: Buffer) => Record<string, string>, RegExp][] = [
      ['unsigned', () => ({}), /unsigned request/],
      ['unknown key', (v) => requestHeaders(unknownKey, `key_${unknownKey.slice(3, 19)}`, v), /unauthorized: unknown dalston-key-id/],
      ['expired key', (v) => signed(keys['expired'], v), /unauthorized: API key key_[0-9a-f]+ expired/],
      ['revoked key', (v) => signed(keys['revoked'], v), /unauthorized: API key key_[0-9a-f]+ revoked/],
      ['a key without jobs:write', (v) => signed(keys['not jobs:write'], v), /insufficient_scope: this API key lacks the jobs:write scope/],
      ['a bad signature', (v) => ({ ...signed(keys['jobs:write'], v), 'dalston-signature': 'ab'.repeat(32) }), /unauthorized: signature does not match/],
    ];
    const ids = new Map<string, string>();
    for (const [name, headersOf] of cases) {
      const requestId = `req_${randomUUID()}`;
      ids.set(requestId, name);
      const value = request(requestId);
      await producer.send({ topic: prefixed(h.prefix, JOB_REQUESTS.name), messages: [{ key: requestId, value, headers: headersOf(value) }] });
    }
    const goodId = `req_${randomUUID()}`;
    const good = request(goodId);
    await producer.send({ topic: prefixed(h.prefix, JOB_REQUESTS.name), messages: [{ key: goodId, value: good, headers: signed(keys['jobs:write'], good) }] });

    const letters = await until('a dead letter per refused request', () => {
      const mine = deadLetters.values().filter((d) => {
        const payload = typeof d['payloadBase64'] === 'string' ? Buffer.from(d['payloadBase64'], 'base64').toString('utf8') : '';
        return [...ids.keys()].some((id) => payload.includes(id));
      });
      return mine.length >= cases.length ? mine : undefined;
    });
    for (const [name, , pattern] of cases) {
      const letter = letters.find((d) => Buffer.from(String(d['payloadBase64']), 'base64').toString('utf8').includes([...ids].find(([, n]) => n === name)?.[0] ?? '?'));
      assert.match(String((letter?.['error'] as { message?: string } | undefined)?.message), pattern, name);
    }
    assert.equal(letters.length, cases.length, 'each refusal dead-lettered once');
    const outcome = await until('the good request\'s outcome', () => results.values().find((o) => o['requestId'] === goodId));
    const jobId = String(outcome['jobId']);
    assert.equal((await fetch(`${h.gatewayUrl}/v1/audio/transcriptions/${jobId}`, { headers: withKey(keys['jobs:read']?.key) })).status, 200, 'the job is acme\'s');
    assert.equal((await fetch(`${h.gatewayUrl}/v1/audio/transcriptions/${jobId}`, { headers: withKey(keys['globex']?.key) })).status, 404, 'and not globex\'s');
  } finally {
    await producer.disconnect();
    await Promise.all([results.close(), deadLetters.close()]);
  }
});

void test('the key store (auth.keys) holds a salt and a hash per key, never the key or its secret', async () => {
  const recorder = new TopicRecorder(h.kafka, prefixed(h.prefix, API_KEYS.name), (v) => JSON.parse(v.toString('utf8')) as Record<string, unknown>);
  await recorder.start();
  try {
    const records = await until('every key record', () => {
      const all = recorder.values().filter((r) => r['type'] === 'api_key');
      return Object.values(keys).every((k) => all.some((r) => r['keyId'] === k.id)) ? all : undefined;
    }, 20_000);
    const raw = JSON.stringify(recorder.values());
    for (const k of Object.values(keys)) {
      const secret = k.key.split('_').slice(2).join('_');
      assert.equal(raw.includes(k.key), false, `${k.id}: the key is not stored`);
      assert.equal(raw.includes(secret), false, `${k.id}: nor its secret`);
      const record = records.find((r) => r['keyId'] === k.id);
      assert.match(String(record?.['hash']), /^[0-9a-f]{64}$/);
      assert.match(String(record?.['salt']), /^[0-9a-f]{32}$/);
      assert.equal(record?.['tenantId'], k.tenant);
    }
  } finally {
    await recorder.close();
  }
});

void test("single-use tokens in ElevenLabs' and OpenAI's shapes open one session each; a token is no API key, and one of a key revoked since is refused", async () => {
  const k = await issue('acme browser', { tenant: 'acme', scopes: ['realtime'] });
  const wsBase = h.gatewayUrl.replace(/^http/, 'ws');
  const el = await fetch(`${h.gatewayUrl}/v1/single-use-token/realtime_scribe`, { method: 'POST', headers: { 'xi-api-key': k.key } });
  const elBody = (await el.json()) as { token: string; tenant_id: string };
  assert.equal(el.status, 200, JSON.stringify(elBody));
  assert.equal(elBody.tenant_id, 'acme');
  const elUrl = `${wsBase}/v1/speech-to-text/realtime?model_id=scribe_v1&token=${encodeURIComponent(elBody.token)}`;
  assert.equal((await openSocket(elUrl, {})).status, 101, 'the token opens a session');
  assert.equal((await openSocket(elUrl, {})).status, 401, 'once');
  const bad = await fetch(`${h.gatewayUrl}/v1/single-use-token/tts_websocket`, { method: 'POST', headers: { 'xi-api-key': k.key } });
  assert.equal(bad.status, 400);

  const oa = await fetch(`${h.gatewayUrl}/v1/realtime/transcription_sessions`, {
    method: 'POST', headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' }, body: JSON.stringify({ input_audio_format: 'pcm16' }),
  });
  const session = (await oa.json()) as { client_secret: { value: string; expires_at: number }; input_audio_format: string };
  assert.equal(oa.status, 200, JSON.stringify(session));
  assert.equal(session.input_audio_format, 'pcm16');
  assert.ok(session.client_secret.expires_at > Date.now() / 1000);
  const secret = session.client_secret.value;
  const http = await fetch(`${h.gatewayUrl}/v1/realtime/sessions`, { headers: withKey(secret) });
  await http.body?.cancel();
  assert.equal(http.status, 401, 'a token is not an API key');
  const revoke = await fetch(`${h.gatewayUrl}/v1/keys/${k.id}`, { method: 'DELETE', headers: withKey(keys['admin']?.key) });
  assert.equal(revoke.status, 200);
  const after = await openSocket(`${wsBase}/v1/realtime?intent=transcription`, {}, ['realtime', `openai-insecure-api-key.${secret}`]);
  assert.equal(after.status, 401, 'the minting key was revoked');
  assert.match(after.body, /minted this token was revoked/);
});

void test('a per-minute request limit holds across two gateways: requests on one count on the other; both answer 429 with Retry-After', async (t) => {
  // Within one minute: a window that ends mid-test would start the count afresh.
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 30_000) await sleep(60_000 - intoMinute + 500);
  const k = await issue('throttled jobs', { tenant: 'throttled', scopes: ['jobs:read'] });
  const usage = new TopicRecorder(h.kafka, prefixed(h.prefix, TENANT_USAGE.name), (v) => JSON.parse(v.toString('utf8')) as Record<string, unknown>);
  await usage.start();
  t.after(() => usage.close());
  const get = async (base: string) => {
    const res = await fetch(`${base}/v1/audio/transcriptions?limit=1`, { headers: withKey(k.key) });
    await res.body?.cancel();
    return res;
  };
  const first = RATE_LIMIT - 5;
  for (let i = 0; i < first; i++) assert.equal((await get(h.gatewayUrl)).status, 200, `request ${i + 1} on gateway 1`);
  // Gateway 1 publishes its running total every 100 ms; once the total of 15 is in tenants.usage, gateway 2 reads it
  // within its tail's poll (100 ms; 2 s allows for a loaded runner).
  await until('gateway 1\'s count in tenants.usage', () => usage.values().some((r) => r['tenantId'] === 'throttled' && r['count'] === first) ? true : undefined, 20_000);
  await sleep(2000);
  const onSecond: number[] = [];
  for (let i = 0; i < 10; i++) onSecond.push((await get(gateway2)).status);
  console.log(`rate limit ${RATE_LIMIT}/min: ${first} on gateway 1, then gateway 2 answered ${onSecond.join(',')}`);
  assert.deepEqual(onSecond, [200, 200, 200, 200, 200, 429, 429, 429, 429, 429], 'gateway 2 allowed only what gateway 1 left');
  const refused2 = await get(gateway2);
  await sleep(1000);
  const refused1 = await get(h.gatewayUrl);
  for (const [name, r] of [['gateway 2', refused2], ['gateway 1', refused1]] as const) {
    assert.equal(r.status, 429, name);
    const retry = Number(r.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 60, `${name} Retry-After ${retry}`);
    assert.equal(r.headers.get('x-ratelimit-limit'), String(RATE_LIMIT));
  }
  // Another tenant is not limited by this one.
  const other = await fetch(`${h.gatewayUrl}/v1/audio/transcriptions?limit=1`, { headers: withKey(keys['jobs:read']?.key) });
  await other.body?.cancel();
  assert.equal(other.status, 200);
});

/** Opens a native session; resolves with the socket once open, or with the close code if the server closes it first. */
function nativeSession(base: string, key: string): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/audio/transcriptions/stream?encoding=pcm_s16le&sample_rate=16000`, { headers: { authorization: `Bearer ${key}` } });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode ?? 0}`)));
    ws.once('error', reject);
  });
}

/** The close code a session gets within `ms` (undefined when it stays open). */
async function closedWithin(closed: Promise<{ code: number; reason: string }>, ms: number): Promise<{ code: number; reason: string } | undefined> {
  return Promise.race([closed, sleep(ms).then(() => undefined)]);
}

void test('concurrency limits hold across two gateways: one job and one session at a time for the tenant, the loser told 429 (or 4429) with Retry-After; a slot frees when its job or session ends', async () => {
  const k = await issue('single', { tenant: 'single', scopes: ['jobs:write', 'jobs:read', 'realtime'] });
  const form = async () => {
    const f = new FormData();
    f.append('file', new Blob([await readFile(wav)]), 'speech.wav');
    return f;
  };
  // Two submissions at the same moment, one per gateway: the log orders their claims, so exactly one is admitted.
  const [a, b] = await Promise.all([h.gatewayUrl, gateway2].map(async (base) => {
    const res = await fetch(`${base}/v1/audio/transcriptions`, { method: 'POST', body: await form(), headers: withKey(k.key) });
    return { status: res.status, retry: res.headers.get('retry-after'), body: (await res.json()) as { id?: string; error?: { code: string; message: string } } };
  }));
  const statuses = [a?.status, b?.status].sort();
  console.log(`concurrent_jobs=1: two simultaneous submissions on two gateways → ${a?.status}, ${b?.status}`);
  assert.deepEqual(statuses, [201, 429]);
  const loser = a?.status === 429 ? a : b;
  const winner = a?.status === 201 ? a : b;
  assert.equal(loser?.body.error?.code, 'rate_limited');
  assert.match(loser?.body.error?.message ?? '', /limit 1/);
  assert.ok(Number(loser?.retry) >= 1);
  await completed(winner?.body.id ?? '', k.key);
  const next = await until('a job admitted once the first ended', async () => {
    const res = await fetch(`${gateway2}/v1/audio/transcriptions`, { method: 'POST', body: await form(), headers: withKey(k.key) });
    const body = (await res.json()) as { id?: string };
    return res.status === 201 ? body.id : undefined;
  }, 30_000);
  await completed(next, k.key);

  // Sessions: one open on gateway 1; a second on gateway 2 is closed at once with 4429; once the first ends, another opens.
  const first = await nativeSession(h.gatewayUrl, k.key);
  assert.equal(await closedWithin(first.closed, 500), undefined, 'the first session stays open');
  const second = await nativeSession(gateway2, k.key);
  const refused = await closedWithin(second.closed, 5000);
  assert.equal(refused?.code, 4429, JSON.stringify(refused));
  assert.match(refused?.reason ?? '', /limit 1/);
  first.ws.send(JSON.stringify({ type: 'end' }));
  await closedWithin(first.closed, 30_000);
  const third = await until('a session admitted once the first ended', async () => {
    const s = await nativeSession(gateway2, k.key);
    if ((await closedWithin(s.closed, 1500)) === undefined) return s;
    await sleep(500);
    return undefined;
  }, 30_000);
  third.ws.close(1000);
});

void test('retention: a job kept for 3 s is purged by the worker (artifacts, rows, its jobs.state record) and audited; a job without retention stays', async () => {
  const store = new FsArtifactStore(join(process.env['DALSTON_HOME'] ?? join(process.cwd(), '.dalston'), 'artifacts'));
  const state = new TopicRecorder(h.kafka, prefixed(h.prefix, JOB_STATE.name), () => ({}));
  await state.start();
  try {
    const submit = async (retention?: string) => {
      const form = new FormData();
      form.append('file', new Blob([await readFile(wav)]), 'speech.wav');
      if (retention !== undefined) form.append('retention', retention);
      const res = await fetch(`${h.gatewayUrl}/v1/audio/transcriptions`, { method: 'POST', body: form, headers: withKey(keys['jobs:write']?.key) });
      const body = (await res.json()) as { id: string };
      assert.equal(res.status, 201, JSON.stringify(body));
      return body.id;
    };
    const bad = new FormData();
    bad.append('file', new Blob([await readFile(wav)]), 'speech.wav');
    bad.append('retention', 'forever');
    const refused = await fetch(`${h.gatewayUrl}/v1/audio/transcriptions`, { method: 'POST', body: bad, headers: withKey(keys['jobs:write']?.key) });
    assert.equal(refused.status, 400);
    const brief = await submit('3s');
    const none = await submit('none');
    const kept = await submit();
    const read = keys['jobs:read']?.key ?? '';
    await completed(brief, read);
    const endedAt = Date.now();
    assert.ok((await store.list(artifactKeys.jobPrefix(brief))).length > 0, 'the job has artifacts while it is kept');
    await completed(none, read);
    await completed(kept, read);
    await until('the brief job purged', async () => {
      const res = await fetch(`${h.gatewayUrl}/v1/audio/transcriptions/${brief}`, { headers: withKey(read) });
      await res.body?.cancel();
      return res.status === 404 ? true : undefined;
    }, 60_000);
    console.log(`retention 3s: purged ${Date.now() - endedAt} ms after the test saw the job complete`);
    assert.deepEqual(await store.list(artifactKeys.jobPrefix(brief)), [], 'its artifacts are gone');
    await until('the tombstone of its jobs.state record', () => (state.records.some((r) => r.key === brief && r.value === null) ? true : undefined), 30_000);
    const audits = await until('the purge audited', async () => {
      const rows = await h.clickhouse.client.query<{ event_type: string; details: string }>(
        `SELECT event_type, details FROM ${h.database}.audit_events WHERE job_id = '${brief}' AND event_type IN ('job.deleted', 'data.deleted')`,
      );
      return rows.length >= 2 ? rows : undefined;
    }, 30_000);
    for (const a of audits) assert.match(a.details, /"reason":"retention"/);
    const rows = await until('its rows gone (ClickHouse mutations)', async () => {
      const r = await h.clickhouse.client.query<{ n: number | string }>(`SELECT count() AS n FROM ${h.database}.jobs WHERE job_id = '${brief}' AND status != 'deleted'`);
      return Number(r[0]?.n ?? 1) === 0 ? true : undefined;
    }, 30_000);
    assert.equal(rows, true);
    // `none`: gone once its outcome has been delivered (a grace of 10 s after it ended).
    await until('the retention=none job purged', async () => {
      const res = await fetch(`${h.gatewayUrl}/v1/audio/transcriptions/${none}`, { headers: withKey(read) });
      await res.body?.cancel();
      return res.status === 404 ? true : undefined;
    }, 60_000);
    const still = await fetch(`${h.gatewayUrl}/v1/audio/transcriptions/${kept}`, { headers: withKey(read) });
    await still.body?.cancel();
    assert.equal(still.status, 200, 'a job without retention is kept');
  } finally {
    await state.close();
  }
});

void test('retention of real-time sessions: a session kept for 3 s is purged (artifacts, row, sessions.state record) and audited; one without a duration stays', async () => {
  const store = new FsArtifactStore(join(process.env['DALSTON_HOME'] ?? join(process.cwd(), '.dalston'), 'artifacts'));
  const state = new TopicRecorder(h.kafka, prefixed(h.prefix, SESSION_STATE.name), () => ({}));
  await state.start();
  try {
    const read = keys['jobs:read']?.key ?? '';
    const refused = await callWebSocketWith('/v1/audio/transcriptions/stream', 'encoding=pcm_s16le&sample_rate=16000&retention=forever', keys['realtime']?.key ?? '');
    assert.equal(refused.status, 400, 'a bad retention refuses the upgrade');
    const brief = await sessionAs(keys['realtime']?.key ?? '', read, { retention: '3s' });
    const endedAt = Date.now();
    const kept = await sessionAs(keys['realtime']?.key ?? '', read);
    await until('the brief session purged', async () => {
      const res = await fetch(`${h.gatewayUrl}/v1/realtime/sessions/${brief}`, { headers: withKey(read) });
      await res.body?.cancel();
      return res.status === 404 ? true : undefined;
    }, 60_000);
    console.log(`session retention 3s: purged ${Date.now() - endedAt} ms after the test saw the session in the history`);
    assert.deepEqual(await store.list(`sessions/${brief}/`), [], 'its audio and transcript are gone');
    await until('the tombstone of its sessions.state record', () => (state.records.some((r) => r.key === brief && r.value === null) ? true : undefined), 30_000);
    const audits = await until('the purge audited', async () => {
      const rows = await h.clickhouse.client.query<{ event_type: string; details: string }>(
        `SELECT event_type, details FROM ${h.database}.audit_events WHERE session_id = '${brief}' AND event_type IN ('realtime.session.deleted', 'data.deleted')`,
      );
      return rows.length >= 2 ? rows : undefined;
    }, 30_000);
    for (const a of audits) assert.match(a.details, /"reason":"retention"/);
    const still = await fetch(`${h.gatewayUrl}/v1/realtime/sessions/${kept}/transcript`, { headers: withKey(read) });
    await still.body?.cancel();
    assert.equal(still.status, 200, 'a session without a retention duration is kept');
  } finally {
    await state.close();
  }
});

void test('GET /v1/audit: a tenant admin reads its own trail (key events, refusals of its revoked key, its jobs), never another tenant\'s', async () => {
  interface AuditPage { data: { event_type: string; tenant: string; key_id: string | null; job_id: string | null; details: Record<string, unknown> }[]; next_cursor: string | null }
  const audit = async (key: string | undefined, query: string): Promise<AuditPage> => {
    const res = await fetch(`${h.gatewayUrl}/v1/audit?${query}`, { headers: withKey(key) });
    const body = (await res.json()) as AuditPage;
    assert.equal(res.status, 200, JSON.stringify(body));
    return body;
  };
  const admin = keys['admin']?.key;
  const denied = await until('acme\'s refusals in the audit trail', async () => {
    const page = await audit(admin, 'event_type=access.denied&limit=500');
    return page.data.some((e) => e.key_id === keys['revoked']?.id) ? page : undefined;
  }, 30_000);
  assert.ok(denied.data.every((e) => e.tenant === 'acme' && e.event_type === 'access.denied'));
  const revokedRefusal = denied.data.find((e) => e.key_id === keys['revoked']?.id);
  assert.equal(revokedRefusal?.details['reason'], 'API key revoked');
  assert.equal(typeof revokedRefusal?.details['source_address'], 'string');
  const created = await audit(admin, `event_type=api_key.created&limit=500`);
  assert.ok(created.data.some((e) => (e.details['key_id'] as string | undefined) === keys['jobs:read']?.id));
  const jobEvents = await audit(admin, `job_id=${acme.job}`);
  assert.ok(jobEvents.data.some((e) => e.event_type === 'job.created'));
  // Paging: two at a time reaches the same rows as one page.
  const first = await audit(admin, 'event_type=api_key.created&limit=2');
  assert.equal(first.data.length, 2);
  assert.ok(first.next_cursor);
  const second = await audit(admin, `event_type=api_key.created&limit=2&cursor=${first.next_cursor}`);
  assert.notDeepEqual(second.data.map((e) => e.details['key_id']), first.data.map((e) => e.details['key_id']));
  // globex sees none of it, whatever it asks.
  const theirs = await audit(keys['globex']?.key, 'tenant=acme&limit=500');
  assert.ok(theirs.data.every((e) => e.tenant === 'globex'), JSON.stringify(theirs.data.slice(0, 3)));
  assert.equal((await audit(keys['globex']?.key, `job_id=${acme.job}`)).data.length, 0);
  const bad = await fetch(`${h.gatewayUrl}/v1/audit?event_type=nope`, { headers: withKey(admin) });
  assert.equal(bad.status, 400);
});

void test('audio allowance: once a tenant\'s audio today reaches audio_hours_per_day (3.6 s here), new jobs get 429 and sessions 4429 until midnight UTC', async () => {
  // Within one UTC day: the allowance starts afresh at midnight.
  const intoDay = Date.now() % 86_400_000;
  if (intoDay > 86_400_000 - 180_000) await sleep(86_400_000 - intoDay + 1000);
  const k = await issue('metered', { tenant: 'metered', scopes: ['jobs:write', 'jobs:read', 'realtime'] });
  const submit = async () => {
    const form = new FormData();
    form.append('file', new Blob([await readFile(wav)]), 'speech.wav');
    const res = await fetch(`${h.gatewayUrl}/v1/audio/transcriptions`, { method: 'POST', body: form, headers: withKey(k.key) });
    return { status: res.status, retry: res.headers.get('retry-after'), body: (await res.json()) as { id?: string; error?: { message: string } } };
  };
  const first = await submit();
  assert.equal(first.status, 201, 'nothing used yet');
  const done = await completed(first.body.id ?? '', k.key) as unknown as { audio_duration_seconds: number };
  assert.ok(done.audio_duration_seconds > 3.6, `the first job used ${done.audio_duration_seconds} s`);
  const refused = await until('the allowance to be used up', async () => {
    const r = await submit();
    if (r.status === 201) {
      await completed(r.body.id ?? '', k.key);
      return undefined;
    }
    return r;
  }, 30_000);
  assert.equal(refused.status, 429);
  assert.match(refused.body.error?.message ?? '', /used its 0.001 hours of audio for today/);
  const untilMidnight = Math.ceil((86_400_000 - (Date.now() % 86_400_000)) / 1000);
  assert.ok(Math.abs(Number(refused.retry) - untilMidnight) <= 5, `Retry-After ${refused.retry} ≈ ${untilMidnight} s to midnight UTC`);
  const session = await nativeSession(gateway2, k.key);
  const closed = await closedWithin(session.closed, 5000);
  assert.equal(closed?.code, 4429);
  assert.match(closed?.reason ?? '', /hours of audio/);
});
