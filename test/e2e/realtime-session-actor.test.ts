/**
 * The session actor and session history on the real stack: a gateway and actor-host processes on the test run's
 * Kafka and ClickHouse (pipeline harness), the session events published to realtime.events as the gateway and the
 * streaming engine publish them. Checks: the snapshot in sessions.state, the realtime_sessions row, the transcript in
 * the artifact store, the audit rows; an actor host SIGKILLed mid-session and the session finished by another host
 * with no final lost or doubled; the end grace (interrupted); the history routes (list, get, transcript, audio,
 * delete 409 → 204 → 404, audited); enhance_on_end → a completed batch job linked both ways.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sessionArtifactKeys } from '../../actors/session-artifacts.js';
import { enhanceJobIdFor } from '../../actors/session-transition.js';
import { silentLogger } from '../../core/logger.js';
import { FsArtifactStore, type ArtifactStore } from '../../storage/index.js';
import {
  REALTIME_EVENTS, SCHEMA_VERSION, SESSION_STATE, StreamConsumer, StreamProducer, checkSessionStateMessage, decodeMessage, encodeMessage,
  newMessageHeaders, prefixed, type RealtimeEvent, type RealtimeSessionConfig, type RealtimeSessionState,
} from '../../streams/index.js';
import { synthesizeFile } from '../../harness/speech-fixtures.js';
import { TERMINAL, startHarness, type Harness } from '../../harness/pipeline-harness.js';

let h: Harness;
let store: ArtifactStore;
const snapshots = new Map<string, RealtimeSessionState | null>();
/** When the test's reader first saw a snapshot of `<session>#<finals>` (epoch ms): a diagnostic of final → durable. */
const firstSeen = new Map<string, number>();
let tail: StreamConsumer<{ key: string | null; state: RealtimeSessionState | null }> | undefined;
const producer = { send: async (_ev: RealtimeEvent): Promise<void> => undefined };

const GRACE_SECONDS = 3;
let disconnect = async (): Promise<void> => undefined;

before(async () => {
  h = await startHarness({ name: 'rtsession', env: { DALSTON_REALTIME_END_GRACE_SECONDS: String(GRACE_SECONDS) } });
  store = new FsArtifactStore(join(process.env['DALSTON_HOME'] ?? join(process.cwd(), '.dalston'), 'artifacts'));
  const kp = new StreamProducer({ kafka: h.kafka, log: silentLogger });
  await kp.connect();
  producer.send = async (ev) => {
    await kp.send(prefixed(h.prefix, REALTIME_EVENTS.name), { key: ev.sessionId, value: encodeMessage(ev), headers: newMessageHeaders({ requestId: `req_${ev.sessionId}`, tenantId: 'default' }) });
  };
  disconnect = () => kp.close();
  // Reads sessions.state like the streaming engine does: the latest record per session id (null: tombstoned).
  tail = new StreamConsumer({
    kafka: h.kafka, groupId: `${h.prefix}test-tail-${randomBytes(3).toString('hex')}`, topics: [prefixed(h.prefix, SESSION_STATE.name)],
    decode: (value) => {
      const msg = decodeMessage(checkSessionStateMessage, value);
      return { key: msg.type === 'rt.session.snapshot' ? msg.state.sessionId : null, state: msg.type === 'rt.session.snapshot' ? msg.state : null };
    },
    onTombstone: (key) => ({ key, state: null }),
    handler: async (m) => {
      if (m.value.key !== null) snapshots.set(m.value.key, m.value.state);
      const state = m.value.state;
      if (state && !firstSeen.has(`${state.sessionId}#${state.finals.length}`)) firstSeen.set(`${state.sessionId}#${state.finals.length}`, Date.now());
    },
    // Every sessions.state record decodes (the codec is the actors'): nothing to dead-letter in this reader.
    deadLetter: { write: async (record) => { throw new Error(`sessions.state record not decodable: ${JSON.stringify(record).slice(0, 200)}`); } },
    log: silentLogger, fromBeginning: true, commitOffsets: false, maxWaitTimeMs: 100,
  });
  await tail.start();
});

