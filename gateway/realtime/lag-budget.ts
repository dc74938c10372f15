/**
 * The lag budget of one session, pure: audio received by the gateway minus audio the engine reported processed
 * (`rt.progress`). Past `warnSeconds` the client gets one warning per excursion; held past `closeSeconds` for
 * `holdMs` the session is closed (4010): the server cannot keep up.
 *
 * Failover grace: when the engine owning the session dies, its partition moves to another instance (Kafka's
 * session timeout plus a rebalance, ~6–10 s here) and no progress arrives at all meanwhile, while audio keeps
 * coming — the lag grows for a reason that heals itself (the new owner re-reads the open utterance and catches up
 * quickly). So while progress is silent the close waits for `silenceGraceMs` (20 s: two failovers' worth) of
 * silence instead of `holdMs` of lag; an engine that sends progress but falls behind is closed on the normal rule.
 *
 * Catching up is keeping up: while the lag past closeSeconds shrinks (by `catchUpSeconds` since the hold began, e.g.
 * an engine re-reading after a failover, or one past a burst of load) the hold starts again; only a lag that stays
 * or grows for `holdMs` closes.
 */
export interface LagBudgetOptions {
  readonly warnSeconds: number;
  readonly closeSeconds: number;
  /** How long the lag must stay past closeSeconds (progress flowing). @default 5000 */
  readonly holdMs?: number;
  /** Progress arrives about twice a second; none for this long counts as silence (failover). @default 3000 */
  readonly silenceAfterMs?: number;
  /** Silence tolerated before a lag past closeSeconds closes. @default 20000 */
  readonly silenceGraceMs?: number;
  /** A lag this much smaller than when the hold began restarts the hold (the engine is catching up). @default 1 */
  readonly catchUpSeconds?: number;
}

export interface LagState {
  /** Seconds of audio the gateway received. */
  readonly receivedSeconds: number;
  readonly processedSeconds: number;
  /** Last progress (or the first audio, before any progress), epoch ms. */
  readonly lastProgressAt: number;
  /** Since when the lag has been past closeSeconds without catching up, or undefined. */
  readonly overSince: number | undefined;
  /** The lag (seconds) when the current hold began. */
  readonly overLag?: number;
  /** A warning was sent for the current excursion past warnSeconds. */
  readonly warned: boolean;
}

export type LagVerdict = 'ok' | 'warn' | 'close';

export function initialLag(now: number): LagState {
  return { receivedSeconds: 0, processedSeconds: 0, lastProgressAt: now, overSince: undefined, warned: false };
}

export function onAudio(s: LagState, seconds: number): LagState {
  return { ...s, receivedSeconds: s.receivedSeconds + seconds };
}

export function onProgress(s: LagState, processedSeconds: number, now: number): LagState {
  return { ...s, processedSeconds: Math.max(s.processedSeconds, processedSeconds), lastProgressAt: now };
}

export function lagSeconds(s: LagState): number {
  return Math.max(0, s.receivedSeconds - s.processedSeconds);
}

/** Evaluates at `now`: the next state and what to do now (`warn` at most once per excursion). */
export function evaluateLag(s: LagState, now: number, o: LagBudgetOptions): { state: LagState; verdict: LagVerdict } {
  const holdMs = o.holdMs ?? 5000;
  const silenceAfterMs = o.silenceAfterMs ?? 3000;
  const graceMs = o.silenceGraceMs ?? 20_000;
  const catchUp = o.catchUpSeconds ?? 1;
  const lag = lagSeconds(s);
  if (lag <= o.warnSeconds) return { state: { ...s, overSince: undefined, overLag: undefined, warned: false }, verdict: 'ok' };
  const silentFor = now - s.lastProgressAt;
  let overSince: number | undefined;
  let overLag: number | undefined;
  let close: boolean;
  if (silentFor >= silenceAfterMs) {
    // Failover: silence does not count toward the hold; only a silence longer than the grace closes.
    close = lag > o.closeSeconds && silentFor >= graceMs;
  } else if (lag > o.closeSeconds) {
    // A new excursion, or one shrinking since its hold began (catching up): the hold starts now.
    const restart = s.overSince === undefined || s.overLag === undefined || lag <= s.overLag - catchUp;
    overSince = restart ? now : s.overSince;
    overLag = restart ? lag : s.overLag;
    close = now - overSince >= holdMs;
  } else {
    close = false;
  }
  const state: LagState = { ...s, overSince, overLag, warned: true };
  if (close) return { state, verdict: 'close' };
  return { state, verdict: s.warned ? 'ok' : 'warn' };
}
