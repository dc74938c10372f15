import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobEvent, JobState } from '../streams/index.js';
import { SCHEMA_VERSION } from '../streams/index.js';
import { loadConfig } from '../core/config.js';
import {
  ENGINE_TIME_FACTOR, nextWakeAt, restoredState, taskTimeoutMs, transition, transitionSettings, type ActorInput, type Effect, type TransitionSettings,
} from './job-transition.js';

const settings: TransitionSettings = {
  maxRetries: 2, minTaskTimeoutMs: 60_000, engineTimeFactor: { transcribe: 3 }, heartbeatTimeoutMs: 15_000, queueTimeoutMs: 600_000,
  retryBaseDelayMs: 1000, engines: { engineFor: (stage) => `eng-${stage}` },
};

const SETTINGS_DEFAULT = settings;
const v = SCHEMA_VERSION;
const created: JobEvent = {
  v, type: 'job.created', jobId: 'job_1', tenantId: 'default', keyId: 'k1', createdAt: 1000,
  audio: { key: 'jobs/job_1/audio/original.wav', filename: 'a.wav', bytes: 10, contentType: 'audio/wav' }, params: { language: 'en' },
};

class Harness {
  state: JobState | undefined;
  effects: Effect[] = [];
  now = 1000;
  constructor(readonly settings: TransitionSettings = SETTINGS_DEFAULT) {}
  feed(input: ActorInput): boolean {
    const r = transition(this.state, input, { now: this.now, settings: this.settings, requestId: 'req_1' });
    this.state = r.state;
    this.effects.push(...r.effects);
    return r.changed;
  }
  task(stage: string) {
    const t = this.state?.tasks.find((x) => x.stage === stage);
    assert.ok(t, `task ${stage}`);
    return t;
  }
  dispatched(): string[] {
    return this.effects.flatMap((e) => (e.type === 'dispatch' ? [`${e.task.stage}#${e.task.attempt}`] : []));
  }
  started(stage: string) {
    const t = this.task(stage);
    this.feed({ v, type: 'task.started', jobId: 'job_1', taskId: t.taskId, attempt: t.attempt, engineId: t.engineId, instanceId: 'i1', at: this.now, queueWaitMs: 5 });
  }
  completed(stage: string, extra: { audioDurationSeconds?: number } = {}) {
    const t = this.task(stage);
    return this.feed({
      v, type: 'task.completed', jobId: 'job_1', taskId: t.taskId, attempt: t.attempt, engineId: t.engineId, instanceId: 'i1', at: this.now,
      outputKey: `out/${stage}`, metrics: { processingMs: 100, queueWaitMs: 5, modelLoadMs: 0, ...extra },
    });
  }
  failed(stage: string, retryable: boolean, code = 'DALSTON_ERR_ENGINE') {
    const t = this.task(stage);
    return this.feed({
      v, type: 'task.failed', jobId: 'job_1', taskId: t.taskId, attempt: t.attempt, engineId: t.engineId, instanceId: 'i1', at: this.now,
      error: { name: 'EngineError', code, message: 'boom', retryable }, processingMs: 10,
    });
  }
}

test('happy path: prepare → transcribe → merge, inputs chained, job completes once', () => {
  const h = new Harness();
  h.feed(created);
  assert.deepEqual(h.dispatched(), ['prepare#1']);
  assert.equal(h.state?.status, 'pending');
  h.started('prepare');
  assert.equal(h.state?.status, 'running');
  h.completed('prepare', { audioDurationSeconds: 42 });
  assert.equal(h.state?.audioDurationSeconds, 42);
  assert.deepEqual(h.dispatched(), ['prepare#1', 'transcribe#1']);
  const tr = h.effects.find((e) => e.type === 'dispatch' && e.task.stage === 'transcribe');
  assert.ok(tr && tr.type === 'dispatch');
  assert.deepEqual(tr.task.inputs, { audio: 'jobs/job_1/audio/original.wav', prepare: 'out/prepare' });
  assert.equal(tr.task.deadlineAt - h.now, 126_000, 'deadline = audio 42 s x factor 3');
  h.started('transcribe');
  h.completed('transcribe');
  h.started('merge');
  h.completed('merge');
  assert.equal(h.state?.status, 'completed');
  assert.equal(h.state?.transcriptKey, 'jobs/job_1/transcript.json');
  assert.equal(h.effects.filter((e) => e.type === 'job_finished').length, 1);
  assert.equal(h.completed('merge'), false, 'a redelivered result changes nothing');
  assert.equal(h.feed(created), false, 'a replayed job.created changes nothing');
});

