/**
 * Per-tenant concurrency limits (batch jobs, real-time sessions), holding across gateways. A new job or session
 * first appends a claim to `tenants.usage` and reads the topic back to it, so two gateways admitting at the same
 * moment are ordered by the log. What runs is then: what ClickHouse shows as running for the tenant, plus the claims
 * of the last minute that ClickHouse does not show yet (its rows arrive a second or two after the job or session
 * starts). Over the limit, the claim is withdrawn and the caller refuses with 429.
 */
import type { AdmissionKind } from '../../streams/index.js';
import type { TenantLimitTable } from './tenant-limits.js';

/** The ordered claims of `tenants.usage` (adapters/kafka-usage-ledger.ts). */
export interface AdmissionLedger {
  /**
   * Appends a claim for `id` and resolves once it is read back, with the ids of the same tenant's and kind's claims
   * that precede it within the last `recentMs` and were not withdrawn.
   */
  claim(tenantId: string, kind: AdmissionKind, id: string): Promise<readonly string[]>;
  /** Gives a refused claim back. */
  withdraw(tenantId: string, kind: AdmissionKind, id: string): void;
}

/** What the tenant runs, as ClickHouse knows it (adapters/clickhouse-active-work.ts). */
export interface ActiveWork {
  /**
   * `running`: ids of the tenant's jobs (or sessions) not yet ended; `known`: which of `candidates` ClickHouse has a
   * row for at all (a claim it has no row for has not reached it yet and counts as running).
   */
  active(tenantId: string, kind: AdmissionKind, candidates: readonly string[]): Promise<{ running: ReadonlySet<string>; known: ReadonlySet<string> }>;
}

export interface ConcurrencyRefusal {
  readonly kind: AdmissionKind;
  readonly limit: number;
  readonly running: number;
  readonly retryAfterSeconds: number;
}

/** How long a claim counts without a ClickHouse row (the sink writes within seconds; this is ample). */
export const CLAIM_RECENT_MS = 60_000;

export class ConcurrencyAdmission {
  constructor(
    private readonly table: TenantLimitTable,
    private readonly ledger: AdmissionLedger,
    private readonly work: ActiveWork,
  ) {}

  /** Undefined when `id` may start (or the tenant has no such limit); otherwise the refusal. */
  async admit(tenantId: string, kind: AdmissionKind, id: string): Promise<ConcurrencyRefusal | undefined> {
    const limits = this.table.limitsFor(tenantId);
    const limit = kind === 'job' ? limits.concurrentJobs : limits.concurrentSessions;
    if (limit <= 0) return undefined;
    const before = await this.ledger.claim(tenantId, kind, id);
    const { running, known } = await this.work.active(tenantId, kind, before);
    const count = countRunning(running, known, before);
    if (count < limit) return undefined;
    this.ledger.withdraw(tenantId, kind, id);
    return { kind, limit, running: count, retryAfterSeconds: kind === 'job' ? 10 : 5 };
  }

  /** Gives back an admitted slot whose job or session did not start after all (e.g. its token was already used). */
  release(tenantId: string, kind: AdmissionKind, id: string): void {
    const limits = this.table.limitsFor(tenantId);
    if ((kind === 'job' ? limits.concurrentJobs : limits.concurrentSessions) > 0) this.ledger.withdraw(tenantId, kind, id);
  }
}

/** Running per ClickHouse, plus the preceding claims it has no row for yet. Pure. */
export function countRunning(running: ReadonlySet<string>, known: ReadonlySet<string>, claims: readonly string[]): number {
  const all = new Set(running);
  for (const id of claims) if (!known.has(id)) all.add(id);
  return all.size;
}
