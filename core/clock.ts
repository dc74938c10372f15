/** Time is injected so actors and timers can be driven by a simulated clock in tests. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** A pending timer; cancel() is idempotent and harmless after it fired. */
export interface Timer {
  cancel(): void;
}

/** A clock that can also run a function later: code whose behaviour depends on waiting takes one of these. */
export interface TimerClock extends Clock {
  /** Runs `fn` once, `ms` milliseconds from now on this clock. */
  setTimer(fn: () => void, ms: number): Timer;
}

export const systemClock: TimerClock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

interface ManualTimer {
  readonly due: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told to. Its timers fire inside advance()/set(), in due order (ties in the order
 * they were set), with now() reading each timer's due time while it runs; a timer set by a firing one fires in
 * the same advance() if it falls due within it.
 */
export class ManualClock implements TimerClock {
  #timers: ManualTimer[] = [];
  #seq = 0;

  constructor(private current = 0) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.set(this.current + ms);
  }
  set(ms: number): void {
    for (;;) {
      const next = this.#timers.filter((t) => !t.cancelled && t.due <= ms).sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (next === undefined) break;
      next.cancelled = true;
      this.#timers = this.#timers.filter((t) => t !== next);
      this.current = Math.max(this.current, next.due);
      next.fn();
    }
    this.current = ms;
  }
  setTimer(fn: () => void, ms: number): Timer {
    const timer: ManualTimer = { due: this.current + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
        this.#timers = this.#timers.filter((t) => t !== timer);
      },
    };
  }
  /** Delays from now until each pending timer is due, soonest first. */
  pendingTimers(): number[] {
    return this.#timers.map((t) => t.due - this.current).sort((a, b) => a - b);
  }
}
