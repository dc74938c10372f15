import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpError } from './errors.js';
import { decodeCursor, encodeCursor, parseListQuery, sessionBody, type SessionView } from './realtime-sessions.js';

const q = (s: string): URLSearchParams => new URLSearchParams(s);
const rejects400 = (s: string): void => {
  assert.throws(() => parseListQuery(q(s)), (err: unknown) => err instanceof HttpError && err.status === 400, s);
};

void test('list query: defaults, filters and times as ISO 8601 or epoch ms', () => {
  assert.deepEqual(parseListQuery(q('')), { status: undefined, limit: 20, since: undefined, until: undefined, model: undefined, after: undefined });
  const f = parseListQuery(q('status=completed&since=2026-12-05T08:00:00Z&until=1796457600000&model=moonshine-tiny&limit=100'));
  assert.equal(f.status, 'completed');
  assert.equal(f.since, Date.UTC(2026, 11, 5, 8));
  assert.equal(f.until, 1796457600000);
  assert.equal(f.model, 'moonshine-tiny');
  assert.equal(f.limit, 100);
});

void test('list query: bad values answer 400 naming the parameter', () => {
  for (const s of ['status=done', 'limit=0', 'limit=101', 'limit=2.5', 'since=yesterday', 'cursor=%%%', 'colour=blue']) rejects400(s);
});

void test('a cursor round-trips, also with dots in the session id', () => {
  const c = { startedAt: 1796457600123, sessionId: 'sess_A.B' };
  assert.deepEqual(decodeCursor(encodeCursor(c)), c);
  assert.deepEqual(parseListQuery(q(`cursor=${encodeCursor(c)}`)).after, c);
});

void test('the session body: a live session offers no artifacts yet; an ended one says what it kept', () => {
  const base: SessionView = {
    sessionId: 'sess_1', tenantId: 't', keyId: 'k', status: 'active', model: 'moonshine-tiny', dialect: 'native', startedAt: Date.UTC(2026, 11, 5, 8),
    audioSeconds: 3, utterances: 1, retention: true, audioKey: 'sessions/sess_1/audio.wav', requestId: 'req_1',
  };
  const live = sessionBody(base);
  assert.equal(live['status'], 'active');
  assert.equal(live['audio_available'], false);
  assert.equal(live['ended_at'], null);
  assert.equal(live['latency'], null);
  const done = sessionBody({
    ...base, status: 'completed', endedAt: base.startedAt + 12_500, transcriptKey: 'sessions/sess_1/transcript.json', closeCode: 1000, enhanceJobId: 'job_1',
    latency: { firstPartialP50Ms: 1, firstPartialP95Ms: 2, finalP50Ms: 3, finalP95Ms: 4 },
  });
  assert.equal(done['duration_seconds'], 12.5);
  assert.equal(done['audio_available'], true);
  assert.equal(done['transcript_available'], true);
  assert.equal(done['started_at'], '2026-12-05T08:00:00.000Z');
  assert.equal(done['enhance_job_id'], 'job_1');
  assert.deepEqual(done['latency'], { first_partial_p50_ms: 1, first_partial_p95_ms: 2, final_p50_ms: 3, final_p95_ms: 4 });
});