test("each dispatch goes to its engine's own queue: a job's model picks the transcribe engine and so the queue", () => {
  const byModel: TransitionSettings = {
    ...settings, engines: { engineFor: (stage, model) => (stage === 'transcribe' ? `eng-transcribe-${model ?? 'default'}` : `eng-${stage}`) },
  };
  const topics = (h: Harness) => h.effects.flatMap((e) => (e.type === 'dispatch' ? [e.topic] : []));
  const h = new Harness(byModel);
  h.feed({ ...created, params: { language: 'en', model: 'whisper-tiny.en' } });
  h.started('prepare');
  h.completed('prepare', { audioDurationSeconds: 3 });
  h.started('transcribe');
  h.completed('transcribe');
  assert.deepEqual(topics(h), ['tasks.prepare.eng-prepare', 'tasks.transcribe.eng-transcribe-whisper-tiny.en', 'tasks.merge.eng-merge']);
  const other = new Harness(byModel);
  other.feed(created);
  other.started('prepare');
  other.completed('prepare', { audioDurationSeconds: 3 });
  assert.equal(topics(other)[1], 'tasks.transcribe.eng-transcribe-default', 'no model: the default engine, on its own queue');
});

test('a file longer than chunkSeconds is transcribed in parts dispatched together; merge waits for every part', () => {
  const h = new Harness({ ...settings, chunkSeconds: 600 });
  h.feed(created);
  h.started('prepare');
  h.completed('prepare', { audioDurationSeconds: 1500 });
  const parts = h.state?.tasks.filter((t) => t.stage.startsWith('transcribe')) ?? [];
  assert.deepEqual(parts.map((t) => [t.stage, t.config.chunkStart, t.config.chunkEnd]), [
    ['transcribe', 0, 500], ['transcribe_part1', 500, 1000], ['transcribe_part2', 1000, 1500],
  ], 'three parts of equal length, each within the limit, tiling the file');
  assert.equal(parts[0]?.taskId, 'task_1_transcribe', 'the first part keeps the transcribe task');
  assert.equal(new Set(parts.map((t) => t.taskId)).size, 3);
  assert.ok(parts.every((t) => t.engineId === 'eng-transcribe'));
  assert.deepEqual(h.dispatched(), ['prepare#1', 'transcribe#1', 'transcribe_part1#1', 'transcribe_part2#1'], 'all parts dispatched at once');
  const part2 = h.effects.find((e) => e.type === 'dispatch' && e.task.stage === 'transcribe_part2');
  assert.ok(part2?.type === 'dispatch');
  assert.equal(part2.topic, 'tasks.transcribe.eng-transcribe', 'parts share their engine\'s queue');
  assert.equal(part2.task.deadlineAt - part2.task.enqueuedAt, 1_500_000, 'a part\'s deadline is its own 500 s x factor 3, not the file\'s');
  assert.deepEqual(h.task('merge').dependsOn, ['prepare', 'transcribe', 'transcribe_part1', 'transcribe_part2']);

  for (const stage of ['transcribe', 'transcribe_part2']) {
    h.started(stage);
    h.completed(stage);
  }
  assert.equal(h.task('merge').status, 'pending', 'merge waits for the last part');
  h.started('transcribe_part1');
  h.completed('transcribe_part1');
  const merge = h.effects.find((e) => e.type === 'dispatch' && e.task.stage === 'merge');
  assert.ok(merge?.type === 'dispatch');
  assert.deepEqual(Object.keys(merge.task.inputs).sort(), ['audio', 'prepare', 'transcribe', 'transcribe_part1', 'transcribe_part2']);
  h.started('merge');
  h.completed('merge');
  assert.equal(h.state?.status, 'completed');
});

test('files within chunkSeconds, and every file when chunkSeconds is 0, stay one transcribe task', () => {
  for (const [chunkSeconds, duration] of [[600, 600], [600, 42], [0, 7200]] as const) {
    const h = new Harness({ ...settings, chunkSeconds });
    h.feed(created);
    h.started('prepare');
    h.completed('prepare', { audioDurationSeconds: duration });
    assert.deepEqual(h.state?.tasks.map((t) => t.stage), ['prepare', 'transcribe', 'merge'], `${duration} s with chunkSeconds ${chunkSeconds}`);
    assert.equal(h.task('transcribe').config.chunkEnd, undefined);
  }
});

