/**
 * Credentials as the vendor dialects present them. A Dalston single-use real-time token (`rtt_…`) can travel
 * wherever a vendor puts its temporary tokens or keys; anything else is taken as an API key. The bridge verifies.
 */
import type { PresentedCredential } from '../dialect.js';

const TOKEN_PREFIX = 'rtt_';

export function credentialOf(value: string | undefined): PresentedCredential {
  const v = value?.trim();
  if (v === undefined || v === '') return { kind: 'none' };
  return v.startsWith(TOKEN_PREFIX) ? { kind: 'token', token: v } : { kind: 'api_key', key: v };
}

/** `<Scheme> <value>` of an Authorization header when the scheme is one of `schemes` (case-insensitive). */
export function authorizationValue(header: string | undefined, schemes: readonly string[]): string | undefined {
  const m = /^(\S+)[ ]+(\S+)\s*$/.exec(header ?? '');
  if (!m?.[1] || !m[2]) return undefined;
  return schemes.includes(m[1].toLowerCase()) ? m[2] : undefined;
}
