/**
 * How a Kafka producer authenticates a job request: headers `dalston-key-id` (the key's id, `key_…`),
 * `dalston-timestamp` (ms since the epoch) and `dalston-signature` (hex HMAC-SHA256, keyed with the API key, of
 * `<timestamp>.<value bytes>`). The timestamp bounds replays to a window; the key itself never travels.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * What a request is signed with: for an issued key (`dk_<id>_<secret>`) an HMAC of the key (so the gateway, which
 * stores no key, can hold this secret sealed in the key's record); for the bootstrap key, the key itself.
 */
export function requestSigningSecret(apiKey: string): string {
  return /^dk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/.test(apiKey) ? createHmac('sha256', apiKey).update('dalston kafka request v1').digest('hex') : apiKey;
}

export const REQUEST_HEADERS = { keyId: 'dalston-key-id', timestamp: 'dalston-timestamp', signature: 'dalston-signature' } as const;

/** A signed request older or newer than this is refused (clock skew plus time in the topic). */
export const SIGNATURE_WINDOW_MS = 15 * 60 * 1000;

export function signRequest(apiKey: string, value: Buffer, timestamp: number): string {
  return createHmac('sha256', apiKey).update(`${timestamp}.`).update(value).digest('hex');
}

/** The headers a producer puts on a request record. */
export function requestHeaders(apiKey: string, keyId: string, value: Buffer, timestamp = Date.now()): Record<string, string> {
  return { [REQUEST_HEADERS.keyId]: keyId, [REQUEST_HEADERS.timestamp]: String(timestamp), [REQUEST_HEADERS.signature]: signRequest(requestSigningSecret(apiKey), value, timestamp) };
}

/** Why a request's signature is refused, or undefined when it holds. `secret`: requestSigningSecret of the key. */
export function signatureProblem(secret: string, headers: Readonly<Record<string, string>>, value: Buffer, now: number): string | undefined {
  const signature = headers[REQUEST_HEADERS.signature];
  const ts = Number(headers[REQUEST_HEADERS.timestamp]);
  if (!signature) return `unsigned request: headers ${REQUEST_HEADERS.keyId}, ${REQUEST_HEADERS.timestamp} and ${REQUEST_HEADERS.signature} are required`;
  if (!Number.isSafeInteger(ts)) return `${REQUEST_HEADERS.timestamp} must be ms since the epoch`;
  if (Math.abs(now - ts) > SIGNATURE_WINDOW_MS) return `${REQUEST_HEADERS.timestamp} is outside the ${SIGNATURE_WINDOW_MS / 60000}-minute window`;
  const expected = Buffer.from(signRequest(secret, value, ts), 'hex');
  const given = Buffer.from(/^[0-9a-f]{64}$/i.test(signature) ? signature : '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected) ? undefined : 'signature does not match';
}
