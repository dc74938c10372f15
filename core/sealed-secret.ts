/**
 * Secrets a store must hand back (a Kafka request-signing secret, a webhook signing secret) are kept sealed with
 * AES-256-GCM under a key derived from DALSTON_API_KEY and the store's purpose: whoever reads the topic alone learns
 * nothing, and a secret sealed for one store does not open in another.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

function sealKey(bootstrapKey: string, purpose: string): Buffer {
  return createHash('sha256').update(`dalston ${purpose} seal v1\0${bootstrapKey}`, 'utf8').digest();
}

/** base64url of iv ‖ tag ‖ ciphertext. */
export function sealSecret(plain: string, bootstrapKey: string, purpose: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey(bootstrapKey, purpose), iv);
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

/** The secret, or undefined when there is none or it was sealed under another key or purpose. */
export function unsealSecret(sealed: string | undefined, bootstrapKey: string, purpose: string): string | undefined {
  if (sealed === undefined) return undefined;
  const raw = Buffer.from(sealed, 'base64url');
  try {
    const decipher = createDecipheriv('aes-256-gcm', sealKey(bootstrapKey, purpose), raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