after(async () => {
  await disconnect();
  await tail?.close();
  await h?.stop();
});

const config: RealtimeSessionConfig = {
  model: 'moonshine-tiny', commitStrategy: 'vad', partials: true, retention: true, enhanceOnEnd: false, inputFormat: 'pcm_s16le/16000/1', dialect: 'native',
};
const newSessionId = (): string => `sess_TEST${randomBytes(11).toString('hex').toUpperCase()}`;

function opened(sessionId: string, cfg: RealtimeSessionConfig = config, startedAt = Date.now()): RealtimeEvent {
  return {
    v: SCHEMA_VERSION, type: 'rt.session.opened', sessionId, tenantId: 'default', keyId: 'test', requestId: `req_${sessionId}`, gatewayId: 'gw-test',
    replyTopic: 'realtime.replies.gw-test', config: cfg, startedAt,
  };
}
function fin(sessionId: string, utterance: number, text = `words of utterance ${utterance}`): RealtimeEvent {
  return {
    v: SCHEMA_VERSION, type: 'rt.utterance.final', sessionId,
    final: { utterance, text, start: utterance * 2, end: utterance * 2 + 1.5, reason: 'pause', words: text.split(' ').map((w, i) => ({ text: w, start: utterance * 2 + i * 0.3, end: utterance * 2 + i * 0.3 + 0.25 })) },
    checkpoint: { version: 1, audioOffsetSamples: Math.round((utterance * 2 + 1.5) * 16000), nextUtterance: utterance + 1, finalizedCount: utterance + 1 },
    partition: 0, resumeOffset: String(utterance * 10), engineInstance: 'rt-test', at: Date.now(),
  };
}
const ended = (sessionId: string, audioSeconds: number): RealtimeEvent => ({
  v: SCHEMA_VERSION, type: 'rt.session.ended', sessionId, audioSeconds, engineInstance: 'rt-test', at: Date.now(),
  checkpoint: { version: 1, audioOffsetSamples: Math.round(audioSeconds * 16000), nextUtterance: 99, finalizedCount: 99 },
});
const closed = (sessionId: string, audioSeconds: number, audioKey?: string): RealtimeEvent => ({
  v: SCHEMA_VERSION, type: 'rt.session.closed', sessionId, closeCode: 1000, reason: 'client closed', audioSeconds, at: Date.now(),
  ...(audioKey ? { audioKey } : {}), latency: { firstPartialP50Ms: 110, firstPartialP95Ms: 240, finalP50Ms: 300, finalP95Ms: 650 },
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

interface SessionBody {
  id: string; status: string; utterances: number; audio_seconds: number; close_code: number | null; enhance_job_id: string | null;
  transcript_available: boolean; audio_available: boolean; model: string; latency: Record<string, number> | null;
}
async function getSession(id: string): Promise<{ status: number; body: SessionBody }> {
  const res = await h.api(`/v1/realtime/sessions/${id}`);
  return { status: res.status, body: (await res.json()) as SessionBody };
}
const sessionWith = (id: string, ok: (b: SessionBody) => boolean, timeoutMs = 60_000) => until(`session ${id}`, async () => {
  const r = await getSession(id);
  return r.status === 200 && ok(r.body) ? r.body : undefined;
}, timeoutMs);
async function auditCount(sessionId: string, eventType: string): Promise<number> {
  const rows = await h.clickhouse.client.query<{ n: number | string }>(
    `SELECT count() AS n FROM ${h.database}.audit_events WHERE session_id = '${sessionId}' AND event_type = '${eventType}'`,
  );
  return Number(rows[0]?.n ?? 0);
}
const auditLanded = (sessionId: string, eventType: string) => until(`${eventType} of ${sessionId}`, async () => ((await auditCount(sessionId, eventType)) > 0 ? true : undefined));

/** A 16 kHz mono s16le WAV of `seconds` of silence, as the gateway records one. */
function silentWav(seconds: number): Buffer {
  const data = Buffer.alloc(Math.round(seconds * 16000) * 2);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0); header.writeUInt32LE(36 + data.length, 4); header.write('WAVE', 8); header.write('fmt ', 12);
  header.writeUInt32LE(16, 16); header.writeUInt16LE(1, 20); header.writeUInt16LE(1, 22); header.writeUInt32LE(16000, 24);
  header.writeUInt32LE(32000, 28); header.writeUInt16LE(2, 32); header.writeUInt16LE(16, 34); header.write('data', 36); header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

const ids: Record<string, string> = {};

void test('a session end to end: snapshot per final, row, transcript and audit; repeated finals recorded once', async () => {
  const id = newSessionId();
  ids['done'] = id;
  const keys = sessionArtifactKeys(id);
  await producer.send(opened(id));
  await producer.send(fin(id, 0, 'hello there'));
  await producer.send(fin(id, 1, 'general kenobi'));
  await producer.send(fin(id, 1, 'general kenobi'));
  // Durable once in sessions.state: the engine restores from this snapshot.
  const live = await until('snapshot with two finals', async () => {
    const s = snapshots.get(id);
    return s && s.finals.length === 2 ? s : undefined;
  });
  assert.equal(live.status, 'active');
  assert.deepEqual(live.finals.map((f) => f.utterance), [0, 1]);
  const active = await sessionWith(id, (b) => b.status === 'active');
  assert.equal(active.model, 'moonshine-tiny');
  await store.put(keys.audio, silentWav(6), 'audio/wav');
  await producer.send(fin(id, 2, 'you are a bold one'));
  await producer.send(ended(id, 6));
  await producer.send(closed(id, 6, keys.audio));
  const body = await sessionWith(id, (b) => b.status === 'completed');
  assert.equal(body.utterances, 3);
  assert.equal(body.close_code, 1000);
  assert.equal(body.audio_seconds, 6);
  assert.deepEqual(body.latency, { first_partial_p50_ms: 110, first_partial_p95_ms: 240, final_p50_ms: 300, final_p95_ms: 650 });
  assert.equal(body.transcript_available, true);
  const snap = await until('final snapshot', async () => (snapshots.get(id)?.status === 'completed' ? snapshots.get(id) : undefined));
  assert.equal(snap?.transcriptKey, keys.transcript);
  const transcript = JSON.parse((await store.get(keys.transcript)).toString('utf8')) as { text: string; utterances: { utterance: number; words: unknown[] }[]; audio_seconds: number; model: string };
  assert.equal(transcript.text, 'hello there general kenobi you are a bold one');
  assert.deepEqual(transcript.utterances.map((u) => u.utterance), [0, 1, 2]);
  assert.equal(transcript.utterances[0]?.words.length, 2);
  assert.equal(transcript.model, 'moonshine-tiny');
  await auditLanded(id, 'realtime.session.completed');
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(await auditCount(id, 'realtime.session.completed'), 1);
  const rows = await h.clickhouse.client.query<{ status: string; utterances: number; dialect: string; transcript_key: string; audio_key: string }>(
    `SELECT argMax(status, version) AS status, argMax(utterances, version) AS utterances, argMax(dialect, version) AS dialect,
            argMax(transcript_key, version) AS transcript_key, argMax(audio_key, version) AS audio_key
     FROM ${h.database}.realtime_sessions WHERE session_id = '${id}' GROUP BY session_id`,
  );
  assert.deepEqual(rows.map((r) => ({ ...r, utterances: Number(r.utterances) })), [{ status: 'completed', utterances: 3, dialect: 'native', transcript_key: keys.transcript, audio_key: keys.audio }]);
});

void test('the gateway never reports: after the end grace the session is interrupted with what was recorded', async () => {
  const id = newSessionId();
  ids['interrupted'] = id;
  await producer.send(opened(id));
  await producer.send(fin(id, 0));
  await producer.send(ended(id, 2));
  const body = await sessionWith(id, (b) => b.status === 'interrupted', GRACE_SECONDS * 1000 + 30_000);
  assert.equal(body.utterances, 1);
  await auditLanded(id, 'realtime.session.completed');
});

void test('an actor host SIGKILLed mid-session: another host restores the session, no final lost or doubled', async (t) => {
  const id = newSessionId();
  await producer.send(opened(id));
  for (const u of [0, 1, 2]) await producer.send(fin(id, u));
  await until('snapshot with three finals', async () => ((snapshots.get(id)?.finals.length ?? 0) === 3 ? true : undefined));
  const host = h.services.find((s) => s.spec.name === 'actors-0');
  assert.ok(host);
  await host.kill();
  t.diagnostic('actor host SIGKILLed with a live session');
  // Events keep coming while no host owns the session: a repeated final, new finals, the end.
  await producer.send(fin(id, 2));
  await producer.send(fin(id, 3));
  await producer.send(fin(id, 4));
  await producer.send(fin(id, 3));
  const replacement = await h.start({ name: 'actors-1', kind: 'actors' });
  await producer.send(ended(id, 10));
  await producer.send(closed(id, 10));
  const body = await sessionWith(id, (b) => b.status === 'completed', 90_000);
  assert.equal(body.utterances, 5);
  const snap = snapshots.get(id);
  assert.deepEqual(snap?.finals.map((f) => f.utterance), [0, 1, 2, 3, 4]);
  const transcript = JSON.parse((await store.get(sessionArtifactKeys(id).transcript)).toString('utf8')) as { utterances: { utterance: number }[] };
  assert.deepEqual(transcript.utterances.map((u) => u.utterance), [0, 1, 2, 3, 4]);
  await auditLanded(id, 'realtime.session.completed');
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(await auditCount(id, 'realtime.session.completed'), 1);
  const log = await readFile(replacement.logFile, 'utf8');
  assert.ok(log.split('\n').some((l) => l.includes('sessions restored') && /"restored":[1-9]/.test(l)), 'the new host restored the live session from sessions.state');
});

void test('history routes: list with cursor and filters, get, transcript, audio; delete 409 while live, then 204, then 404, audited', async () => {
  const done = ids['done'];
  assert.ok(done);
  const liveId = newSessionId();
  await producer.send(opened(liveId));
  await sessionWith(liveId, (b) => b.status === 'active');

  const del409 = await h.api(`/v1/realtime/sessions/${liveId}`, { method: 'DELETE' });
  assert.equal(del409.status, 409);
  assert.equal(((await del409.json()) as { error: { code: string } }).error.code, 'session_active');
  const tr409 = await h.api(`/v1/realtime/sessions/${liveId}/transcript`);
  assert.equal(tr409.status, 409);

  const all = (await (await h.api('/v1/realtime/sessions?limit=100')).json()) as { sessions: SessionBody[]; next_cursor: string | null };
  assert.ok(all.sessions.length >= 4);
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page = (await (await h.api(`/v1/realtime/sessions?limit=2${cursor ? `&cursor=${cursor}` : ''}`)).json()) as { sessions: SessionBody[]; next_cursor: string | null };
    assert.ok(page.sessions.length <= 2);
    seen.push(...page.sessions.map((s) => s.id));
    cursor = page.next_cursor;
  } while (cursor);
  assert.deepEqual(seen, all.sessions.map((s) => s.id), 'pages in order, each session once');
  const active = (await (await h.api('/v1/realtime/sessions?status=active')).json()) as { sessions: SessionBody[] };
  assert.ok(active.sessions.some((s) => s.id === liveId));
  assert.ok(active.sessions.every((s) => s.status === 'active'));
  const none = (await (await h.api('/v1/realtime/sessions?model=no-such-model')).json()) as { sessions: SessionBody[] };
  assert.deepEqual(none.sessions, []);
  const future = (await (await h.api(`/v1/realtime/sessions?since=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`)).json()) as { sessions: SessionBody[] };
  assert.deepEqual(future.sessions, []);
  assert.equal((await h.api('/v1/realtime/sessions?status=bogus')).status, 400);
  assert.equal((await h.api('/v1/realtime/sessions', { headers: { authorization: 'Bearer wrong' } })).status, 401);

  const transcript = await h.api(`/v1/realtime/sessions/${done}/transcript`);
  assert.equal(transcript.status, 200);
  assert.equal(((await transcript.json()) as { text: string }).text, 'hello there general kenobi you are a bold one');
  const audio = await h.api(`/v1/realtime/sessions/${done}/audio`);
  assert.equal(audio.status, 200);
  assert.equal(audio.headers.get('content-type'), 'audio/wav');
  assert.equal(Buffer.from(await audio.arrayBuffer()).subarray(0, 4).toString('ascii'), 'RIFF');

  const del = await h.api(`/v1/realtime/sessions/${done}`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  assert.equal((await getSession(done)).status, 404);
  assert.equal((await h.api(`/v1/realtime/sessions/${done}/transcript`)).status, 404);
  assert.equal((await h.api(`/v1/realtime/sessions/${done}`, { method: 'DELETE' })).status, 404);
  assert.deepEqual(await store.list(sessionArtifactKeys(done).prefix), []);
  await auditLanded(done, 'realtime.session.deleted');
  await until('snapshot tombstoned', async () => (snapshots.get(done) === null ? true : undefined));
  const listed = (await (await h.api('/v1/realtime/sessions?limit=100')).json()) as { sessions: SessionBody[] };
  assert.ok(!listed.sessions.some((s) => s.id === done));
});

void test('enhance_on_end: the recording becomes a batch job, completed, linked both ways', async () => {
  const id = newSessionId();
  const keys = sessionArtifactKeys(id);
  await store.putFile(keys.audio, await synthesizeFile('go forward ten meters'), 'audio/wav');
  await producer.send(opened(id, { ...config, enhanceOnEnd: true }));
  await producer.send(fin(id, 0, 'go forward ten meters'));
  await producer.send(ended(id, 2));
  await producer.send(closed(id, 2, keys.audio));
  const body = await sessionWith(id, (b) => b.status === 'completed');
  const jobId = enhanceJobIdFor(id);
  assert.equal(body.enhance_job_id, jobId);
  const job = await h.waitFor(jobId, (j) => TERMINAL.has(j.status), 120_000);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  assert.ok((job.text ?? '').length > 0);
  const params = await h.clickhouse.client.query<{ p: string }>(
    `SELECT argMax(params_json, version) AS p FROM ${h.database}.jobs WHERE job_id = '${jobId}' GROUP BY job_id`,
  );
  assert.equal((JSON.parse(params[0]?.p ?? '{}') as { sessionId?: string }).sessionId, id, 'the job names its session');
});

void test('diagnostic: time from a final on realtime.events to its snapshot in sessions.state', async (t) => {
  const id = newSessionId();
  await producer.send(opened(id));
  const ms: number[] = [];
  for (let u = 0; u < 30; u++) {
    const sent = Date.now();
    await producer.send(fin(id, u));
    await until(`snapshot with ${u + 1} finals`, async () => (firstSeen.has(`${id}#${u + 1}`) ? true : undefined));
    ms.push((firstSeen.get(`${id}#${u + 1}`) ?? sent) - sent);
  }
  ms.sort((a, b) => a - b);
  const q = (p: number): number => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] ?? 0;
  t.diagnostic(`final → snapshot visible to a sessions.state reader, 30 finals: p50 ${q(0.5)} ms, p95 ${q(0.95)} ms, max ${q(1)} ms`);
  assert.equal(snapshots.get(id)?.finals.length, 30);
});
