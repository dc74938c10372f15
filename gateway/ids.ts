/** Identifiers minted by the gateway: job ids (ULID, so they sort by creation time), request ids, event ids. */
import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID: 48-bit millisecond time then 80 random bits, 26 Crockford base-32 characters. */
export function ulid(nowMs: number = Date.now()): string {
  let time = '';
  let t = Math.floor(nowMs);
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(16);
  let rand = '';
  for (let i = 0; i < 16; i++) rand += CROCKFORD[(bytes[i] ?? 0) % 32];
  return time + rand;
}

/** `job_<ULID>`. */
export function newJobId(nowMs?: number): string {
  return `job_${ulid(nowMs)}`;
}

/** `req_<20 lowercase base-32 characters>`. */
export function newRequestId(): string {
  return `req_${ulid().slice(10).toLowerCase()}`;
}

export function newEventId(nowMs?: number): string {
  return `evt_${ulid(nowMs)}`;
}

export const REQUEST_ID_MAX_LENGTH = 128;

/**
 * The client's `X-Request-ID` if it is usable: characters outside [A-Za-z0-9._-] are removed and the result is
 * cut to 128 characters; undefined when nothing is left (then a fresh id is generated).
 */
export function sanitizeRequestId(raw: string | readonly string[] | undefined): string | undefined {
  const value: string | undefined = typeof raw === 'string' ? raw : raw?.[0];
  if (typeof value !== 'string') return undefined;
  const clean = value.replace(/[^A-Za-z0-9._-]/g, '').slice(0, REQUEST_ID_MAX_LENGTH);
  return clean.length > 0 ? clean : undefined;
}
