/**
 * Handover of sessions between two streaming engines (in-process) when the serving one leaves, with the commit held
 * back by another session on the same partition: the new owner re-reads both sessions' starts, serves the silent
 * one afresh from its start and restores the speaking one from its snapshot: its recorded final is not sent again,
 * the open sentence is finalised once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../core/config.js';
import { Partitioners } from '../../streams/kafka-client.js';
import { REALTIME_INPUT, connectStreams, prefixed, realtimeEngineGroupId, type StreamRuntime } from '../../streams/index.js';
import { startTestKafka, type TestKafka } from '../../harness/kafka-fixture.js';
import {
  RATE, SessionActorStandIn, TestGateway, createTopics, espeakParts, layOut, sessionConfig, startInProcessEngine, testLog, type InProcessEngine,
} from './realtime-engine-fixture.js';

const log = testLog();
const prefix = `rthandover-${randomUUID().slice(0, 8)}.`;
let kafka: TestKafka;
let streams: StreamRuntime;
let gateway: TestGateway;
let actor: SessionActorStandIn;
const engines: InProcessEngine[] = [];

/** The realtime.input partition a session id maps to (the producer's murmur2 partitioner). */
function partitionOf(sessionId: string): number {
  const partitionMetadata = Array.from({ length: REALTIME_INPUT.partitions }, (_, i) => ({ partitionId: i, leader: 1, partitionErrorCode: 0, replicas: [1], isr: [1] }));
  return Partitioners.DefaultPartitioner()({ topic: 'x', partitionMetadata, message: { key: sessionId, value: null } });
}

before(async () => {
  const config = loadConfig();
  kafka = await startTestKafka(log);
  streams = await connectStreams({ brokers: kafka.brokers, clientId: 'realtime-handover-test', topicPrefix: prefix, log });
  await createTopics(streams, prefix, 'gwh');
  gateway = new TestGateway(streams, prefix, 'gwh', log);
  actor = new SessionActorStandIn(streams, prefix, log);
  await Promise.all([gateway.start(), actor.start()]);
  engines.push(await startInProcessEngine(kafka.brokers, prefix, config.homeDir, log));
  engines.push(await startInProcessEngine(kafka.brokers, prefix, config.homeDir, log));
  for (const deadline = Date.now() + 60_000; ; await sleep(200)) {
    const g = (await streams.admin.describeGroups([realtimeEngineGroupId(prefix)])).groups[0];
    if (g?.state === 'Stable' && g.members.length === 2 && engines.every((e) => e.engine.partitions.length > 0)) break;
    if (Date.now() > deadline) throw new Error('the two engines did not settle in one group');
  }
});

after(async () => {
  for (const e of engines) await e.close().catch(() => undefined);
  await gateway?.close();
  await actor?.close();
  await streams?.close();
  await kafka?.stop();
});

test('the serving engine leaves mid-utterance while a silent session holds the commit at its start: the other engine serves both, no final twice', async () => {
  const silent = `silent-${randomUUID()}`;
  let speaking = `speaking-${randomUUID()}`;
  while (partitionOf(speaking) !== partitionOf(silent)) speaking = `speaking-${randomUUID()}`;
  const partition = partitionOf(silent);
  const speech = layOut(await espeakParts(['please send the quarterly report to the finance team before friday', 'our train leaves the station at noon so we should not be late']), 1.0, 0.5, 1.5);
  const second = speech.parts[1]!;

  // A session with no speech yet: it never has a final, so its start is the partition's commit limit.
  await gateway.open(silent, sessionConfig());
  await gateway.stream(silent, new Float32Array(RATE));
  await gateway.open(speaking, sessionConfig());
  const owner = engines.find((e) => e.engine.partitions.includes(partition));
  assert.ok(owner !== undefined, 'one engine owns the sessions\' partition');
  const other = engines.find((e) => e !== owner)!;
  let left = false;
  await gateway.stream(speaking, speech.audio, 0, async (_i, sample) => {
    if (left || sample < (second.onset + second.end) / 2) return;
    left = true;
    // The engine leaves once the first sentence's final is recorded. Under load that can come later than this point in
    // the audio, so wait for it (the stream pauses meanwhile) instead of assuming a time.
    for (const deadline = Date.now() + 30_000; (actor.states.get(speaking)?.finals.length ?? 0) < 1 && Date.now() < deadline; ) await sleep(50);
    assert.equal(actor.states.get(speaking)?.finals.length, 1, 'the first sentence is final and recorded before the engine leaves');
    const offsets = await streams.admin.fetchOffsets({ groupId: realtimeEngineGroupId(prefix), topics: [prefixed(prefix, REALTIME_INPUT.name)] });
    const committed = BigInt(offsets[0]?.partitions.find((p) => p.partition === partition)?.offset ?? '-1');
    assert.ok(committed <= gateway.frameOf(silent, 0).offset, `the silent session holds the commit (committed ${committed})`);
    await owner.close();
    engines.splice(engines.indexOf(owner), 1);
  });
  assert.ok(left);
  await gateway.control(speaking, 'end', 1);
  const ended = await gateway.waitFor(speaking, (r) => r.type === 'rt.ended', 90_000);
  const finals = gateway.replies(speaking).filter((r) => r.reply.type === 'rt.final').map((r) => (r.reply.type === 'rt.final' ? r.reply.final : undefined)!);
  assert.deepEqual(finals.map((f) => f.utterance), [0, 1], `each sentence final once: ${finals.map((f) => `${f.utterance}:${f.text}`).join(' | ')}`);
  assert.ok(ended.reply.type === 'rt.ended' && ended.reply.finals === 2 && Math.abs(ended.reply.audioSeconds - speech.audio.length / RATE) < 0.11);
  assert.equal(actor.duplicateFinals.get(speaking) ?? 0, 0, 'the actor never saw a final twice');
  assert.ok(other.engine.partitions.includes(partition), 'the other engine owns the partition now');

  // The silent session was re-read from its start on the new owner and goes on there.
  await gateway.control(silent, 'end', 1);
  const silentEnded = await gateway.waitFor(silent, (r) => r.type === 'rt.ended', 30_000);
  assert.ok(silentEnded.reply.type === 'rt.ended' && Math.abs(silentEnded.reply.audioSeconds - 1) < 0.11 && silentEnded.reply.finals === 0);
});