test('a task that fails twice (retryable) then succeeds shows retries: 2 and waits out its back-off', () => {
  const h = new Harness();
  h.feed(created);
  h.started('prepare');
  h.failed('prepare', true);
  assert.equal(h.task('prepare').status, 'pending');
  assert.equal(h.task('prepare').retries, 1);
  assert.equal(nextWakeAt(h.state, settings), h.now + 1000);
  h.now += 999;
  assert.equal(h.feed({ type: 'timer' }), false, 'not yet');
  h.now += 1;
  h.feed({ type: 'timer' });
  assert.deepEqual(h.dispatched(), ['prepare#1', 'prepare#2']);
  h.started('prepare');
  h.failed('prepare', true);
  h.now += 2000;
  h.feed({ type: 'timer' });
  h.started('prepare');
  h.completed('prepare');
  assert.equal(h.task('prepare').retries, 2);
  assert.equal(h.task('prepare').attempts.length, 3);
  assert.equal(h.task('prepare').error, undefined, 'a task that finally succeeded carries no error');
  assert.equal(h.task('prepare').attempts[0]?.error?.message, 'boom', 'the failed attempts keep theirs');
  assert.equal(h.task('transcribe').status, 'ready');
});

test('a stage that keeps failing fails the job with its error; a non-retryable error fails at once', () => {
  const h = new Harness();
  h.feed(created);
  for (let i = 0; i < 3; i++) {
    h.started('prepare');
    h.failed('prepare', true);
    h.now += 10_000;
    h.feed({ type: 'timer' });
  }
  assert.equal(h.state?.status, 'failed');
  assert.equal(h.task('prepare').retries, 2);
  assert.match(h.state?.error?.message ?? '', /prepare failed: boom/);
  assert.equal(h.task('transcribe').status, 'skipped');

  const g = new Harness();
  g.feed(created);
  g.started('prepare');
  g.failed('prepare', false, 'DALSTON_ERR_INVALID_INPUT');
  assert.equal(g.state?.status, 'failed');
  assert.equal(g.task('prepare').retries, 0);
  assert.equal(g.state?.error?.code, 'DALSTON_ERR_INVALID_INPUT');
});

test('deadline and lost heartbeats end the attempt and retry it; stale results are ignored', () => {
  const h = new Harness();
  h.feed(created);
  h.started('prepare');
  const first = h.task('prepare');
  h.now += 15_000;
  assert.equal(nextWakeAt(h.state, settings), first.lastHeartbeatAt! + 15_000);
  h.feed({ type: 'timer' });
  assert.equal(h.task('prepare').retries, 1);
  assert.equal(h.task('prepare').error?.code, 'DALSTON_ERR_WORKER_LOST');
  assert.ok(h.effects.some((e) => e.type === 'cancel_task' && e.attempt === 1));
  // The lost worker's late result for attempt 1 must not count.
  const late = transition(h.state, {
    v, type: 'task.completed', jobId: 'job_1', taskId: first.taskId, attempt: 1, engineId: 'x', instanceId: 'i1', at: h.now,
    outputKey: 'late', metrics: { processingMs: 1, queueWaitMs: 1, modelLoadMs: 0 },
  }, { now: h.now, settings });
  assert.equal(late.changed, false);
  h.now += 1000;
  h.feed({ type: 'timer' });
  h.started('prepare');
  // heartbeats keep it alive; the deadline still ends it
  for (let i = 0; i < 5; i++) {
    h.now += 10_000;
    const t = h.task('prepare');
    h.feed({ v, type: 'task.heartbeat', jobId: 'job_1', taskId: t.taskId, attempt: t.attempt, instanceId: 'i1', at: h.now });
    h.feed({ type: 'timer' });
  }
  assert.equal(h.task('prepare').retries, 1, 'heartbeats within 15 s keep the task');
  h.now += 10_000;
  h.feed({ type: 'timer' });
  assert.equal(h.task('prepare').error?.code, 'DALSTON_ERR_TIMEOUT');
  assert.equal(h.task('prepare').retries, 2);
});

