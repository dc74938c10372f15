/**
 * The per-minute request limit as arithmetic: a fixed window per UTC minute. Every gateway counts its own requests
 * and learns the others' counts through Kafka (adapters/kafka-request-counter.ts); this decides one request from the
 * sum. Pure.
 */
export const WINDOW_MS = 60_000;

export function windowOf(now: number): number {
  return Math.floor(now / WINDOW_MS);
}

export interface RateDecision {
  readonly allowed: boolean;
  readonly limit: number;
  /** Requests left in the window after this one (0 when refused). */
  readonly remaining: number;
  /** Whole seconds until the window ends (at least 1). */
  readonly resetSeconds: number;
}

/** Whether one more request fits when `counted` were already made in the window (by every gateway). */
export function decideRequest(counted: number, limit: number, now: number): RateDecision {
  const resetSeconds = Math.max(1, Math.ceil(((windowOf(now) + 1) * WINDOW_MS - now) / 1000));
  if (counted >= limit) return { allowed: false, limit, remaining: 0, resetSeconds };
  return { allowed: true, limit, remaining: limit - counted - 1, resetSeconds };
}

/** The headers every answer under a limit carries (`X-RateLimit-Reset`: seconds until the window ends). */
export function rateHeaders(d: RateDecision): Record<string, string> {
  return { 'x-ratelimit-limit': String(d.limit), 'x-ratelimit-remaining': String(d.remaining), 'x-ratelimit-reset': String(d.resetSeconds) };
}
