/**
 * Failover of a live real-time session on the real stack (Kafka, ClickHouse, gateway, two actor hosts, two
 * streaming engine processes): espeak-ng sentences with ~1 s pauses streamed at real-time pace over the native
 * WebSocket, and in the middle of a later sentence (once the first final is recorded) the process serving the
 * session is SIGKILLed — first the streaming engine, then the actor host that owns the session. The client notices nothing but
 * a pause: the socket stays open until its normal end (1000), every sentence is finalised exactly once and in order,
 * and `session.end` counts all the audio; after the actor host's death the session's history holds each final once.
 * The pause each failover caused is printed, not asserted (speed belongs to load-tests/).
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { wordErrors } from '../../engines/asr/wer.js';
import type { ServiceProcess } from '../../infra/service-launcher.js';
import { realtimeEngineGroupId } from '../../streams/index.js';
import { RATE, espeakParts, layOut, type SpeechStream } from '../integration/realtime-engine-fixture.js';
import { ofType, streamNative, toPcm16, type NativeSessionResult, type ReceivedMessage } from '../../harness/realtime-client.js';
import { startHarness, type Harness } from '../../harness/pipeline-harness.js';

const SENTENCES = [
  'the weather today is cold and windy with a chance of rain in the evening',
  'please send the quarterly report to the finance team before friday',
  'she opened the window and looked at the garden for a long time',
  'our train leaves the station at noon so we should not be late',
  'the children played in the park until the sun went down',
  'he asked for a cup of coffee with milk and no sugar',
];

let h: Harness;
let speech: SpeechStream;

const text = (v: unknown): string => (typeof v === 'string' ? v : '');
const ws = () => h.gatewayUrl.replace(/^http/, 'ws');

/** Waits until the consumer group has `members` members and is stable (every process holds partitions). */
async function settled(groupId: string, members: number): Promise<void> {
  const admin = h.kafka.admin();
  await admin.connect();
  try {
    for (const deadline = Date.now() + 60_000; ; await sleep(200)) {
      const g = (await admin.describeGroups([groupId])).groups[0];
      if (g?.state === 'Stable' && g.members.length === members) return;
      if (Date.now() > deadline) throw new Error(`group ${groupId} did not settle with ${members} members: ${String(g?.state)} ${String(g?.members.length)}`);
    }
  } finally {
    await admin.disconnect();
  }
}

before(async () => {
  // This file checks failover, not capacity: on a runner too loaded to transcribe in real time the lag budget would
  // close the session (4010, tested in gateway/realtime/lag-budget.test.ts), so it is set out of the way here.
  h = await startHarness({ name: 'rtfailover', engines: [], realtimeEngines: 2, actorHosts: 2, env: { DALSTON_REALTIME_LAG_CLOSE_SECONDS: '600' } });
  const base = h.prefix.replace(/\.$/, '');
  await Promise.all([settled(realtimeEngineGroupId(h.prefix), 2), settled(`${base}-sessions`, 2)]);
  speech = layOut(await espeakParts(SENTENCES), 1.0, 0.5, 1.5);
});
after(async () => {
  await h?.stop();
});

