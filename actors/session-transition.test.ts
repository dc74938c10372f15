import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SCHEMA_VERSION, type RealtimeEvent, type RealtimeFinal, type RealtimeSessionConfig, type RealtimeSessionState,
} from '../streams/index.js';
import {
  enhanceJobIdFor, nextSessionWakeAt, sessionTransition, type SessionInput, type SessionSettings, type SessionTransitionResult,
} from './session-transition.js';
import { sessionTranscript } from './session-artifacts.js';

const settings: SessionSettings = { endGraceMs: 30_000, maxSessionMs: 3_600_000 };
const T0 = Date.UTC(2026, 11, 5, 8, 0, 0);
const SID = 'sess_01JTESTSESSION0000000000000';

const config: RealtimeSessionConfig = {
  model: 'moonshine-tiny', commitStrategy: 'vad', partials: true, retention: true, enhanceOnEnd: false, inputFormat: 'pcm_s16le/16000/1', dialect: 'native',
};

function opened(cfg: RealtimeSessionConfig = config): RealtimeEvent {
  return {
    v: SCHEMA_VERSION, type: 'rt.session.opened', sessionId: SID, tenantId: 't1', keyId: 'k1', requestId: 'req_1', gatewayId: 'gw-a',
    replyTopic: 'realtime.replies.gw-a', config: cfg, startedAt: T0, traceparent: '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01',
  };
}
function fin(utterance: number, text = `utterance ${utterance}`): RealtimeEvent {
  const final: RealtimeFinal = {
    utterance, text, start: utterance * 2, end: utterance * 2 + 1.5, reason: 'pause', words: [{ text, start: utterance * 2, end: utterance * 2 + 1.5 }],
  };
  return {
    v: SCHEMA_VERSION, type: 'rt.utterance.final', sessionId: SID, final, partition: 3, resumeOffset: String(100 + utterance),
    checkpoint: { version: 1, audioOffsetSamples: Math.round((utterance * 2 + 1.5) * 16000), nextUtterance: utterance + 1, finalizedCount: utterance + 1 },
    engineInstance: 'rt-1', at: T0 + 1000 * (utterance + 1),
  };
}
const ended = (audioSeconds = 10): RealtimeEvent => ({
  v: SCHEMA_VERSION, type: 'rt.session.ended', sessionId: SID, audioSeconds, engineInstance: 'rt-1', at: T0 + 20_000,
  checkpoint: { version: 1, audioOffsetSamples: audioSeconds * 16000, nextUtterance: 9, finalizedCount: 9 },
});
const closed = (audioKey?: string): RealtimeEvent => ({
  v: SCHEMA_VERSION, type: 'rt.session.closed', sessionId: SID, closeCode: 1000, reason: 'client closed', audioSeconds: 10.2,
  ...(audioKey ? { audioKey } : {}), at: T0 + 20_500, latency: { firstPartialP50Ms: 120, firstPartialP95Ms: 300, finalP50Ms: 250, finalP95Ms: 600 },
});
const deleted: RealtimeEvent = { v: SCHEMA_VERSION, type: 'rt.session.deleted', sessionId: SID, at: T0 + 99_000 };

/** Applies inputs in order at the given times, returning every result. */
function run(inputs: readonly (SessionInput | [SessionInput, number])[], start?: RealtimeSessionState): SessionTransitionResult[] {
  let state = start;
  const results: SessionTransitionResult[] = [];
  let now = T0;
  for (const item of inputs) {
    const [input, at] = Array.isArray(item) ? item : [item, now + 10];
    now = at;
    const r = sessionTransition(state, input, { now, settings });
    results.push(r);
    state = r.state;
  }
  return results;
}
const last = (rs: SessionTransitionResult[]): SessionTransitionResult => {
  const r = rs[rs.length - 1];
  assert.ok(r);
  return r;
};

void test('finals are recorded in utterance order, each index once; a repeat changes nothing', () => {
  const rs = run([opened(), fin(0), fin(2), fin(1), fin(1, 'a different text for the same index'), fin(2)]);
  const state = last(rs).state;
  assert.ok(state);
  assert.deepEqual(state.finals.map((f) => f.utterance), [0, 1, 2]);
  assert.equal(state.finals[1]?.text, 'utterance 1');
  assert.equal(rs[4]?.changed, false);
  assert.equal(rs[5]?.changed, false);
  // The checkpoint only moves forward: the late final 1 does not pull it back behind final 2.
  assert.equal(state.checkpoint.nextUtterance, 3);
  assert.equal(state.resumeOffset, '102');
  assert.equal(state.revision, 4);
  assert.equal(state.status, 'active');
});

