/**
 * Where API keys live, as the gateway sees it: a map read wholly into memory (lookups on the request path never
 * wait on I/O) and writes that resolve once this process can read them back. `KafkaKeyStore` is the real one;
 * `InMemoryKeyStore` serves unit tests of the gateway's own logic.
 */
import type { ApiKeyRecord, KeyStoreRecord } from '../../streams/index.js';

export interface KeyStore {
  get(keyId: string): ApiKeyRecord | undefined;
  /** Every key of `tenantId` (all tenants when undefined), newest first, revoked ones included. */
  list(tenantId: string | undefined): ApiKeyRecord[];
  /** Epoch ms of the key's last accepted use, as far as the store has heard. */
  lastUsed(keyId: string): number | undefined;
  /** Writes the record (create, or revoke by writing it with `revokedAt`); resolves once this process reads it back. */
  put(record: ApiKeyRecord): Promise<void>;
  /** Notes an accepted use; stores at most one per key per minute, and never delays the request. */
  touch(keyId: string, at: number): void;
}

/** How often a key's last-used time is written at most. */
export const TOUCH_INTERVAL_MS = 60_000;

export function newestFirst(records: Iterable<ApiKeyRecord>, tenantId: string | undefined): ApiKeyRecord[] {
  return [...records].filter((r) => tenantId === undefined || r.tenantId === tenantId).sort((a, b) => b.createdAt - a.createdAt || a.keyId.localeCompare(b.keyId));
}

/** The keys and last-used times as read so far: what every store looks keys up in. */
export class KeyTable {
  readonly #keys = new Map<string, ApiKeyRecord>();
  readonly #used = new Map<string, number>();

  get(keyId: string): ApiKeyRecord | undefined {
    return this.#keys.get(keyId);
  }

  list(tenantId: string | undefined): ApiKeyRecord[] {
    return newestFirst(this.#keys.values(), tenantId);
  }

  lastUsed(keyId: string): number | undefined {
    return this.#used.get(keyId);
  }

  /** A record read from the store (the latest record of a key replaces the earlier). */
  protected apply(r: KeyStoreRecord): void {
    if (r.type === 'api_key') this.#keys.set(r.keyId, r);
    else this.#used.set(r.keyId, Math.max(r.at, this.#used.get(r.keyId) ?? 0));
  }
}

export class InMemoryKeyStore extends KeyTable implements KeyStore {
  async put(record: ApiKeyRecord): Promise<void> {
    this.apply(record);
  }

  touch(keyId: string, at: number): void {
    this.apply({ v: 1, type: 'api_key.used', keyId, at });
  }
}
