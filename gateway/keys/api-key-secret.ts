/**
 * The API key itself: `dk_<16 hex key id>_<43 base64url chars of secret>` (256 random bits). The key id inside the
 * key finds its record without a scan; the record keeps a random salt and SHA-256(salt ‖ secret). A fast hash is
 * enough here: the secret is 256 random bits, not a password, so a stolen record cannot be brute-forced, and a
 * slow KDF would cost every request milliseconds. Pure apart from the random source.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { sealSecret, unsealSecret } from '../../core/sealed-secret.js';
import { requestSigningSecret } from '../../streams/index.js';

export const KEY_PREFIX = 'dk_';
const KEY_PATTERN = /^dk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface NewApiKey {
  /** Shown once, to its creator; never stored. */
  readonly key: string;
  readonly keyId: string;
  readonly salt: string;
  readonly hash: string;
}

export function hashSecret(secret: string, saltHex: string): Buffer {
  return createHash('sha256').update(Buffer.from(saltHex, 'hex')).update(secret, 'utf8').digest();
}

export function newApiKey(): NewApiKey {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const salt = randomBytes(16).toString('hex');
  return { key: `${KEY_PREFIX}${id}_${secret}`, keyId: `key_${id}`, salt, hash: hashSecret(secret, salt).toString('hex') };
}

/** The key id and secret of a presented `dk_` key, or undefined when it is not one in shape. */
export function parseApiKey(presented: string): { keyId: string; secret: string } | undefined {
  const m = KEY_PATTERN.exec(presented);
  return m?.[1] !== undefined && m[2] !== undefined ? { keyId: `key_${m[1]}`, secret: m[2] } : undefined;
}

/** Constant-time comparison of the presented secret with a record's hash. */
export function secretMatches(secret: string, record: { readonly salt: string; readonly hash: string }): boolean {
  const expected = Buffer.from(record.hash, 'hex');
  const given = hashSecret(secret, record.salt);
  return expected.length === given.length && timingSafeEqual(given, expected);
}

/** The key's Kafka request-signing secret, sealed for its record. */
export function sealRequestSecret(key: string, bootstrapKey: string): string {
  return sealSecret(requestSigningSecret(key), bootstrapKey, 'auth.keys');
}

/** The request-signing secret of a record, or undefined when it has none or it was sealed under another key. */
export function unsealRequestSecret(sealed: string | undefined, bootstrapKey: string): string | undefined {
  return unsealSecret(sealed, bootstrapKey, 'auth.keys');
}
