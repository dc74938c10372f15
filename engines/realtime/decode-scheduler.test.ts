import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { ManualClock } from '../../core/clock.js';
import { CancelledError } from '../../core/errors.js';
import type { DecodeRequest, GateOutcome } from '../streaming/decode-gate.js';
import { DecodeScheduler } from './decode-scheduler.js';

/** A fake decode the test finishes by hand; `started` records the order the scheduler started them in. */
function harness(options: { concurrency?: number; partialMaxWaitMs?: number } = {}) {
  const clock = new ManualClock(1000);
  /** Timers fire only when the test says so. */
  const timers: { fn: () => void; ms: number; cancelled: boolean }[] = [];
  const setTimer = (fn: () => void, ms: number) => {
    const t = { fn, ms, cancelled: false };
    timers.push(t);
    return { cancel: () => { t.cancelled = true; } };
  };
  const scheduler = new DecodeScheduler({ clock, setTimer, ...options });
  const started: string[] = [];
  const finishers = new Map<string, () => void>();
  const submit = (name: string, request: DecodeRequest, signal?: AbortSignal): Promise<GateOutcome<string>> =>
    scheduler.run(request, () => {
      started.push(name);
      return new Promise<string>((resolve) => finishers.set(name, () => resolve(name)));
    }, signal);
  const finish = async (name: string): Promise<void> => {
    const f = finishers.get(name);
    assert.ok(f, `${name} is running`);
    f();
    await tick();
  };
  return { clock, scheduler, started, submit, finish, timers };
}

const partial = (estimatedMs = 50, firstOfUtterance = false): DecodeRequest => ({ kind: 'partial', estimatedMs, firstOfUtterance });
const final = (estimatedMs = 50): DecodeRequest => ({ kind: 'final', estimatedMs });

test('one decode at a time by default; a final queued behind partials of other sessions runs next', async () => {
  const h = harness({ partialMaxWaitMs: 10_000 });
  const a = h.submit('partial-a', partial());
  const b = h.submit('partial-b', partial());
  const c = h.submit('partial-c', partial());
  const f = h.submit('final-d', final());
  await tick();
  assert.deepEqual(h.started, ['partial-a'], 'only one runs');
  await h.finish('partial-a');
  assert.deepEqual(h.started, ['partial-a', 'final-d'], 'the final goes before the partials that were waiting');
  await h.finish('final-d');
  await h.finish('partial-b');
  await h.finish('partial-c');
  assert.deepEqual(h.started, ['partial-a', 'final-d', 'partial-b', 'partial-c'], 'partials oldest first');
  for (const p of [a, b, c, f]) assert.equal((await p).ran, true);
});

test('finals run oldest first among themselves', async () => {
  const h = harness();
  void h.submit('running', final());
  void h.submit('final-1', final());
  void h.submit('final-2', final());
  void h.submit('final-3', final());
  await h.finish('running');
  await h.finish('final-1');
  await h.finish('final-2');
  assert.deepEqual(h.started, ['running', 'final-1', 'final-2', 'final-3']);
});

test('an utterance\'s first partial goes before later partials of other sessions, after finals', async () => {
  const h = harness({ partialMaxWaitMs: 10_000 });
  void h.submit('running', final());
  void h.submit('later-a', partial());
  void h.submit('first-b', partial(20, true));
  void h.submit('final-c', final());
  await h.finish('running');
  await h.finish('final-c');
  await h.finish('first-b');
  assert.deepEqual(h.started, ['running', 'final-c', 'first-b', 'later-a']);
});

test('a partial that would wait longer than the limit gives way at once; a final in the same place is queued', async () => {
  const h = harness({ partialMaxWaitMs: 300 });
  void h.submit('running', final(400));
  const dropped = await h.submit('partial', partial());
  assert.deepEqual(dropped, { ran: false, queuedMs: 0 }, 'the work ahead (400 ms) is over the limit');
  const f = h.submit('final', final());
  h.clock.advance(400);
  await h.finish('running');
  await h.finish('final');
  assert.deepEqual(await f, { ran: true, value: 'final', queuedMs: 400 }, 'finals are never dropped, whatever they waited');
  assert.deepEqual(h.started, ['running', 'final'], 'the dropped partial never ran');
  assert.equal(h.scheduler.stats.dropped, 1);
});

