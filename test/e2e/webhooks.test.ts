/**
 * Webhooks on the real stack (issue 10, must-show 4): a receiver on loopback (allow-listed) that fails three times
 * and then answers 200 receives the event four times with one `webhook-id` and a signature the `standardwebhooks`
 * package verifies, and the delivery log shows the four attempts; the webhook worker SIGKILLed while deliveries are
 * pending loses none of them; private targets are refused at registration and again at delivery. Also: a job's own
 * `webhook_url` with metadata, `realtime.session.ended`, ElevenLabs `webhook=true`, secret rotation with overlap,
 * manual redelivery, and the audit trail of endpoint changes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { Webhook } from 'standardwebhooks';
import { ESPEAK_SENTENCES, synthesizeFile } from '../../harness/speech-fixtures.js';
import { readWav } from '../../harness/wav.js';
import { streamNative } from '../../harness/realtime-client.js';
import { startHarness, type Harness } from '../../harness/pipeline-harness.js';
import type { ServiceProcess } from '../../infra/service-launcher.js';
import { eventually } from '../support/runtime-fixture.js';

interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly at: number;
  readonly answered: number;
}
interface Payload {
  type: string;
  data: Record<string, unknown>;
}
interface Endpoint {
  id: string;
  secret: string;
  url: string;
}
interface Delivery {
  id: string;
  status: string;
  attempts: number;
  subject_id: string;
  attempt_log: { attempt: number; status: string; http_status: number | null; error: string | null }[];
}

let h: Harness;
let worker: ServiceProcess;
let receiver: Server;
let base = '';
let wav = '';
let admin = '';
const received: Received[] = [];
/** Per path: status codes to answer in turn (the last one repeats); default 200. */
const script = new Map<string, number[]>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 120_000): Promise<T> => eventually(probe, timeoutMs, what);

const auth = (key: string, extra: Record<string, string> = {}) => ({ authorization: `Bearer ${key}`, ...extra });

async function api<T>(path: string, init: { method?: string; body?: unknown; key?: string } = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(`${h.gatewayUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: auth(init.key ?? admin, init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function register(path: string, events: string[] = ['*'], host = '127.0.0.1'): Promise<Endpoint> {
  const url = `http://${host}:${(receiver.address() as AddressInfo).port}${path}`;
  const r = await api<{ id: string; secret: string; url: string }>('/v1/webhooks', { method: 'POST', body: { url, events, description: `receiver ${path}` } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return { id: r.body.id, secret: r.body.secret, url: r.body.url };
}

async function submit(fields: Record<string, string> = {}): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([await readFile(wav)]), 'speech.wav');
  form.append('language', 'en');
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  const res = await fetch(`${h.gatewayUrl}/v1/audio/transcriptions`, { method: 'POST', body: form, headers: auth(admin) });
  const body = (await res.json()) as { id: string };
  assert.equal(res.status, 201, JSON.stringify(body));
  return body.id;
}

const at = (path: string) => received.filter((r) => r.path === path);
const payloadOf = (r: Received) => JSON.parse(r.body) as Payload;
const forSubject = (path: string, id: string) => at(path).filter((r) => {
  const d = payloadOf(r).data;
  return d['transcription_id'] === id || d['session_id'] === id;
});

async function deliveries(endpoint: Endpoint): Promise<Delivery[]> {
  const r = await api<{ data: Delivery[] }>(`/v1/webhooks/${endpoint.id}/deliveries?limit=100`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.data;
}

function startWorker(name: string): Promise<ServiceProcess> {
  // The worker allows loopback 127.0.0.1 only; the gateways also allow 127.0.0.2 (see the delivery-time refusal test).
  return h.start({ name, kind: 'webhooks', env: { DALSTON_WEBHOOK_ALLOW_HOSTS: '127.0.0.1' } });
}

before(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const path = req.url ?? '';
      const codes = script.get(path);
      const answered = codes && codes.length > 0 ? (codes.length > 1 ? (codes.shift() as number) : (codes[0] as number)) : 200;
      received.push({ path, headers: req.headers, body, at: Date.now(), answered });
      res.writeHead(answered, { 'content-type': 'text/plain' }).end(answered >= 300 ? 'not now' : 'ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  h = await startHarness({
    name: 'webhooks', realtimeEngines: 1,
    env: {
      DALSTON_WEBHOOK_ALLOW_HOSTS: '127.0.0.1,127.0.0.2',
      // A short schedule so four attempts fit in a test: 0.4 s doubling, at most 2 s apart.
      DALSTON_WEBHOOK_RETRY_BASE_SECONDS: '0.4', DALSTON_WEBHOOK_RETRY_MAX_SECONDS: '2', DALSTON_WEBHOOK_TIMEOUT_SECONDS: '5',
    },
  });
  worker = await startWorker('webhooks-1');
  base = h.gatewayUrl;
  wav = await synthesizeFile(ESPEAK_SENTENCES[0] ?? '', { voice: 'en-us+klatt', padBefore: 0.3, padAfter: 0.5 });
  const key = await fetch(`${base}/v1/keys`, {
    method: 'POST', headers: auth(h.apiKey, { 'content-type': 'application/json' }),
    body: JSON.stringify({ tenant: 'acme', name: 'acme admin', scopes: ['admin'] }),
  });
  admin = ((await key.json()) as { key: string }).key;
  assert.equal(key.status, 201);
});

