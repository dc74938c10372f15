/**
 * The session host under failure on the real Kafka of the suite, with a fault injected at the producer seam: the
 * outbox of a session's end survives a failed send (the effects go out once the retry succeeds, each once), and a
 * host that takes the partitions over restores the live session from sessions.state and goes on from there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SessionHost } from '../../actors/session-host.js';
import { sessionArtifactKeys } from '../../actors/session-artifacts.js';
import { systemClock } from '../../core/clock.js';
import { FsArtifactStore } from '../../storage/index.js';
import { REALTIME_EVENTS, SCHEMA_VERSION, encodeMessage, newMessageHeaders, type MessageSender, type RealtimeEvent } from '../../streams/index.js';
import { FaultySender, eventually, raw, startRuntimeFixture, type RuntimeFixture } from '../support/runtime-fixture.js';

const config = {
  model: 'moonshine-tiny', commitStrategy: 'vad', partials: true, retention: true, enhanceOnEnd: false, inputFormat: 'pcm_s16le/16000/1', dialect: 'native',
} as const;

function events(sessionId: string) {
  return {
    opened: (): RealtimeEvent => ({
      v: SCHEMA_VERSION, type: 'rt.session.opened', sessionId, tenantId: 'default', keyId: 'k', requestId: 'req_t', gatewayId: 'gw',
      replyTopic: 'realtime.replies.gw', config, startedAt: Date.now(),
    }),
    final: (utterance: number): RealtimeEvent => ({
      v: SCHEMA_VERSION, type: 'rt.utterance.final', sessionId,
      final: { utterance, text: `u${utterance}`, start: utterance, end: utterance + 0.5, reason: 'pause', words: [] },
      checkpoint: { version: 1, audioOffsetSamples: (utterance + 1) * 16000, nextUtterance: utterance + 1, finalizedCount: utterance + 1 },
      partition: 0, resumeOffset: String(utterance), engineInstance: 'rt-0', at: Date.now(),
    }),
    ended: (): RealtimeEvent => ({
      v: SCHEMA_VERSION, type: 'rt.session.ended', sessionId, audioSeconds: 9, engineInstance: 'rt-0', at: Date.now(),
      checkpoint: { version: 1, audioOffsetSamples: 9 * 16000, nextUtterance: 9, finalizedCount: 9 },
    }),
    closed: (): RealtimeEvent => ({ v: SCHEMA_VERSION, type: 'rt.session.closed', sessionId, closeCode: 1000, reason: 'bye', audioSeconds: 9, at: Date.now() }),
  };
}

async function withFixture(name: string, fn: (f: RuntimeFixture, store: FsArtifactStore, send: (ev: RealtimeEvent) => Promise<void>) => Promise<void>): Promise<void> {
  const f = await startRuntimeFixture(name);
  const dir = await mkdtemp(join(tmpdir(), `dalston-sessions-${name}-`));
  try {
    const send = async (ev: RealtimeEvent): Promise<void> => {
      await f.streams.producer.send(f.topic(REALTIME_EVENTS.name), { key: ev.sessionId, value: encodeMessage(ev), headers: newMessageHeaders({ requestId: 'req_t', tenantId: 'default' }) });
    };
    await fn(f, new FsArtifactStore(dir), send);
  } finally {
    await f.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function sessionHost(f: RuntimeFixture, store: FsArtifactStore, producer: MessageSender = f.streams.producer): SessionHost {
  return new SessionHost({
    kafka: f.kafka, admin: f.streams.admin, producer, deadLetter: f.streams.deadLetter, store, topicPrefix: f.prefix, clock: systemClock, log: f.log,
    settings: { endGraceMs: 60_000, maxSessionMs: 3_600_000 }, sessionTimeoutMs: 6000,
  });
}

void test('the end of a session whose audit send fails once after the snapshot was saved still sends it, once', async () => {
  await withFixture('sessoutbox', async (f, store, send) => {
    const sender = new FaultySender(f.streams.producer);
    const host = sessionHost(f, store, sender);
    try {
      await host.start();
      await eventually(() => (host.ownedPartitions.length === 6 ? true : undefined), 20_000, 'partitions claimed');
      const analytics = await f.recorder('analytics', raw);
      const state = await f.recorder('sessions.state', raw);
      const id = 'sess_OUTBOX1';
      const ev = events(id);
      await send(ev.opened());
      await send(ev.final(0));
      await send(ev.ended());
      await eventually(() => (host.sessionState(id)?.engineEnded ? true : undefined), 20_000, 'engine end recorded');
      sender.failNext((t) => t === f.topic('analytics'), 1);
      await send(ev.closed());
      const audit = await eventually(() => analytics.values().find((v) => v['sessionId'] === id), 30_000, 'the completed audit event');
      assert.equal(audit['eventType'], 'realtime.session.completed');
      assert.equal(sender.failures, 1, 'the first send really failed after the snapshot');
      const ended = state.values().filter((v) => (v['state'] as { sessionId?: string; status?: string } | undefined)?.sessionId === id
        && (v['state'] as { status?: string }).status === 'completed');
      assert.equal(ended.length, 1, 'the end was persisted once; the retry only re-sent its outbox');
      const transcript = JSON.parse((await store.get(sessionArtifactKeys(id).transcript)).toString('utf8')) as { text: string };
      assert.equal(transcript.text, 'u0');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(analytics.values().filter((v) => v['sessionId'] === id).length, 1);
    } finally {
      await host.close();
    }
  });
});

void test('a host that takes the partitions over restores the live session and records each final once', async () => {
  await withFixture('sesstakeover', async (f, store, send) => {
    const id = 'sess_TAKEOVER1';
    const ev = events(id);
    const first = sessionHost(f, store);
    await first.start();
    await eventually(() => (first.ownedPartitions.length === 6 ? true : undefined), 20_000, 'first host owns the partitions');
    await send(ev.opened());
    await send(ev.final(0));
    await send(ev.final(1));
    await eventually(() => (first.sessionState(id)?.finals.length === 2 ? true : undefined), 20_000, 'two finals on the first host');
    await first.close();
    const second = sessionHost(f, store);
    try {
      await second.start();
      await eventually(() => (second.restoredPartitions.length === 6 ? true : undefined), 30_000, 'second host owns and restored the partitions');
      assert.equal(second.liveSessions, 1, 'the live session was restored from sessions.state');
      await send(ev.final(1));
      await send(ev.final(2));
      await send(ev.ended());
      await send(ev.closed());
      const state = await f.recorder('sessions.state', raw);
      type Snap = { sessionId: string; status: string; epoch?: number; finals: { utterance: number }[] };
      const done = await eventually(() => state.values().map((v) => v['state'] as Snap | undefined).find((x) => x?.sessionId === id && x.status === 'completed'), 20_000, 'completed');
      assert.deepEqual(done.finals.map((x) => x.utterance), [0, 1, 2]);
      assert.ok((done.epoch ?? 0) >= 2, 'snapshots of the new owner carry its higher epoch');
    } finally {
      await second.close();
    }
  });
});

void test('a session whose snapshot outgrows Kafka\'s 1 MB default is still persisted and read back', async () => {
  await withFixture('sessbig', async (f, store, send) => {
    const id = 'sess_BIG1';
    const ev = events(id);
    const host = sessionHost(f, store);
    try {
      await host.start();
      await eventually(() => (host.ownedPartitions.length === 6 ? true : undefined), 20_000, 'partitions claimed');
      const state = await f.recorder('sessions.state', (v) => ({ ...raw(v), bytes: v.length }));
      await send(ev.opened());
      // ~150 KB per final (3000 words with timings): ten of them make a snapshot well over 1 MB.
      for (let u = 0; u < 10; u++) {
        const base = ev.final(u);
        if (base.type !== 'rt.utterance.final') throw new Error('unreachable');
        const words = Array.from({ length: 3000 }, (_, i) => ({ text: `word${i}`, start: u + i * 0.001, end: u + i * 0.001 + 0.0005, confidence: 0.9 }));
        await send({ ...base, final: { ...base.final, text: words.map((w) => w.text).join(' '), words } });
      }
      const snap = await eventually(() => state.values().map((v) => v['state'] as { sessionId: string; finals: unknown[] } | undefined)
        .find((x) => x?.sessionId === id && x.finals.length === 10), 60_000, 'the snapshot with ten finals');
      assert.equal(snap.finals.length, 10);
      const bytes = Number(state.values().find((v) => (v['state'] as { finals?: unknown[] } | undefined)?.finals?.length === 10)?.['bytes'] ?? 0);
      assert.ok(bytes > 1_048_576, `the snapshot is over 1 MB (${bytes} bytes)`);
    } finally {
      await host.close();
    }
  });
});