async function sessionsOn(engine: ServiceProcess): Promise<number> {
  try {
    const body = await (await fetch(`http://127.0.0.1:${engine.spec.port}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
    const m = /^dalston_realtime_engine_sessions (\d+)/m.exec(body);
    return m?.[1] === undefined ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

/**
 * The actor host that owns the session now: the session actor lives on the partition its 'session opened' line
 * names, and the owner is the running host whose latest assignment change for that partition was an assignment (a
 * rebalance under load may have moved the session since it opened).
 */
async function actorHostOf(sessionId: string): Promise<ServiceProcess | undefined> {
  const hosts = h.services.filter((p) => p.spec.kind === 'actors' && p.running);
  const logs = await Promise.all(hosts.map(logOf));
  const opened = logs.flat().find((l) => l['session_id'] === sessionId && l['msg'] === 'session opened');
  const partition = opened?.['partition'];
  if (typeof partition !== 'number') return undefined;
  return hosts.find((_, i) => {
    // Only the session host's own lines: the job actors of the same process log partition moves of another group
    // (jobs.events) with the same numbers, and one of those last would hide the session's owner.
    const changes = logs[i]!.filter((l) => /^session partitions (assigned|revoked)/.test(text(l['msg'])) && Array.isArray(l['partitions']) && (l['partitions'] as unknown[]).includes(partition));
    return changes.at(-1)?.['msg'] === 'session partitions assigned; sessions restored';
  });
}

/** The streaming engine serving a session now (its sessions gauge; the test runs one session at a time). */
async function engineOf(): Promise<ServiceProcess | undefined> {
  for (const e of h.services.filter((s) => s.spec.kind === 'realtime' && s.running)) if ((await sessionsOn(e)) > 0) return e;
  return undefined;
}

interface FailoverRun {
  readonly run: NativeSessionResult;
  readonly sessionId: string;
  readonly victim: ServiceProcess | undefined;
  /** Epoch ms of the kill, and of the session's first audio. */
  readonly killedAt: number;
  readonly startedAt: number;
}

/** Whether the session's history (projected from the session actor's snapshots) records a final yet. */
async function finalRecorded(sessionId: string): Promise<boolean> {
  const res = await h.api(`/v1/realtime/sessions/${sessionId}`).catch(() => undefined);
  if (res?.status !== 200) return false;
  return Number(((await res.json()) as Record<string, unknown>)['utterances']) >= 1;
}

/**
 * Streams the sentences; once the first final is durable (the session actor's snapshot has it, so there is a
 * checkpoint to restore from), kills the process `findVictim` names in the middle of the next sentence being spoken.
 * Earlier, the engine may not have told the actor of the final yet: its successor rightly starts the session over,
 * and the checkpoint path would go untested.
 */
async function streamAndKill(findVictim: (sessionId: string) => Promise<ServiceProcess | undefined>): Promise<FailoverRun> {
  let sessionId = '';
  let firstFinalAt = 0;
  let startedAt = 0;
  let killedAt = 0;
  let victim: ServiceProcess | undefined;
  let done = false;
  const onMessage = (m: ReceivedMessage): void => {
    if (m.message.type === 'session.begin') sessionId = text(m.message['session_id']);
    if (m.message.type === 'transcript.final' && firstFinalAt === 0) firstFinalAt = m.atMs;
  };
  const killer = (async () => {
    while (!done && (sessionId === '' || startedAt === 0)) await sleep(20);
    let durableAt = 0;
    while (!done && durableAt === 0) {
      if (firstFinalAt > 0 && (await finalRecorded(sessionId))) durableAt = Date.now() - startedAt;
      else await sleep(100);
    }
    // Mid-points of the sentences after the first, in ms from the first audio.
    const mids = speech.parts.slice(1, -1).map((p) => ((p.onset + p.end) / 2 / RATE) * 1000);
    while (!done && killedAt === 0) {
      const now = Date.now() - startedAt;
      const due = mids.some((mid) => mid > durableAt && now >= mid && now < mid + 300);
      // Found at the moment of the kill, not earlier: the session may have moved since it opened.
      victim = due ? await findVictim(sessionId) : undefined;
      if (victim) {
        killedAt = Date.now();
        await victim.kill();
        return;
      }
      await sleep(25);
    }
  })();
  const pending = streamNative(toPcm16(speech.audio), { baseUrl: ws(), apiKey: h.apiKey, onMessage, endTimeoutMs: 90_000 });
  startedAt = Date.now();
  const run = await pending.finally(() => {
    done = true;
  });
  await killer;
  return { run, sessionId, victim, killedAt, startedAt };
}

/** Every sentence finalised exactly once, in order, with its words; session.end counts all the audio. */
function assertEveryFinalOnce(r: FailoverRun, label: string): void {
  const { run } = r;
  assert.equal(run.refused, false, `${label}: upgrade accepted (${run.httpStatus ?? ''} ${run.httpBody ?? ''})`);
  assert.ok(r.killedAt > 0 && r.victim !== undefined && !r.victim.running, `${label}: the serving process was killed mid-utterance`);
  const errors = run.messages.filter((m) => m.message.type === 'error');
  assert.deepEqual(errors.map((m) => m.message), [], `${label}: no error reached the client`);
  assert.equal(run.closeCode, 1000, `${label}: the socket closed normally at the end (${run.closeReason})`);
  const finals = ofType(run, 'transcript.final');
  const indices = finals.map((f) => Number(f.message['utterance']));
  const texts = finals.map((f) => text(f.message['text']));
  assert.equal(finals.length, SENTENCES.length, `${label}: one final per sentence: ${JSON.stringify(texts)}`);
  for (let i = 1; i < indices.length; i++) assert.ok(indices[i]! > indices[i - 1]!, `${label}: utterance indices strictly increase: ${indices.join(',')}`);
  for (const [i, ref] of SENTENCES.entries()) {
    const wer = wordErrors(ref, texts[i] ?? '');
    assert.ok(wer.wer <= 0.25, `${label}: final ${i} "${texts[i] ?? ''}" holds "${ref}" (WER ${(wer.wer * 100).toFixed(1)} %)`);
  }
  const total = wordErrors(SENTENCES.join(' '), texts.join(' '));
  assert.ok(total.wer <= 0.15, `${label}: WER of all finals ${(total.wer * 100).toFixed(1)} %`);
  const end = ofType(run, 'session.end');
  assert.equal(end.length, 1, `${label}: one session.end`);
  const seconds = Number(end[0]!.message['total_audio_seconds']);
  assert.ok(Math.abs(seconds - speech.audio.length / RATE) < 0.25, `${label}: session.end total_audio_seconds ${seconds} ≈ ${(speech.audio.length / RATE).toFixed(2)}`);
  assert.equal(text(end[0]!.message['text']).trim(), texts.join(' ').trim(), `${label}: session.end carries the finalised text once`);
}

/**
 * What the client saw of the failover: the longest gap between transcript messages (partials, finals) from the kill
 * on — natural pauses between sentences count too, so it is an upper bound — and each sentence's final, in ms after
 * its speech was sent (the interrupted one against the others).
 */
function pauseReport(r: FailoverRun, label: string): string {
  const killMs = r.killedAt - r.startedAt;
  const ms = r.run.messages.filter((m) => m.message.type.startsWith('transcript.')).map((m) => m.atMs);
  let pause = 0;
  for (let i = 1; i < ms.length; i++) if (ms[i]! > killMs) pause = Math.max(pause, ms[i]! - Math.max(ms[i - 1]!, killMs));
  const idx = speech.parts.findIndex((p) => (p.onset / RATE) * 1000 <= killMs && killMs <= (p.end / RATE) * 1000);
  const latencies = ofType(r.run, 'transcript.final').map((f, i) => {
    const part = speech.parts[i];
    const v = part ? (f.atMs - (part.end / RATE) * 1000).toFixed(0) : '?';
    return i === idx ? `[${v}]` : v;
  });
  const warnings = r.run.messages.filter((m) => m.message.type === 'warning').map((m) => text(m.message['code']) || text(m.message['message']));
  return `${label}: killed ${r.victim?.spec.name ?? '?'} at ${(killMs / 1000).toFixed(2)} s, in sentence ${idx + 1}; longest gap in transcript messages after the kill ${pause} ms; finals after end of speech (ms, interrupted one in brackets): ${latencies.join(', ')}; warnings: ${warnings.length > 0 ? warnings.join(', ') : 'none'}`;
}

/** Log lines (JSON) of one process. */
async function logOf(p: ServiceProcess): Promise<Record<string, unknown>[]> {
  return (await readFile(p.logFile, 'utf8').catch(() => '')).split('\n').filter((l) => l.startsWith('{')).flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/**
 * On failure, the services' log lines about this session and about partition moves, in time order: what a CI log
 * shows of the story (info lines carry no transcript text).
 */
async function explainOnFailure(t: TestContext, sessionId: () => string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const lines: string[] = [];
    for (const p of h.services.filter((s) => s.spec.kind === 'realtime' || s.spec.kind === 'actors')) {
      for (const l of await logOf(p)) {
        const msg = text(l['msg']);
        if (l['session_id'] !== sessionId() && !/assigned|revoked|joined the group|rebalanc/.test(msg)) continue;
        const { time, msg: _msg, level, service: _s, session_id: _id, request_id: _r, trace_id: _t, span_id: _sp, ...rest } = l;
        lines.push(`${text(time)} ${p.spec.name} [${String(level)}] ${msg} ${JSON.stringify(rest)}`);
      }
    }
    for (const line of lines.sort().slice(-150)) t.diagnostic(line);
    throw err;
  }
}

/**
 * Streams and kills (see streamAndKill), prints what the client saw, checks every final arrived once, then runs
 * `then`; on failure the services' story is printed.
 */
async function failover(t: TestContext, label: string, findVictim: (sessionId: string) => Promise<ServiceProcess | undefined>, then: (r: FailoverRun) => Promise<void>): Promise<void> {
  let sessionId = '';
  await explainOnFailure(t, () => sessionId, async () => {
    const r = await streamAndKill(findVictim);
    sessionId = r.sessionId;
    const report = pauseReport(r, label);
    t.diagnostic(report);
    t.diagnostic(`finals: ${ofType(r.run, 'transcript.final').map((f) => `${String(f.message['utterance'])}:${text(f.message['text'])}`).join(' | ')}`);
    console.log(`[figures] ${report}`);
    assertEveryFinalOnce(r, label);
    await then(r);
  });
}

test('SIGKILL of the streaming engine serving a native session mid-utterance: the socket stays open, every sentence finalised once and in order, session.end counts all the audio', async (t) => {
  await failover(t, 'engine failover', engineOf, async (r) => {
    const survivor = h.services.find((s) => s.spec.kind === 'realtime' && s.running);
    assert.ok(survivor && (await logOf(survivor)).some((l) => l['session_id'] === r.sessionId && l['msg'] === 'session restored from its checkpoint'), 'the other engine restored the session');
  });
});

test('SIGKILL of the actor host that owns a native session mid-utterance: the socket stays open, every sentence finalised once; the history holds each final once', async (t) => {
  await failover(t, 'actor host failover', actorHostOf, async (r) => {
    const survivor = h.services.find((s) => s.spec.kind === 'actors' && s.running);
    assert.ok(survivor && (await logOf(survivor)).some((l) => l['msg'] === 'session partitions assigned; sessions restored' && Number(l['restored']) >= 1), 'the other actor host restored the session actor');

    let row: Record<string, unknown> = {};
    for (const deadline = Date.now() + 90_000; Date.now() < deadline; await sleep(300)) {
      const res = await h.api(`/v1/realtime/sessions/${r.sessionId}`);
      if (res.status === 200) {
        row = (await res.json()) as Record<string, unknown>;
        if (row['status'] === 'completed' && row['transcript_available'] === true) break;
      }
    }
    assert.equal(row['status'], 'completed', JSON.stringify(row));
    assert.equal(Number(row['utterances']), SENTENCES.length, `the history row counts each final once: ${JSON.stringify(row)}`);
    const res = await h.api(`/v1/realtime/sessions/${r.sessionId}/transcript`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as { text?: string; utterances?: { utterance: number; text: string }[] };
    const live = ofType(r.run, 'transcript.final');
    assert.deepEqual(
      (doc.utterances ?? []).map((u) => [u.utterance, u.text]),
      live.map((f) => [Number(f.message['utterance']), text(f.message['text'])]),
      'the stored transcript holds exactly the finals the client received, once each, in order',
    );
    assert.equal((doc.text ?? '').trim(), live.map((f) => text(f.message['text']).trim()).join(' '));
  });
});