after(async () => {
  await h?.stop();
  receiver?.closeAllConnections();
  receiver?.close();
});

void test('a receiver that fails three times then succeeds gets the event four times, one webhook-id, each signature valid (standardwebhooks), all four attempts logged', async () => {
  const endpoint = await register('/flaky', ['transcription.completed']);
  assert.match(endpoint.secret, /^whsec_/);
  script.set('/flaky', [500, 502, 503, 200]);
  const jobId = await submit();
  const got = await until('four attempts at /flaky', () => (forSubject('/flaky', jobId).some((r) => r.answered === 200) ? forSubject('/flaky', jobId) : undefined));
  assert.deepEqual(got.map((r) => r.answered), [500, 502, 503, 200]);
  const ids = new Set(got.map((r) => r.headers['webhook-id']));
  assert.equal(ids.size, 1, `one webhook-id for every attempt: ${[...ids].join(', ')}`);
  const verifier = new Webhook(endpoint.secret);
  for (const r of got) {
    const verified = verifier.verify(r.body, r.headers as Record<string, string>) as Payload;
    assert.equal(verified.type, 'transcription.completed');
    assert.equal(verified.data['transcription_id'], jobId);
    assert.equal(verified.data['status'], 'completed');
  }
  assert.throws(() => new Webhook(`whsec_${Buffer.alloc(32, 7).toString('base64')}`).verify(got[0]?.body ?? '', got[0]?.headers as Record<string, string>));
  const gaps = got.slice(1).map((r, i) => r.at - (got[i]?.at ?? 0));
  console.log(`flaky receiver: attempts answered ${got.map((r) => r.answered).join(', ')}; gaps ${gaps.join(', ')} ms; webhook-id ${String([...ids][0])}`);
  // Back-off 0.4 s doubling with jitter (half to all): at least 0.2, 0.4 and 0.8 s.
  gaps.forEach((g, i) => assert.ok(g >= 200 * 2 ** i - 50, `gap ${i + 1} (${g} ms) follows the back-off`));
  const log = await until('the four attempts in the delivery log', async () => {
    const d = (await deliveries(endpoint)).find((x) => x.subject_id === jobId);
    return d?.status === 'delivered' ? d : undefined;
  }, 30_000);
  assert.equal(log.id, [...ids][0]);
  assert.deepEqual(log.attempt_log.map((a) => [a.attempt, a.status, a.http_status]), [[1, 'failed', 500], [2, 'failed', 502], [3, 'failed', 503], [4, 'delivered', 200]]);
  assert.match(log.attempt_log[0]?.error ?? '', /answered 500/);
});

