/**
 * Records of the compacted `auth.keys` topic (UTF-8 JSON, so operators' tools can read it). A key's record holds
 * what is needed to check a presented key (a salt and the SHA-256 of salt and secret), never the key; its
 * last-used time travels as a separate record under `<key id>/used` so frequent usage never races a revocation
 * written over the key's own record.
 */
import { arrayOf, int, literal, object, oneOf, optional, str, union } from './validate.js';
import { SCHEMA_VERSION } from './messages.js';

/** What a key may do. `admin` implies every other scope within the key's tenant. */
export const SCOPES = ['jobs:read', 'jobs:write', 'realtime', 'webhooks', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

const v = literal(SCHEMA_VERSION);

const apiKeyRecord = object({
  v, type: literal('api_key'),
  /** `key_<16 hex>`, also the middle part of the key itself (`dk_<16 hex>_<secret>`), so lookup needs no scan. */
  keyId: str, tenantId: str, name: str, scopes: arrayOf(oneOf(SCOPES)),
  /** Hex: 16 random bytes, and SHA-256(salt ‖ secret). */
  salt: str, hash: str,
  createdAt: int,
  /** Key id of whoever created it (`cli` for the command line). */
  createdBy: str,
  /** Epoch ms after which the key is refused; absent: no expiry. */
  expiresAt: optional(int),
  /** Epoch ms of revocation; absent: live. A revoked key keeps its record so listings and audits can name it. */
  revokedAt: optional(int),
  /**
   * The secret Kafka requests are signed with (an HMAC of the key, streams/request-signature.ts), sealed with
   * AES-256-GCM under a key derived from DALSTON_API_KEY: reading this topic alone forges nothing.
   */
  requestSecretSealed: optional(str),
});
const apiKeyUsed = object({ v, type: literal('api_key.used'), keyId: str, at: int });

export const checkKeyStoreRecord = union({ api_key: apiKeyRecord, 'api_key.used': apiKeyUsed });
export type ApiKeyRecord = ReturnType<typeof apiKeyRecord>;
export type ApiKeyUsed = ReturnType<typeof apiKeyUsed>;
export type KeyStoreRecord = ApiKeyRecord | ApiKeyUsed;

/** The compaction key of a record: the latest record per key wins. */
export function keyStoreRecordKey(r: KeyStoreRecord): string {
  return r.type === 'api_key' ? r.keyId : `${r.keyId}/used`;
}

export function encodeKeyStoreRecord(r: KeyStoreRecord): Buffer {
  return Buffer.from(JSON.stringify(r), 'utf8');
}

export function decodeKeyStoreRecord(value: Buffer): KeyStoreRecord {
  return checkKeyStoreRecord(JSON.parse(value.toString('utf8')) as unknown, 'auth.keys');
}
