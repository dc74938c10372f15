import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCHEMA_VERSION, type RealtimeInput, type RealtimeSessionConfig } from '../../streams/index.js';
import { frameAction, isNewFinal, MAX_GAP_SAMPLES, planSession } from './resume-plan.js';
import type { SessionRecord } from './session-record.js';

const config: RealtimeSessionConfig = {
  model: 'moonshine-tiny', commitStrategy: 'vad', partials: true, retention: false, enhanceOnEnd: false, inputFormat: 'pcm_s16le/16000/1', dialect: 'native',
};
const start: RealtimeInput = {
  v: SCHEMA_VERSION, type: 'rt.session.start', sessionId: 's1', tenantId: 't', keyId: 'k', requestId: 'r', gatewayId: 'g2',
  replyTopic: 'realtime.replies.g2', config, startedAt: 1,
};
const audio: RealtimeInput = { v: SCHEMA_VERSION, type: 'rt.audio', sessionId: 's1', seq: 7, offset: 16000, pcm: Buffer.alloc(3200), sentAt: 2 };

function record(over: Partial<SessionRecord> = {}): SessionRecord {
  return {
    sessionId: 's1', tenantId: 't', requestId: 'r', traceparent: undefined, status: 'active', config, replyTopic: 'realtime.replies.g1',
    checkpoint: { version: 1, audioOffsetSamples: 48000, nextUtterance: 2, finalizedCount: 2 }, partition: 4, resumeOffset: '120',
    lastFinalUtterance: 1, engineEnded: false, gatewayClosed: false, revision: 5, ...over,
  };
}

test('a start without a snapshot opens a fresh session', () => {
  const plan = planSession(start, 10n, 4, undefined);
  assert.equal(plan.kind, 'serve');
  if (plan.kind !== 'serve') return;
  assert.equal(plan.restored, false);
  assert.equal(plan.checkpoint.nextUtterance, 0);
  assert.equal(plan.skipBelow, undefined);
  assert.equal(plan.replyTopic, 'realtime.replies.g2');
});

test('a frame of a session with a snapshot restores its checkpoint and skips what the checkpoint covers', () => {
  const plan = planSession(audio, 118n, 4, record());
  assert.equal(plan.kind, 'serve');
  if (plan.kind !== 'serve') return;
  assert.equal(plan.restored, true);
  assert.deepEqual(plan.checkpoint, { version: 1, audioOffsetSamples: 48000, nextUtterance: 2, finalizedCount: 2 });
  assert.equal(plan.skipBelow, 120n);
  assert.equal(plan.lastFinalUtterance, 1);
  assert.equal(plan.replyTopic, 'realtime.replies.g1');
});

test('a re-read start below the resume offset keeps the snapshot (it is older than it); one at or past it is a resume through a new gateway', () => {
  const old = planSession(start, 100n, 4, record());
  assert.ok(old.kind === 'serve' && old.replyTopic === 'realtime.replies.g1' && old.checkpoint.nextUtterance === 2);
  const resumed = planSession(start, 130n, 4, record());
  assert.ok(resumed.kind === 'serve' && resumed.replyTopic === 'realtime.replies.g2' && resumed.checkpoint.nextUtterance === 2);
});

test('a snapshot of another partition gives the checkpoint but no offset to skip by', () => {
  const plan = planSession(audio, 118n, 7, record());
  assert.ok(plan.kind === 'serve' && plan.skipBelow === undefined && plan.checkpoint.audioOffsetSamples === 48000);
});

test('a session the engine ended (or that failed) is not served again', () => {
  assert.equal(planSession(audio, 130n, 4, record({ engineEnded: true })).kind, 'finished');
  assert.equal(planSession(start, 3n, 4, record({ status: 'failed' })).kind, 'finished');
});

test('a start with a snapshot still at its beginning (the actor recorded only the opening) starts fresh from the start message', () => {
  const opened = record({ checkpoint: { version: 1, audioOffsetSamples: 0, nextUtterance: 0, finalizedCount: 0 }, partition: undefined, resumeOffset: undefined, lastFinalUtterance: -1 });
  const plan = planSession(start, 3n, 4, opened);
  assert.ok(plan.kind === 'serve' && plan.restored === false && plan.replyTopic === 'realtime.replies.g2');
  // A frame first (its start released? never before a final): served from the snapshot's configuration.
  assert.equal(planSession(audio, 9n, 4, opened).kind, 'serve');
});

test('a frame with neither start nor snapshot is an orphan', () => {
  assert.equal(planSession(audio, 9n, 4, undefined).kind, 'orphan');
});

test('frames already fed are skipped, straddling ones cut, holes filled with silence', () => {
  assert.deepEqual(frameAction(0, 1600, 3200), { kind: 'skip' });
  assert.deepEqual(frameAction(1600, 1600, 3200), { kind: 'skip' });
  assert.deepEqual(frameAction(3000, 1600, 3200), { kind: 'feed', from: 200, gap: 0 });
  assert.deepEqual(frameAction(3200, 1600, 3200), { kind: 'feed', from: 0, gap: 0 });
  assert.deepEqual(frameAction(4800, 1600, 3200), { kind: 'feed', from: 0, gap: 1600 });
  assert.deepEqual(frameAction(3200 + MAX_GAP_SAMPLES + 1, 1600, 3200), { kind: 'feed', from: 0, gap: 0 });
});

test('a final whose index was recorded is never emitted again', () => {
  assert.equal(isNewFinal(2, 1), true);
  assert.equal(isNewFinal(1, 1), false);
  assert.equal(isNewFinal(0, 1), false);
  assert.equal(isNewFinal(0, -1), true);
});