test('a start of an attempt the job is done with changes nothing and tells that engine to stop; a live attempt is never cancelled', () => {
  const h = new Harness();
  h.feed(created);
  h.started('prepare');
  const prepare = h.task('prepare');
  const startOf = (attempt: number, task: { taskId: string; engineId: string } = prepare): ActorInput => ({
    v, type: 'task.started', jobId: 'job_1', taskId: task.taskId, attempt, engineId: task.engineId, instanceId: 'i2', at: h.now, queueWaitMs: 1,
  });
  const cancels = (r: { effects: readonly Effect[] }) => r.effects.flatMap((e) => (e.type === 'cancel_task' ? [`${e.taskId}#${e.attempt}`] : []));
  // The running attempt started again (a second delivery of its dispatch): no cancel, it may be the live one.
  assert.deepEqual(cancels(transition(h.state, startOf(1), { now: h.now, settings })), []);
  h.completed('prepare');
  // The same attempt after the task completed: a redelivered dispatch another engine took.
  const redelivered = transition(h.state, startOf(1), { now: h.now, settings });
  assert.equal(redelivered.changed, false);
  assert.equal(redelivered.state, h.state, 'the state is untouched');
  assert.deepEqual(cancels(redelivered), [`${prepare.taskId}#1`]);
  // An attempt a later one replaced: transcribe's attempt 1 lost its worker, attempt 2 runs; 1 starts again somewhere.
  h.started('transcribe');
  const transcribe = h.task('transcribe');
  h.now += 15_000;
  h.feed({ type: 'timer' });
  h.now += 1000;
  h.feed({ type: 'timer' });
  assert.equal(h.task('transcribe').attempt, 2);
  const old = transition(h.state, startOf(1, transcribe), { now: h.now, settings });
  assert.equal(old.changed, false);
  assert.deepEqual(cancels(old), [`${transcribe.taskId}#1`]);
  // A task not known to the job is not this job's business.
  assert.deepEqual(cancels(transition(h.state, startOf(1, { taskId: 'task_unknown', engineId: prepare.engineId }), { now: h.now, settings })), []);
});

test('cancelling a queued job ends it at once; a running job goes through cancelling', () => {
  const q = new Harness();
  q.feed(created);
  q.feed({ v, type: 'job.cancel_requested', jobId: 'job_1', at: q.now });
  assert.equal(q.state?.status, 'cancelled');
  assert.ok(q.state?.tasks.every((t) => t.status === 'cancelled'));

  const r = new Harness();
  r.feed(created);
  r.started('prepare');
  r.completed('prepare');
  r.started('transcribe');
  r.feed({ v, type: 'job.cancel_requested', jobId: 'job_1', at: r.now });
  assert.equal(r.state?.status, 'cancelling');
  assert.ok(r.effects.some((e) => e.type === 'cancel_task' && e.taskId === r.task('transcribe').taskId));
  assert.equal(r.task('merge').status, 'cancelled');
  r.failed('transcribe', false, 'DALSTON_ERR_CANCELLED');
  assert.equal(r.state?.status, 'cancelled');
  assert.equal(r.task('transcribe').status, 'cancelled');
  assert.equal(r.effects.filter((e) => e.type === 'job_finished').length, 1);
  assert.equal(r.feed({ v, type: 'job.cancel_requested', jobId: 'job_1', at: r.now }), false);
});

test('events for an unknown job are ignored', () => {
  const r = transition(undefined, { v, type: 'job.cancel_requested', jobId: 'nope', at: 1 }, { now: 1, settings });
  assert.equal(r.state, undefined);
  assert.equal(r.changed, false);
});

test('a released task (its engine shut down) is dispatched again at once as the next attempt, without spending a retry', () => {
  const h = new Harness();
  h.feed(created);
  h.started('prepare');
  const t = h.task('prepare');
  const changed = h.feed({ v, type: 'task.released', jobId: 'job_1', taskId: t.taskId, attempt: 1, engineId: t.engineId, instanceId: 'i1', at: h.now, reason: 'shutdown' });
  assert.equal(changed, true);
  assert.deepEqual(h.dispatched(), ['prepare#1', 'prepare#2']);
  assert.equal(h.task('prepare').retries, 0);
  assert.equal(h.task('prepare').attempts.at(-1)?.outcome, 'released');
  // A late result of the released attempt changes nothing.
  assert.equal(h.feed({ v, type: 'task.released', jobId: 'job_1', taskId: t.taskId, attempt: 1, engineId: t.engineId, instanceId: 'i1', at: h.now, reason: 'again' }), false);
});