void test('a final that arrives before rt.session.opened is kept; opened then fills in the session', () => {
  const state = last(run([fin(0), opened()])).state;
  assert.ok(state);
  assert.equal(state.finals.length, 1);
  assert.equal(state.tenantId, 't1');
  assert.equal(state.config.model, 'moonshine-tiny');
  assert.equal(state.startedAt, T0);
});

void test('the session ends when both the engine ended and the gateway closed, in either order', () => {
  for (const order of [[ended(), closed('sessions/x/audio.wav')], [closed('sessions/x/audio.wav'), ended()]] as const) {
    const rs = run([opened(), fin(0), ...order]);
    assert.equal(rs[2]?.state?.status, 'active');
    const r = last(rs);
    assert.equal(r.state?.status, 'completed');
    assert.equal(r.state?.transcriptKey, `sessions/${SID}/transcript.json`);
    assert.equal(r.state?.closeCode, 1000);
    assert.deepEqual(r.state?.latency, { firstPartialP50Ms: 120, firstPartialP95Ms: 300, finalP50Ms: 250, finalP95Ms: 600 });
    assert.deepEqual(r.outbox.map((e) => e.type), ['transcript', 'analytics']);
    const audit = r.outbox[1];
    assert.ok(audit?.type === 'analytics' && audit.message.type === 'analytics.audit_event');
    assert.equal(audit.message.eventType, 'realtime.session.completed');
    assert.equal(audit.message.eventId, `${SID}:realtime.session.completed`);
    assert.equal(audit.message.traceId, '0123456789abcdef0123456789abcdef');
    assert.deepEqual(r.local, [{ type: 'session_finished', status: 'completed' }]);
    assert.equal(nextSessionWakeAt(r.state, settings), undefined);
  }
});

void test('a session the gateway closed with 1011 (a server error) ends as failed, still with its transcript and audit', () => {
  const r = last(run([opened(), fin(0), ended(), { ...closed(), closeCode: 1011, reason: 'engine error' } as RealtimeEvent]));
  assert.equal(r.state?.status, 'failed');
  assert.deepEqual(r.outbox.map((e) => e.type), ['transcript', 'analytics']);
});

void test('one side never reports: the grace timer ends the session as interrupted', () => {
  const rs = run([opened(), fin(0), [ended(), T0 + 20_000]]);
  const waiting = last(rs).state;
  assert.equal(nextSessionWakeAt(waiting, settings), T0 + 50_000);
  const early = sessionTransition(waiting, { type: 'timer' }, { now: T0 + 49_999, settings });
  assert.equal(early.changed, false);
  const due = sessionTransition(waiting, { type: 'timer' }, { now: T0 + 50_000, settings });
  assert.equal(due.state?.status, 'interrupted');
  assert.equal(due.state?.endedAt, T0 + 50_000);
  assert.equal(due.state?.finals.length, 1);
  // A close that arrives after the end changes nothing.
  assert.equal(sessionTransition(due.state, closed(), { now: T0 + 60_000, settings }).changed, false);
});

void test('a session that outlives its maximum length with no end from either side is interrupted', () => {
  const state = last(run([opened()])).state;
  const at = nextSessionWakeAt(state, settings);
  assert.equal(at, T0 + settings.maxSessionMs + settings.endGraceMs);
  assert.equal(sessionTransition(state, { type: 'timer' }, { now: at ?? 0, settings }).state?.status, 'interrupted');
});

void test('delete of a live session is refused; of a finished one, it tombstones the snapshot', () => {
  const live = last(run([opened(), fin(0)])).state;
  const refused = sessionTransition(live, deleted, { now: T0 + 1, settings });
  assert.equal(refused.changed, false);
  assert.equal(refused.tombstone, undefined);
  assert.deepEqual(refused.local, [{ type: 'delete_refused' }]);
  const done = last(run([opened(), ended(), closed()])).state;
  const removed = sessionTransition(done, deleted, { now: T0 + 2, settings });
  assert.equal(removed.tombstone, true);
  assert.equal(removed.changed, false);
});

