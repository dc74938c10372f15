/**
 * How long a job's data is kept: the `retention` submission field (`keep`, `none`, or a duration such as `30d`, `12h`,
 * `90m`, `45s`; a bare number is days) and the tenant's default. Pure.
 */
import { badRequest } from './errors.js';

/** `keep`, as the parsed value: the tenant's default does not apply. */
export const KEEP = -1;
/** The longest retention accepted (ten years). */
const MAX_SECONDS = 3650 * 86_400;
const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** Seconds to keep the data after the job ends: KEEP, 0 (`none`) or a positive number. */
export function parseRetention(raw: string): number {
  const value = raw.trim().toLowerCase();
  if (value === 'keep') return KEEP;
  if (value === 'none') return 0;
  const m = /^(\d{1,10})([smhd]?)$/.exec(value);
  const seconds = m ? Number(m[1]) * (UNIT_SECONDS[m[2] || 'd'] ?? 86_400) : Number.NaN;
  if (!Number.isSafeInteger(seconds) || seconds <= 0 || seconds > MAX_SECONDS) {
    throw badRequest(`retention "${raw.slice(0, 40)}" must be keep, none, or a duration like 30d, 12h, 90m or 45s (at most 3650d)`);
  }
  return seconds;
}

/** The retention a job is stored with: its own (KEEP → none stored), else the tenant's default (0 days: keep). */
export function effectiveRetention(asked: number | undefined, tenantDefaultDays: number): number | undefined {
  if (asked === KEEP) return undefined;
  if (asked !== undefined) return asked;
  return tenantDefaultDays > 0 ? tenantDefaultDays * 86_400 : undefined;
}
