/**
 * API-key authentication: `Authorization: Bearer <key>` (or a vendor's header) checked against the key store
 * (`dk_` keys, gateway/keys/) or, in constant time, against DALSTON_API_KEY, the bootstrap key: an admin of the
 * `default` tenant that may also manage other tenants' keys. A key id (audit `actor_key_id`) is never the key.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { SCOPES, type Scope } from '../streams/index.js';
import { HttpError } from './errors.js';
import { parseApiKey, secretMatches } from './keys/api-key-secret.js';
import type { KeyStore } from './keys/key-store.js';

export const DEFAULT_TENANT = 'default';

export interface Principal {
  readonly tenantId: string;
  /** `key_<hex>`: identifies the key in audit events without revealing it. */
  readonly keyId: string;
  readonly scopes: readonly Scope[];
  /** The bootstrap key: may name another tenant when it manages keys. */
  readonly operator?: boolean;
}

/** Whether `principal` holds `scope`; `admin` holds every scope of its tenant. */
export function grants(principal: Pick<Principal, 'scopes'>, scope: Scope): boolean {
  return principal.scopes.includes(scope) || principal.scopes.includes('admin');
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

/** DALSTON_API_KEY's principal: every scope, in the `default` tenant, and the operator's reach over tenants. */
export function bootstrapPrincipal(bootstrapKey: string): Principal {
  return { tenantId: DEFAULT_TENANT, keyId: keyIdOf(bootstrapKey), scopes: [...SCOPES], operator: true };
}

/** The key of `Authorization: Bearer <key>`, or undefined when the header is not that. */
function bearerKey(authorization: string | undefined): string | undefined {
  return /^Bearer[ ]+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
}

/** The key id of a presented issued key (for the audit of a refusal), without checking it. */
export function presentedKeyId(authorization: string | undefined): string | undefined {
  const key = bearerKey(authorization);
  return key !== undefined ? parseApiKey(key)?.keyId : undefined;
}

export const unauthorized = (message: string) =>
  new HttpError(401, 'unauthorized', message, { headers: { 'www-authenticate': 'Bearer realm="dalston"' } });

export interface KeyAuthenticatorOptions {
  /** DALSTON_API_KEY. */
  readonly bootstrapKey: string;
  /** Issued keys; without it only the bootstrap key is accepted. */
  readonly keys?: KeyStore;
  readonly now?: () => number;
}

/**
 * The bootstrap key is compared as SHA-256 digests with timingSafeEqual (equal lengths whatever is presented, so
 * neither its content nor its length leaks through timing); an issued key by its salted hash, also in constant time.
 * An unknown, expired or revoked key is a 401 whose message says which: the caller holds that key already, so
 * saying it was revoked reveals nothing and saves them a support ticket.
 */
export function createApiKeyAuthenticator(bootstrapKeyOrOptions: string | KeyAuthenticatorOptions): Authenticator {
  const o = typeof bootstrapKeyOrOptions === 'string' ? { bootstrapKey: bootstrapKeyOrOptions } : bootstrapKeyOrOptions;
  const expected = digest(o.bootstrapKey);
  const now = o.now ?? Date.now;
  const bootstrap = bootstrapPrincipal(o.bootstrapKey);
  return {
    authenticate(authorization) {
      if (authorization === undefined || authorization === '') throw unauthorized('missing Authorization: Bearer <api key> (or xi-api-key) header');
      const presented = bearerKey(authorization);
      if (presented === undefined) throw unauthorized('Authorization header must be "Bearer <api key>"');
      const issued = parseApiKey(presented);
      const record = issued && o.keys?.get(issued.keyId);
      if (issued && record) {
        if (!secretMatches(issued.secret, record)) throw unauthorized('invalid API key');
        const at = now();
        if (record.revokedAt !== undefined) throw unauthorized('API key revoked');
        if (record.expiresAt !== undefined && at >= record.expiresAt) throw unauthorized('API key expired');
        o.keys?.touch(record.keyId, at);
        return { tenantId: record.tenantId, keyId: record.keyId, scopes: record.scopes };
      }
      if (!timingSafeEqual(digest(presented), expected)) throw unauthorized('invalid API key');
      return bootstrap;
    },
  };
}
