/**
 * Creating a key from a request: the checked request (name, scopes, tenant, expiry), the record that goes into the
 * store, and the key's public view. Shared by `POST /v1/keys` and the `dalston keys` command. Pure apart from the
 * random key.
 */
import { InvalidInputError } from '../../core/errors.js';
import { SCHEMA_VERSION, SCOPES, type ApiKeyRecord, type Scope } from '../../streams/index.js';
import { newApiKey, sealRequestSecret } from './api-key-secret.js';

export interface KeyRequest {
  readonly tenantId: string;
  readonly name: string;
  readonly scopes: readonly Scope[];
  readonly expiresAt?: number;
}

/** Tenant ids: what appears in URLs, logs and ClickHouse rows, so a plain, bounded alphabet. */
export const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const MAX_KEY_NAME = 100;

export function parseScopes(raw: unknown): Scope[] {
  const list: unknown = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter((s) => s !== '') : raw;
  if (!Array.isArray(list) || list.length === 0) throw new InvalidInputError(`scopes must be a non-empty list of ${SCOPES.join(', ')}`);
  const bad: unknown = (list as unknown[]).find((s) => !(SCOPES as readonly unknown[]).includes(s));
  if (bad !== undefined) throw new InvalidInputError(`unknown scope ${JSON.stringify(bad).slice(0, 80)}; scopes are ${SCOPES.join(', ')}`);
  return [...new Set(list as Scope[])];
}

export function parseTenantId(raw: unknown): string {
  if (typeof raw !== 'string' || !TENANT_ID.test(raw)) throw new InvalidInputError('tenant must be 1–63 lower-case letters, digits, _ or -, starting with a letter or digit');
  return raw;
}

/** `expires_at` (ISO 8601) or `expires_in_seconds`, at most one, in the future. */
export function parseExpiry(o: Readonly<Record<string, unknown>>, now: number): number | undefined {
  const at = o['expires_at'];
  const inSeconds = o['expires_in_seconds'];
  if (at !== undefined && at !== null && inSeconds !== undefined && inSeconds !== null) throw new InvalidInputError('give expires_at or expires_in_seconds, not both');
  let expiresAt: number | undefined;
  if (typeof at === 'string') {
    expiresAt = Date.parse(at);
    if (!Number.isFinite(expiresAt)) throw new InvalidInputError('expires_at must be an ISO 8601 time');
  } else if (at !== undefined && at !== null) {
    throw new InvalidInputError('expires_at must be an ISO 8601 time');
  }
  if (inSeconds !== undefined && inSeconds !== null) {
    if (typeof inSeconds !== 'number' || !Number.isInteger(inSeconds) || inSeconds <= 0) throw new InvalidInputError('expires_in_seconds must be a positive integer');
    expiresAt = now + inSeconds * 1000;
  }
  if (expiresAt !== undefined && expiresAt <= now) throw new InvalidInputError('the expiry must be in the future');
  return expiresAt;
}

export function parseKeyName(raw: unknown): string {
  const name = typeof raw === 'string' ? raw.trim() : '';
  if (name === '' || name.length > MAX_KEY_NAME || [...name].some((c) => c.charCodeAt(0) < 0x20)) {
    throw new InvalidInputError(`name must be 1–${MAX_KEY_NAME} characters, without control characters`);
  }
  return name;
}

/** A new key for `request`: the key (to show once) and its record (to store). */
export function issueKey(request: KeyRequest, o: { readonly bootstrapKey: string; readonly createdBy: string; readonly now: number }): { key: string; record: ApiKeyRecord } {
  const fresh = newApiKey();
  return {
    key: fresh.key,
    record: {
      v: SCHEMA_VERSION, type: 'api_key', keyId: fresh.keyId, tenantId: request.tenantId, name: request.name, scopes: [...request.scopes],
      salt: fresh.salt, hash: fresh.hash, createdAt: o.now, createdBy: o.createdBy,
      ...(request.expiresAt !== undefined ? { expiresAt: request.expiresAt } : {}),
      requestSecretSealed: sealRequestSecret(fresh.key, o.bootstrapKey),
    },
  };
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** What the API shows of a key: never its hash, salt or sealed secret. */
export function keyView(r: ApiKeyRecord, lastUsedAt: number | undefined, now: number): Record<string, unknown> {
  const status = r.revokedAt !== undefined ? 'revoked' : r.expiresAt !== undefined && now >= r.expiresAt ? 'expired' : 'active';
  return {
    id: r.keyId, name: r.name, tenant: r.tenantId, scopes: r.scopes, status,
    created_at: iso(r.createdAt), created_by: r.createdBy, expires_at: iso(r.expiresAt), revoked_at: iso(r.revokedAt), last_used_at: iso(lastUsedAt),
  };
}