test('a ready task that no engine picks up fails the job after the queue timeout, with a cancel for the queued dispatch', () => {
  const h = new Harness();
  h.feed(created);
  assert.equal(nextWakeAt(h.state, settings), 1000 + settings.queueTimeoutMs);
  h.now += settings.queueTimeoutMs - 1;
  assert.equal(h.feed({ type: 'timer' }), false, 'not before the timeout');
  h.now += 1;
  assert.equal(h.feed({ type: 'timer' }), true);
  assert.equal(h.state?.status, 'failed');
  assert.equal(h.state?.error?.code, 'DALSTON_ERR_QUEUE_TIMEOUT');
  assert.ok(h.effects.some((e) => e.type === 'cancel_task' && e.taskId === h.task('prepare').taskId));
  assert.equal(h.task('transcribe').status, 'skipped');
});

test('a heartbeat changes the state in memory only (not durable, no new revision)', () => {
  const h = new Harness();
  h.feed(created);
  h.started('prepare');
  const before = h.state;
  h.now += 2000;
  const t = h.task('prepare');
  const r = transition(before, { v, type: 'task.heartbeat', jobId: 'job_1', taskId: t.taskId, attempt: 1, instanceId: 'i1', at: h.now }, { now: h.now, settings });
  assert.equal(r.changed, true);
  assert.equal(r.durable, false);
  assert.equal(r.state?.revision, before?.revision);
  assert.equal(r.state?.tasks.find((x) => x.taskId === t.taskId)?.lastHeartbeatAt, h.now);
});

test('a restored actor gives running tasks a fresh heartbeat window, so a stale last beat is not a lost worker', () => {
  const h = new Harness();
  h.feed(created);
  h.started('prepare');
  h.now += 20_000; // past the 15 s heartbeat timeout, within the task's 60 s deadline
  const restored = restoredState(h.state!, h.now);
  const r = transition(restored, { type: 'timer' }, { now: h.now, settings });
  assert.equal(r.changed, false, 'no worker-lost failure right after the takeover');
  assert.equal(nextWakeAt(restored, settings), h.now + settings.heartbeatTimeoutMs);
  // Without the grace, the same timer declares the worker lost.
  assert.equal(transition(h.state, { type: 'timer' }, { now: h.now, settings }).changed, true);
});

test('the 60 s deadline floor: with the default configuration no task gets less than 60 s, however short its audio', () => {
  const defaults = transitionSettings(loadConfig({}), settings.engines);
  assert.equal(defaults.minTaskTimeoutMs, 60_000, 'DALSTON_TASK_MIN_TIMEOUT_SECONDS defaults to 60');
  assert.deepEqual(defaults.engineTimeFactor, ENGINE_TIME_FACTOR);
  const h = new Harness(defaults);
  h.feed(created);
  const deadlineOf = (stage: string): number => {
    const d = [...h.effects].reverse().find((e) => e.type === 'dispatch' && e.task.stage === stage);
    assert.ok(d?.type === 'dispatch', `a ${stage} dispatch`);
    return d.task.deadlineAt - d.task.enqueuedAt;
  };
  assert.equal(deadlineOf('prepare'), 60_000, 'no duration known yet: the floor');
  h.started('prepare');
  assert.equal(h.task('prepare').deadlineAt, h.now + 60_000);
  h.completed('prepare', { audioDurationSeconds: 2 }); // 2 s × 3 = 6 s: the floor wins
  assert.equal(deadlineOf('transcribe'), 60_000);
  // The running attempt's timer: still alive a millisecond before 60 s, timed out at 60 s (heartbeats keep it otherwise healthy).
  h.started('transcribe');
  const started = h.now;
  const beat = (): void => {
    const t = h.task('transcribe');
    h.feed({ v, type: 'task.heartbeat', jobId: 'job_1', taskId: t.taskId, attempt: t.attempt, instanceId: 'i1', at: h.now });
  };
  for (let at = started + 10_000; at < started + 60_000; at += 10_000) {
    h.now = at;
    beat();
  }
  h.now = started + 59_999;
  assert.equal(h.feed({ type: 'timer' }), false, 'no timeout before 60 s');
  assert.equal(h.task('transcribe').status, 'running');
  h.now = started + 60_000;
  assert.equal(h.feed({ type: 'timer' }), true);
  const timedOut = h.task('transcribe').attempts.at(-1);
  assert.equal(timedOut?.outcome, 'timed_out');
  assert.equal(timedOut?.error?.message, 'task exceeded its deadline of 60 s');

  // The function itself, over durations around the floor (transcribe ×3; stages without a factor ×1).
  const state = h.state;
  assert.ok(state);
  const { audioDurationSeconds: _known, ...unmeasured } = state;
  const deadline = (stage: string, seconds: number | undefined): number =>
    taskTimeoutMs(seconds === undefined ? unmeasured : { ...state, audioDurationSeconds: seconds }, { ...h.task('prepare'), stage }, defaults);
  for (const stage of ['prepare', 'vad', 'transcribe', 'transcribe_ch1', 'merge']) {
    for (const seconds of [undefined, 0, 0.5, 1, 19.9]) assert.equal(deadline(stage, seconds), 60_000, `${stage}, ${String(seconds)} s of audio`);
  }
  assert.equal(deadline('transcribe', 20.5), 61_500, 'past the floor, audio × 3');
  assert.equal(deadline('transcribe_ch1', 30), 90_000, 'a channel uses its stage\'s factor');
  assert.equal(deadline('prepare', 61), 61_000);
  assert.equal(deadline('vad', 59), 60_000, 'a stage without a factor: × 1');
  // A configured floor is honoured the same way.
  assert.equal(taskTimeoutMs({ ...state, audioDurationSeconds: 1 }, h.task('merge'), transitionSettings(loadConfig({ DALSTON_TASK_MIN_TIMEOUT_SECONDS: '90' }), settings.engines)), 90_000);
});

