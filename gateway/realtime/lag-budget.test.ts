import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluateLag, initialLag, onAudio, onProgress, type LagBudgetOptions, type LagState } from './lag-budget.js';

const o: LagBudgetOptions = { warnSeconds: 3, closeSeconds: 5, holdMs: 5000, silenceAfterMs: 3000, silenceGraceMs: 20_000 };

/** Feeds one second of audio per step; the engine reports `processed(t)` (undefined: no progress that second). */
function run(seconds: number, processed: (t: number) => number | undefined): { verdicts: string[]; state: LagState } {
  let s = initialLag(0);
  const verdicts: string[] = [];
  for (let t = 1; t <= seconds; t++) {
    const now = t * 1000;
    s = onAudio(s, 1);
    const p = processed(t);
    if (p !== undefined) s = onProgress(s, p, now);
    const r = evaluateLag(s, now, o);
    s = r.state;
    verdicts.push(r.verdict);
  }
  return { verdicts, state: s };
}

void test('an engine keeping up: never a warning', () => {
  assert.ok(run(60, (t) => t - 0.5).verdicts.every((v) => v === 'ok'));
});

void test('lag past warn: one warning per excursion, none while it lasts, another after it healed and came back', () => {
  const { verdicts } = run(30, (t) => (t <= 10 ? t - 4 : t <= 20 ? t - 1 : t - 4));
  assert.equal(verdicts.filter((v) => v === 'warn').length, 2);
  assert.ok(!verdicts.includes('close'));
});

void test('an engine that reports progress but falls behind past close is closed after the hold', () => {
  const { verdicts } = run(20, (t) => t / 4);
  const firstOver = 7; // lag = 0.75 t > 5 from t = 7
  assert.equal(verdicts.indexOf('close') + 1, firstOver + 5);
});

void test('failover: no progress at all for 10 s is not a breach; progress then catches up and the session lives', () => {
  const { verdicts } = run(30, (t) => (t >= 5 && t < 15 ? undefined : t));
  assert.ok(!verdicts.includes('close'));
  assert.ok(verdicts.includes('warn'));
});

void test('silence longer than the grace period with lag past close closes', () => {
  const { verdicts } = run(40, (t) => (t < 5 ? t : undefined));
  assert.equal(verdicts.indexOf('close') + 1, 4 + 20);
});

void test('silence does not count toward the hold once progress resumes behind', () => {
  // 10 s silent, then progress far behind: the hold starts when progress resumes.
  const { verdicts } = run(40, (t) => (t < 5 ? t : t < 15 ? undefined : 2));
  assert.equal(verdicts.indexOf('close') + 1, 15 + 5);
});

void test('an engine catching up from far behind is not closed: the hold starts again while the lag shrinks', () => {
  // A failover: silent from t = 5 to 14; from t = 15 the new owner re-reads at 1.5 s of audio per second, so the lag
  // (10 s) shrinks by 0.5 s a second and stays past close (5 s) until t = 25, longer than the 5 s hold.
  const { verdicts } = run(40, (t) => (t < 5 ? t : t < 15 ? undefined : 5 + (t - 15) * 1.5));
  assert.ok(!verdicts.includes('close'), verdicts.join(','));
});

void test('a lag that stays past close without shrinking by catchUpSeconds closes after the hold', () => {
  // Progress each second, always 8 s behind: no catching up, so the hold runs out 5 s after the lag passed close.
  const { verdicts } = run(30, (t) => Math.max(0, t - 8));
  assert.equal(verdicts.indexOf('close') + 1, 6 + 5);
});
