/**
 * Single-use real-time tokens, the stateless half: `rtt_<payload>.<mac>`, an HMAC-SHA256 over the payload (token id,
 * tenant, key id, expiry) with a secret every gateway derives from the API key, so any gateway can verify a token
 * another minted without a lookup. That a token is used once is the ledger's job (token-ledger.ts).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface TokenClaims {
  /** Token id: the ledger records it as used. */
  readonly jti: string;
  readonly tenantId: string;
  readonly keyId: string;
  /** Epoch ms after which the token is refused. */
  readonly expiresAt: number;
}

export type TokenCheck =
  | { readonly ok: true; readonly claims: TokenClaims }
  | { readonly ok: false; readonly code: 'invalid_token' | 'token_expired'; readonly message: string };

const PREFIX = 'rtt_';

export function tokenSecret(apiKey: string): Buffer {
  return createHash('sha256').update(`dalston realtime token v1\0${apiKey}`, 'utf8').digest();
}

function mac(secret: Buffer, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload, 'utf8').digest();
}

export function mintToken(secret: Buffer, claims: Omit<TokenClaims, 'jti'>, jti: string = randomBytes(12).toString('base64url')): { token: string; claims: TokenClaims } {
  const full: TokenClaims = { jti, ...claims };
  const payload = Buffer.from(JSON.stringify([full.jti, full.tenantId, full.keyId, full.expiresAt]), 'utf8').toString('base64url');
  return { token: `${PREFIX}${payload}.${mac(secret, payload).toString('base64url')}`, claims: full };
}

export function verifyToken(secret: Buffer, token: string, now: number): TokenCheck {
  const invalid = (message: string): TokenCheck => ({ ok: false, code: 'invalid_token', message });
  if (!token.startsWith(PREFIX)) return invalid('not a Dalston real-time token');
  const [payload, sig, extra] = token.slice(PREFIX.length).split('.');
  if (payload === undefined || sig === undefined || extra !== undefined) return invalid('malformed real-time token');
  const presented = Buffer.from(sig, 'base64url');
  const expected = mac(secret, payload);
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return invalid('real-time token signature does not match');
  let fields: unknown;
  try {
    fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return invalid('malformed real-time token');
  }
  if (!Array.isArray(fields) || fields.length !== 4) return invalid('malformed real-time token');
  const [jti, tenantId, keyId, expiresAt] = fields as unknown[];
  if (typeof jti !== 'string' || typeof tenantId !== 'string' || typeof keyId !== 'string' || typeof expiresAt !== 'number') return invalid('malformed real-time token');
  if (now >= expiresAt) return { ok: false, code: 'token_expired', message: 'real-time token expired' };
  return { ok: true, claims: { jti, tenantId, keyId, expiresAt } };
}
