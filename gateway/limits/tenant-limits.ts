/**
 * Per-tenant limits, from DALSTON_TENANT_LIMITS: `<tenant|*>:<limit>=<n>[,<limit>=<n>…][;…]`, e.g.
 * `*:requests_per_minute=600;acme:requests_per_minute=6000,concurrent_jobs=50`. `*` is every tenant without a line of
 * its own; a limit not given (or 0) is no limit. Pure.
 */
import { ConfigError } from '../../core/errors.js';

export interface TenantLimits {
  /** HTTP requests per minute (a fixed window per minute, counted across every gateway). */
  readonly requestsPerMinute: number;
  /** Batch jobs queued or running at once. */
  readonly concurrentJobs: number;
  /** Real-time sessions open at once. */
  readonly concurrentSessions: number;
  /** Default retention of the tenant's jobs in days (0: kept until deleted). Not a limit, but set per tenant alike. */
  readonly retentionDays: number;
  /** Hours of audio (jobs and real-time sessions) per UTC day; fractions allowed. */
  readonly audioHoursPerDay: number;
}

export const LIMIT_NAMES: Readonly<Record<string, keyof TenantLimits>> = {
  requests_per_minute: 'requestsPerMinute',
  concurrent_jobs: 'concurrentJobs',
  concurrent_sessions: 'concurrentSessions',
  retention_days: 'retentionDays',
  audio_hours_per_day: 'audioHoursPerDay',
};

export const NO_LIMITS: TenantLimits = { requestsPerMinute: 0, concurrentJobs: 0, concurrentSessions: 0, retentionDays: 0, audioHoursPerDay: 0 };

export interface TenantLimitTable {
  limitsFor(tenantId: string): TenantLimits;
  /** True when some tenant has a request or concurrency limit (otherwise nothing needs counting). */
  readonly any: boolean;
}

export function parseTenantLimits(raw: string, variable = 'DALSTON_TENANT_LIMITS'): TenantLimitTable {
  const table = new Map<string, TenantLimits>();
  for (const line of raw.split(';').map((l) => l.trim()).filter((l) => l !== '')) {
    const colon = line.indexOf(':');
    const tenant = colon > 0 ? line.slice(0, colon).trim() : '';
    if (tenant === '' || (tenant !== '*' && !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(tenant))) {
      throw new ConfigError(`${variable}: "${line.slice(0, 80)}" must start with a tenant id or * and a colon`);
    }
    if (table.has(tenant)) throw new ConfigError(`${variable}: tenant ${tenant} is given twice`);
    const limits: Record<keyof TenantLimits, number> = { ...NO_LIMITS };
    for (const pair of line.slice(colon + 1).split(',').map((p) => p.trim()).filter((p) => p !== '')) {
      const [name = '', value = ''] = pair.split('=').map((x) => x.trim());
      const field = LIMIT_NAMES[name];
      if (!field) throw new ConfigError(`${variable}: unknown limit "${name.slice(0, 40)}" (known: ${Object.keys(LIMIT_NAMES).join(', ')})`);
      const pattern = field === 'audioHoursPerDay' ? /^\d{1,9}(\.\d{1,6})?$/ : /^\d{1,9}$/;
      if (!pattern.test(value)) throw new ConfigError(`${variable}: ${name} must be a ${field === 'audioHoursPerDay' ? 'number' : 'whole number'} ≥ 0 (got "${value.slice(0, 20)}")`);
      limits[field] = Number(value);
    }
    table.set(tenant, limits);
  }
  const fallback = table.get('*') ?? NO_LIMITS;
  return {
    limitsFor: (tenantId) => table.get(tenantId) ?? fallback,
    any: [...table.values()].some((l) => l.requestsPerMinute > 0 || l.concurrentJobs > 0 || l.concurrentSessions > 0 || l.audioHoursPerDay > 0),
  };
}
