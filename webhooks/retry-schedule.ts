/**
 * When a failed delivery is tried again: exponential back-off from `baseMs`, capped at `maxDelayMs`, with jitter so
 * the retries of many deliveries that failed together (a receiver's outage) do not all return at once. The jitter
 * keeps at least half the back-off ("equal jitter"): a retry never comes much sooner than the schedule says.
 */
export interface RetryPolicy {
  readonly baseMs: number;
  readonly maxDelayMs: number;
  /** Attempts in all, the first included, before the delivery is given up as failed. */
  readonly maxAttempts: number;
}

/** Delay before the attempt after `failedAttempt` (1-based), or undefined when no attempt is left. */
export function retryDelayMs(failedAttempt: number, policy: RetryPolicy, random: () => number = Math.random): number | undefined {
  if (failedAttempt >= policy.maxAttempts) return undefined;
  const backoff = Math.min(policy.maxDelayMs, policy.baseMs * 2 ** (failedAttempt - 1));
  return Math.round(backoff / 2 + random() * (backoff / 2));
}