void test('effects are re-derived identically from the same state and event (a retry sends the same messages)', () => {
  const before = last(run([opened({ ...config, enhanceOnEnd: true, enhanceModel: 'whisper-small' }), fin(0), ended()])).state;
  const a = sessionTransition(before, closed(`sessions/${SID}/audio.wav`), { now: T0 + 21_000, settings });
  const b = sessionTransition(before, closed(`sessions/${SID}/audio.wav`), { now: T0 + 21_000, settings });
  assert.deepEqual(a, b);
  assert.equal(a.state?.enhanceJobId, enhanceJobIdFor(SID));
  assert.deepEqual(a.outbox.map((e) => e.type), ['transcript', 'analytics', 'job', 'analytics']);
  const job = a.outbox[2];
  assert.ok(job?.type === 'job' && job.event.type === 'job.created');
  assert.equal(job.event.jobId, 'job_01JTESTSESSION0000000000000');
  assert.equal(job.event.params.sessionId, SID);
  assert.equal(job.event.params.model, 'whisper-small');
  assert.equal(job.event.audio.key, `sessions/${SID}/audio.wav`);
  // Replaying the same close on the persisted state changes nothing and sends nothing new.
  const replay = sessionTransition(a.state, closed(`sessions/${SID}/audio.wav`), { now: T0 + 22_000, settings });
  assert.equal(replay.changed, false);
  assert.deepEqual(replay.outbox, []);
});

void test('retention off: no transcript artifact and no enhance job, but the session still ends and is audited', () => {
  const r = last(run([opened({ ...config, retention: false, enhanceOnEnd: true }), fin(0), ended(), closed()]));
  assert.equal(r.state?.status, 'completed');
  assert.equal(r.state?.transcriptKey, undefined);
  assert.equal(r.state?.enhanceJobId, undefined);
  assert.deepEqual(r.outbox.map((e) => e.type), ['analytics']);
});

void test('a resume through another gateway moves the reply topic; a replayed opened changes nothing', () => {
  const rs = run([opened(), { v: SCHEMA_VERSION, type: 'rt.session.resumed', sessionId: SID, gatewayId: 'gw-b', replyTopic: 'realtime.replies.gw-b', at: T0 + 5 }, opened()]);
  assert.equal(rs[1]?.state?.gatewayId, 'gw-b');
  assert.equal(rs[2]?.changed, false);
  assert.equal(rs[2]?.state?.replyTopic, 'realtime.replies.gw-b');
});

void test('the transcript document joins the finals in order and carries words and timings', () => {
  const state = last(run([opened(), fin(1, 'world'), fin(0, 'hello'), ended(), closed()])).state;
  assert.ok(state);
  const doc = sessionTranscript(state);
  assert.equal(doc.text, 'hello world');
  assert.equal(doc.utterances.length, 2);
  assert.equal(doc.utterances[0]?.words[0]?.text, 'hello');
  assert.equal(doc.model, 'moonshine-tiny');
  assert.equal(doc.audio_seconds, 10.2);
  assert.equal(doc.status, 'completed');
});

test('a configuration sent before audio (OpenAI session.update) replaces the opened one; after a final, or when equal, it changes nothing', () => {
  const manual: RealtimeSessionConfig = { ...config, commitStrategy: 'manual', model: 'whisper-tiny.en', language: 'en' };
  const configured = (cfg: RealtimeSessionConfig): RealtimeEvent => ({ v: SCHEMA_VERSION, type: 'rt.session.configured', sessionId: SID, config: cfg, at: T0 + 5 });
  const before = last(run([opened(), configured(manual)]));
  assert.deepEqual(before.state?.config, manual);
  assert.equal(before.changed, true);
  assert.equal(last(run([opened(), configured(manual), configured(manual)])).changed, false, 'the same configuration again is no change');
  const afterFinal = last(run([opened(), fin(0), configured(manual)]));
  assert.deepEqual(afterFinal.state?.config, config, 'the configuration the engine ran with stays');
  // Delivered ahead of the opening (a producer retry): the opening does not put the older configuration back.
  const early = last(run([configured(manual), opened()]));
  assert.deepEqual(early.state?.config, manual);
  assert.equal(early.state?.gatewayId, 'gw-a');
});