test('DALSTON_TASK_MAX_RETRIES bounds the retries of a stage that keeps failing: N retries (back-off doubling), then the job fails', () => {
  for (const env of [{}, { DALSTON_TASK_MAX_RETRIES: '0' }, { DALSTON_TASK_MAX_RETRIES: '1' }, { DALSTON_TASK_MAX_RETRIES: '4' }]) {
    // The settings as actors/main.ts builds them from the configuration.
    const config = loadConfig(env);
    const maxRetries = config.taskMaxRetries;
    const s: TransitionSettings = { ...settings, maxRetries, retryBaseDelayMs: config.retryBaseDelayMs };
    let state: JobState | undefined;
    let now = 1000;
    const dispatches: number[] = [];
    const waits: number[] = [];
    const feed = (input: ActorInput): void => {
      const r = transition(state, input, { now, settings: s });
      state = r.state;
      for (const e of r.effects) if (e.type === 'dispatch' && e.task.stage === 'prepare') dispatches.push(e.task.attempt);
    };
    const prepare = () => {
      const t = state?.tasks.find((x) => x.stage === 'prepare');
      assert.ok(t);
      return t;
    };
    feed(created);
    for (let failure = 1; failure <= maxRetries + 1; failure++) {
      assert.equal(state?.status === 'failed', false, `${maxRetries} retries: still trying before failure ${failure}`);
      const t = prepare();
      feed({ v, type: 'task.started', jobId: 'job_1', taskId: t.taskId, attempt: t.attempt, engineId: t.engineId, instanceId: 'i1', at: now, queueWaitMs: 1 });
      feed({
        v, type: 'task.failed', jobId: 'job_1', taskId: t.taskId, attempt: t.attempt, engineId: t.engineId, instanceId: 'i1', at: now,
        error: { name: 'EngineError', code: 'DALSTON_ERR_ENGINE', message: 'boom', retryable: true }, processingMs: 1,
      });
      if (state?.status === 'failed') break;
      const wake = nextWakeAt(state, s);
      assert.ok(wake !== undefined, 'a retry is scheduled');
      waits.push(wake - now);
      now = wake;
      feed({ type: 'timer' });
    }
    const label = `DALSTON_TASK_MAX_RETRIES=${maxRetries}`;
    assert.equal(state?.status, 'failed', label);
    assert.deepEqual(dispatches, Array.from({ length: maxRetries + 1 }, (_, i) => i + 1), `${label}: one first attempt and ${maxRetries} retries`);
    assert.equal(prepare().retries, maxRetries, label);
    assert.equal(prepare().attempts.length, maxRetries + 1, label);
    assert.deepEqual(waits, Array.from({ length: maxRetries }, (_, i) => 1000 * 2 ** i), `${label}: back-off from DALSTON_TASK_RETRY_DELAY_MS, doubling`);
    assert.match(state?.error?.message ?? '', /prepare failed: boom/);
  }
  assert.equal(loadConfig({}).taskMaxRetries, 2, 'the default checked above is 2');
});
