/**
 * Admission of a tenant's new jobs and sessions: its daily audio allowance, then its concurrency limits (batch jobs,
 * real-time sessions), holding across gateways. The allowance is judged on what ClickHouse has recorded today (UTC):
 * once it is used up, new work waits for the next day (the one that crosses the line finishes). A new job or session
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
  /** Seconds of audio of the tenant's jobs created and sessions started since `since` (epoch ms). */
  audioSecondsSince(tenantId: string, since: number): Promise<number>;
}

export interface TenantRefusal {
  readonly kind: AdmissionKind;
  /** `concurrency` or `audio_quota`. */
  readonly reason: 'concurrency' | 'audio_quota';
  readonly message: string;
  readonly retryAfterSeconds: number;
}

const DAY_MS = 86_400_000;

/** How long a claim counts without a ClickHouse row (the sink writes within seconds; this is ample). */
export const CLAIM_RECENT_MS = 60_000;

export class TenantAdmission {
  constructor(
    private readonly table: TenantLimitTable,
    private readonly ledger: AdmissionLedger,
    private readonly work: ActiveWork,
  ) {}

  /** Undefined when `id` may start (or the tenant has no such limit); otherwise the refusal. */
  async admit(tenantId: string, kind: AdmissionKind, id: string, now = Date.now()): Promise<TenantRefusal | undefined> {
    const limits = this.table.limitsFor(tenantId);
    if (limits.audioHoursPerDay > 0) {
      const dayStart = Math.floor(now / DAY_MS) * DAY_MS;
      const used = await this.work.audioSecondsSince(tenantId, dayStart);
      if (used >= limits.audioHoursPerDay * 3600) {
        return {
          kind, reason: 'audio_quota', retryAfterSeconds: Math.max(1, Math.ceil((dayStart + DAY_MS - now) / 1000)),
          message: `tenant ${tenantId} has used its ${limits.audioHoursPerDay} hours of audio for today (UTC): ${(used / 3600).toFixed(3)} h`,
        };
      }
    }
    const limit = kind === 'job' ? limits.concurrentJobs : limits.concurrentSessions;
    if (limit <= 0) return undefined;
    const before = await this.ledger.claim(tenantId, kind, id);
    const { running, known } = await this.work.active(tenantId, kind, before);
    const count = countRunning(running, known, before);
    if (count < limit) return undefined;
    this.ledger.withdraw(tenantId, kind, id);
    const what = kind === 'job' ? 'jobs queued or running' : 'real-time sessions open';
    return { kind, reason: 'concurrency', retryAfterSeconds: kind === 'job' ? 10 : 5, message: `tenant ${tenantId} already has ${count} ${what} (limit ${limit})` };
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