void test('a job\'s own webhook_url gets the outcome with its metadata, signed with the tenant\'s job signing secret; a session end reaches subscribed endpoints', async () => {
  const secret = (await api<{ secret: string }>('/v1/webhooks/job-signing-secret')).body.secret;
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/own`;
  const jobId = await submit({ webhook_url: url, webhook_metadata: JSON.stringify({ order: 'A-17', priority: 2 }) });
  const [r] = await until('the job\'s own webhook', () => (forSubject('/own', jobId).length > 0 ? forSubject('/own', jobId) : undefined));
  assert.ok(r);
  const p = new Webhook(secret).verify(r.body, r.headers as Record<string, string>) as Payload;
  assert.deepEqual(p.data['webhook_metadata'], { order: 'A-17', priority: 2 });
  assert.equal(typeof p.data['audio_duration_seconds'], 'number');
  assert.equal('text' in p.data, false, 'no transcript text in a webhook');

  const sessions = await register('/sessions', ['realtime.session.ended']);
  const pcm = (await readWav(wav)).samples;
  const int16 = Int16Array.from(pcm, (s) => Math.max(-32768, Math.min(32767, Math.round(s * 32767))));
  let sessionId = '';
  const run = await streamNative(int16, {
    baseUrl: base.replace(/^http/, 'ws'), apiKey: admin, speed: 4,
    onMessage: (m) => {
      if (m.message.type === 'session.begin' && typeof m.message['session_id'] === 'string') sessionId = m.message['session_id'];
    },
  });
  assert.equal(run.refused, false, run.httpBody);
  const [s] = await until('realtime.session.ended', () => (forSubject('/sessions', sessionId).length > 0 ? forSubject('/sessions', sessionId) : undefined));
  assert.ok(s);
  const ended = new Webhook(sessions.secret).verify(s.body, s.headers as Record<string, string>) as Payload;
  assert.equal(ended.type, 'realtime.session.ended');
  assert.equal(ended.data['status'], 'completed');
  assert.ok(Number(ended.data['audio_duration_seconds']) > 1);
  assert.equal(at('/sessions').filter((x) => payloadOf(x).type !== 'realtime.session.ended').length, 0, 'only what it subscribed to');
});

void test('the webhook worker SIGKILLed with deliveries pending loses none: each is delivered after the restart with the webhook-id it had', async () => {
  await register('/down', ['transcription.completed']);
  script.set('/down', [503]);
  const jobs = [await submit(), await submit(), await submit()];
  // Every delivery has failed at least once and is waiting for its next attempt on the durable schedule.
  await until('a failed attempt of each job', () => (jobs.every((j) => forSubject('/down', j).length >= 1) ? true : undefined));
  const before = new Map(jobs.map((j) => [j, forSubject('/down', j)[0]?.headers['webhook-id']]));
  assert.ok(jobs.every((j) => !forSubject('/down', j).some((r) => r.answered === 200)), 'none delivered before the kill');
  await worker.kill();
  const killedAt = Date.now();
  console.log(`webhook worker SIGKILLed with ${jobs.length} deliveries pending (attempts so far: ${jobs.map((j) => forSubject('/down', j).length).join(', ')})`);
  script.set('/down', [200]);
  await sleep(1000);
  worker = await startWorker('webhooks-2');
  const delivered = await until('every pending delivery after the restart', () => (jobs.every((j) => forSubject('/down', j).some((r) => r.answered === 200)) ? true : undefined));
  assert.equal(delivered, true);
  for (const j of jobs) {
    const ok = forSubject('/down', j).filter((r) => r.answered === 200);
    assert.ok(ok[0] && ok[0].at > killedAt, 'delivered by the restarted worker');
    assert.equal(ok[0]?.headers['webhook-id'], before.get(j), 'the same webhook-id as before the kill');
  }
  console.log(`after the restart: ${jobs.length}/${jobs.length} delivered, ${Math.max(...jobs.map((j) => (forSubject('/down', j).find((r) => r.answered === 200)?.at ?? 0) - killedAt))} ms after the kill at most`);
});

void test('private targets: refused at registration (endpoints and webhook_url) and again at delivery, where the worker judges the address itself', async () => {
  for (const url of ['http://10.0.0.5/hook', 'http://169.254.169.254/latest/meta-data', 'http://[::1]:8080/x', 'http://192.168.1.1/cb']) {
    const r = await api<{ error: { code: string; message: string } }>('/v1/webhooks', { method: 'POST', body: { url } });
    assert.equal(r.status, 400, url);
    assert.equal(r.body.error.code, 'url_not_allowed', url);
  }
  const bad = await api<{ error: { code: string } }>('/v1/webhooks', { method: 'POST', body: { url: 'ftp://example.com/x' } });
  assert.equal(bad.body.error.code, 'invalid_url');
  const form = new FormData();
  form.append('file', new Blob([await readFile(wav)]), 'speech.wav');
  form.append('webhook_url', 'http://10.1.1.1/cb');
  const refused = await fetch(`${base}/v1/audio/transcriptions`, { method: 'POST', body: form, headers: auth(admin) });
  assert.equal(refused.status, 400);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'url_not_allowed');

  // 127.0.0.2 passes the gateways' check (allow-listed there) but not the worker's, as a name re-pointed at a
  // private address after registration would: the attempt is refused, logged, and not retried.
  const rebound = await register('/rebound', ['transcription.completed'], '127.0.0.2');
  const jobId = await submit();
  const d = await until('the refused delivery in the log', async () => (await deliveries(rebound)).find((x) => x.subject_id === jobId));
  assert.equal(d.status, 'refused');
  assert.equal(d.attempts, 1, 'a refusal is not retried');
  assert.match(d.attempt_log[0]?.error ?? '', /127\.0\.0\.2 .*not allow-listed/);
  assert.equal(at('/rebound').length, 0, 'nothing was sent');
});

void test('rotation keeps the old secret signing during the overlap; a manual redelivery resends with the same webhook-id; ElevenLabs webhook=true answers at once and delivers; changes are audited', async () => {
  const endpoint = await register('/rotating', ['transcription.completed']);
  const first = await submit();
  const [r1] = await until('the first delivery', () => (forSubject('/rotating', first).length > 0 ? forSubject('/rotating', first) : undefined));
  assert.ok(r1);
  const rotated = await api<{ secret: string; previous_secret_expires_at: string }>(`/v1/webhooks/${endpoint.id}/rotate-secret`, { method: 'POST' });
  assert.equal(rotated.status, 200);
  assert.notEqual(rotated.body.secret, endpoint.secret);
  assert.ok(Date.parse(rotated.body.previous_secret_expires_at) > Date.now());
  const delivery = await until('the delivery in the log', async () => (await deliveries(endpoint)).find((x) => x.subject_id === first && x.status === 'delivered'));
  const retried = await api<{ id: string; attempt: number }>(`/v1/webhooks/${endpoint.id}/deliveries/${delivery.id}/retry`, { method: 'POST' });
  assert.equal(retried.status, 202, JSON.stringify(retried.body));
  const again = await until('the redelivery', () => (forSubject('/rotating', first).length >= 2 ? forSubject('/rotating', first)[1] : undefined));
  assert.equal(again.headers['webhook-id'], r1.headers['webhook-id']);
  assert.equal(again.body, r1.body, 'the same body');
  for (const secret of [endpoint.secret, rotated.body.secret]) {
    assert.equal((new Webhook(secret).verify(again.body, again.headers as Record<string, string>) as Payload).data['transcription_id'], first);
  }
  const unknown = await api(`/v1/webhooks/${endpoint.id}/deliveries/msg_nosuchdelivery0000000/retry`, { method: 'POST' });
  assert.equal(unknown.status, 404);

  // ElevenLabs: only webhook=true jobs notify endpoints, and the answer does not wait for the transcript.
  const el = async (webhook: boolean) => {
    const form = new FormData();
    form.append('file', new Blob([await readFile(wav)]), 'speech.wav');
    form.append('model_id', 'scribe_v1');
    if (webhook) form.append('webhook', 'true');
    const res = await fetch(`${base}/v1/speech-to-text`, { method: 'POST', body: form, headers: { 'xi-api-key': admin } });
    const body = (await res.json()) as { transcription_id: string; text?: string; message?: string };
    assert.equal(res.status, 200, JSON.stringify(body));
    return body;
  };
  const sync = await el(false);
  assert.equal(typeof sync.text, 'string');
  const async = await el(true);
  assert.equal(async.text, undefined, 'answered before the transcript');
  assert.match(async.message ?? '', /webhook/);
  await until('the ElevenLabs webhook', () => (forSubject('/rotating', async.transcription_id).length > 0 ? true : undefined));
  assert.equal(forSubject('/rotating', sync.transcription_id).length, 0, 'a job without webhook=true notifies no endpoint');

  const patched = await api<{ enabled: boolean }>(`/v1/webhooks/${endpoint.id}`, { method: 'PATCH', body: { enabled: false } });
  assert.equal(patched.body.enabled, false);
  const deleted = await api<{ deleted: boolean }>(`/v1/webhooks/${endpoint.id}`, { method: 'DELETE' });
  assert.equal(deleted.body.deleted, true);
  assert.equal((await api(`/v1/webhooks/${endpoint.id}`)).status, 404);
  const audit = await until('the endpoint changes in the audit trail', async () => {
    const a = await api<{ data: { details: Record<string, unknown> }[] }>('/v1/audit?event_type=webhook.changed&limit=500');
    const mine = a.body.data.filter((e) => e.details['endpoint_id'] === endpoint.id).map((e) => String(e.details['action']));
    return mine.length >= 4 ? mine : undefined;
  }, 30_000);
  assert.deepEqual([...audit].sort(), ['created', 'deleted', 'secret_rotated', 'updated']);
});