test('the running decode\'s estimate counts only what is left of it', async () => {
  const h = harness({ partialMaxWaitMs: 300 });
  void h.submit('running', final(400));
  h.clock.advance(200);
  const p = h.submit('partial', partial());
  assert.equal(h.scheduler.predictedWaitMs(partial()), 250, '200 ms left of the running one, 50 ms of the queued partial');
  h.clock.advance(200);
  await h.finish('running');
  assert.deepEqual(h.started, ['running', 'partial']);
  await h.finish('partial');
  assert.deepEqual(await p, { ran: true, value: 'partial', queuedMs: 200 });
});

test('a queued partial that finals pushed past the limit gives way at its turn', async () => {
  const h = harness({ partialMaxWaitMs: 300 });
  void h.submit('running', final(100));
  const p = h.submit('partial', partial());
  void h.submit('final-late', final(100));
  h.clock.advance(250);
  await h.finish('running');
  assert.deepEqual(h.started, ['running', 'final-late'], 'the final that came later still runs first');
  h.clock.advance(100);
  await h.finish('final-late');
  assert.deepEqual(await p, { ran: false, queuedMs: 350 });
  assert.deepEqual(h.started, ['running', 'final-late']);
});

test('with two slots two decodes run together, and a final takes the first free one', async () => {
  const h = harness({ concurrency: 2, partialMaxWaitMs: 10_000 });
  void h.submit('p1', partial());
  void h.submit('p2', partial());
  void h.submit('p3', partial());
  void h.submit('f', final());
  await tick();
  assert.deepEqual(h.started, ['p1', 'p2']);
  await h.finish('p2');
  assert.deepEqual(h.started, ['p1', 'p2', 'f']);
});

test('queueDelayMs averages the waits decodes met and fades while none do', async () => {
  const h = harness({ partialMaxWaitMs: 10_000 });
  assert.equal(h.scheduler.queueDelayMs(), 0);
  void h.submit('running', final());
  void h.submit('waiting', final());
  h.clock.advance(500);
  await h.finish('running');
  assert.equal(h.scheduler.queueDelayMs(), 100, 'one wait of 500 ms, weight 0.2, over a first wait of 0');
  await h.finish('waiting');
  h.clock.advance(2000);
  assert.equal(h.scheduler.queueDelayMs(), 50, 'halved after 2 s without decodes');
});

test('a decode whose session goes away while it waits is cancelled and never runs', async () => {
  const h = harness({ partialMaxWaitMs: 10_000 });
  void h.submit('running', final());
  const abort = new AbortController();
  const p = h.submit('gone', final(), abort.signal);
  abort.abort();
  await assert.rejects(p, CancelledError);
  await h.finish('running');
  assert.deepEqual(h.started, ['running']);
  assert.equal(h.scheduler.stats.queuedFinals, 0);
});

test('a failed decode rejects its caller and frees its slot', async () => {
  const clock = new ManualClock(0);
  const scheduler = new DecodeScheduler({ clock });
  const failed = scheduler.run(final(), () => Promise.reject(new Error('onnx failed')));
  const next = scheduler.run(final(), () => Promise.resolve('ok'));
  await assert.rejects(failed, /onnx failed/);
  assert.deepEqual(await next, { ran: true, value: 'ok', queuedMs: 0 });
});

test('a partial still queued at its limit gives way by its timer, while a long decode runs', async () => {
  const h = harness({ partialMaxWaitMs: 300 });
  void h.submit('running', final(200));
  const p = h.submit('partial', partial());
  assert.equal(h.timers.length, 1, 'one timer, for the queued partial');
  assert.equal(h.timers[0]?.ms, 301);
  h.clock.advance(301);
  h.timers[0]?.fn();
  assert.deepEqual(await p, { ran: false, queuedMs: 301 }, 'the session learns at once, not when the running decode ends');
  await h.finish('running');
  assert.deepEqual(h.started, ['running']);
  assert.equal(h.scheduler.stats.queuedPartials, 0);
});

test('a partial that started cancels its timer', async () => {
  const h = harness({ partialMaxWaitMs: 300 });
  void h.submit('running', final(100));
  void h.submit('partial', partial());
  await h.finish('running');
  assert.deepEqual(h.started, ['running', 'partial']);
  assert.equal(h.timers[0]?.cancelled, true);
});
