/**
 * The per-tenant request limit: the limit table, and a counter that knows what every gateway counted in the current
 * minute. `take` counts one request and says whether it fits; the request handler answers 429 with Retry-After when
 * it does not. Tenants without a limit are not counted at all.
 */
import { decideRequest, windowOf, type RateDecision } from './request-window.js';
import type { TenantLimitTable } from './tenant-limits.js';

/** Requests counted per tenant and window, by this gateway and (as last heard) by the others. */
export interface RequestCounter {
  counted(tenantId: string, window: number): number;
  add(tenantId: string, window: number): void;
}

export class RequestLimiter {
  constructor(
    private readonly table: TenantLimitTable,
    private readonly counter: RequestCounter,
  ) {}

  /** Undefined when the tenant has no request limit; otherwise the decision (counted only when allowed). */
  take(tenantId: string, now: number): RateDecision | undefined {
    const limit = this.table.limitsFor(tenantId).requestsPerMinute;
    if (limit <= 0) return undefined;
    const window = windowOf(now);
    const decision = decideRequest(this.counter.counted(tenantId, window), limit, now);
    if (decision.allowed) this.counter.add(tenantId, window);
    return decision;
  }
}

/** A counter of one process alone (tests of the gateway's logic). */
export class LocalRequestCounter implements RequestCounter {
  readonly #counts = new Map<string, number>();

  counted(tenantId: string, window: number): number {
    return this.#counts.get(`${tenantId}|${window}`) ?? 0;
  }

  add(tenantId: string, window: number): void {
    const k = `${tenantId}|${window}`;
    this.#counts.set(k, (this.#counts.get(k) ?? 0) + 1);
  }
}
