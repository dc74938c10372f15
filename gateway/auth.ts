/**
 * API-key authentication: `Authorization: Bearer <key>` compared in constant time with DALSTON_API_KEY. One key,
 * one tenant (`default`) for now; the key id (audit `actor_key_id`) is a short SHA-256 prefix, never the key.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError } from './errors.js';

export const DEFAULT_TENANT = 'default';

export interface Principal {
  readonly tenantId: string;
  /** `key_<12 hex>`: identifies the key in audit events without revealing it. */
  readonly keyId: string;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

export function keyIdOf(apiKey: string): string {
  return `key_${digest(apiKey).toString('hex').slice(0, 12)}`;
}

export interface Authenticator {
  authenticate(authorization: string | undefined): Principal;
}

/**
 * The credentials a request presents, as an Authorization value: `Authorization: Bearer <key>` (native API, OpenAI's
 * SDK), Deepgram's `Authorization: Token <key>`, or ElevenLabs' `xi-api-key: <key>` header (its SDK sends no
 * Authorization).
 */
export function presentedAuthorization(headers: Readonly<Record<string, string | undefined>>): string | undefined {
  const xi = headers['xi-api-key'];
  const authorization = headers['authorization'] ?? '';
  if (authorization === '' && xi !== undefined && xi !== '') return `Bearer ${xi.trim()}`;
  // Deepgram's SDK sends `Authorization: Token <key>`.
  const token = /^Token[ ]+(\S+)\s*$/i.exec(authorization);
  return token?.[1] !== undefined ? `Bearer ${token[1]}` : headers['authorization'];
}

const unauthorized = (message: string) =>
  new HttpError(401, 'unauthorized', message, { headers: { 'www-authenticate': 'Bearer realm="dalston"' } });

/**
 * Compares SHA-256 digests with timingSafeEqual: equal lengths whatever the presented key, so neither the key's
 * content nor its length leaks through timing.
 */
export function createApiKeyAuthenticator(apiKey: string): Authenticator {
  const expected = digest(apiKey);
  const principal: Principal = { tenantId: DEFAULT_TENANT, keyId: keyIdOf(apiKey) };
  return {
    authenticate(authorization) {
      if (authorization === undefined || authorization === '') throw unauthorized('missing Authorization: Bearer <api key> (or xi-api-key) header');
      const m = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
      const presented = m?.[1];
      if (presented === undefined) throw unauthorized('Authorization header must be "Bearer <api key>"');
      if (!timingSafeEqual(digest(presented), expected)) throw unauthorized('invalid API key');
      return principal;
    },
  };
}
