/**
 * Reading a vendor dialect's upgrade query: every parameter is either known to the dialect or refused, so a typo
 * (`sample_rte`) is a 400 at the upgrade instead of a silently ignored setting. Values are parsed strictly and a
 * bad one names the parameter and what it accepts.
 */
import { badRequest } from '../../errors.js';

export class QueryOptions {
  constructor(
    private readonly query: URLSearchParams,
    private readonly dialect: string,
  ) {}

  /** Refuses any parameter not in `known` (several names at once, so the client fixes them in one go). */
  onlyKnown(known: ReadonlySet<string>): void {
    const unknown = [...new Set(this.query.keys())].filter((k) => !known.has(k));
    if (unknown.length > 0) {
      throw badRequest(`unknown ${this.dialect} query parameter${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
    }
  }

  /** The value, or undefined when absent or empty. */
  str(name: string): string | undefined {
    const v = this.query.get(name);
    return v === null || v === '' ? undefined : v;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(v)) throw badRequest(`${name} must be one of ${allowed.join(', ')}, got "${v}"`);
    return v as T;
  }

  num(name: string, min: number, max: number): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(v.trim()) || !Number.isFinite(n) || n < min || n > max) {
      throw badRequest(`${name} must be a number from ${min} to ${max}, got "${v}"`);
    }
    return n;
  }

  int(name: string, min: number, max: number): number | undefined {
    const n = this.num(name, min, max);
    if (n !== undefined && !Number.isInteger(n)) throw badRequest(`${name} must be a whole number from ${min} to ${max}, got "${n}"`);
    return n;
  }

  bool(name: string): boolean | undefined {
    const v = this.str(name)?.toLowerCase();
    if (v === undefined) return undefined;
    if (v === 'true') return true;
    if (v === 'false') return false;
    throw badRequest(`${name} must be true or false, got "${v}"`);
  }
}

/** Dalston's own parameters every dialect accepts: resuming a session whose gateway went away. */
export const RESUME_PARAMETERS = ['resume', 'resume_offset'] as const;

export function readResume(q: QueryOptions): { resumeSessionId?: string; resumeOffsetSamples?: number } {
  const resumeSessionId = q.str('resume');
  const resumeOffsetSamples = q.int('resume_offset', 0, Number.MAX_SAFE_INTEGER);
  if (resumeOffsetSamples !== undefined && resumeSessionId === undefined) throw badRequest('resume_offset needs resume=<session id>');
  return {
    ...(resumeSessionId === undefined ? {} : { resumeSessionId }),
    ...(resumeOffsetSamples === undefined ? {} : { resumeOffsetSamples }),
  };
}
