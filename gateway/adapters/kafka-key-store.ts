/**
 * The API-key store on the compacted, single-partition `auth.keys` topic: every gateway process reads the whole
 * topic into memory before it serves and tails it with a short poll, so a key created or revoked through any
 * gateway, or by `dalston keys`, holds on every gateway within a fraction of a second. Why Kafka and not ClickHouse:
 * the store must be shared by all gateways, survive restarts and let a revocation overwrite a key atomically; a
 * compacted topic keyed by key id is exactly that, and ClickHouse merges replacements eventually, not at once.
 */
import type { Logger } from '../../core/logger.js';
import {
  API_KEYS, CompactedTopicTail, decodeKeyStoreRecord, encodeKeyStoreRecord, keyStoreRecordKey,
  type ApiKeyRecord, type KeyStoreRecord, type TailConnection,
} from '../../streams/index.js';
import { KeyTable, TOUCH_INTERVAL_MS, type KeyStore } from '../keys/key-store.js';

export interface KafkaKeyStoreOptions extends TailConnection {
  /** @default 5000 */
  readonly writeTimeoutMs?: number;
}

export class KafkaKeyStore extends KeyTable implements KeyStore {
  readonly #log: Logger;
  /** When this process last wrote each key's last-used record. */
  readonly #touched = new Map<string, number>();
  readonly #tail: CompactedTopicTail<KeyStoreRecord>;

  constructor(o: KafkaKeyStoreOptions) {
    super();
    this.#log = o.log;
    this.#tail = new CompactedTopicTail<KeyStoreRecord>({
      ...o, topic: API_KEYS, decode: decodeKeyStoreRecord, apply: (r) => this.apply(r), what: 'the key store',
    });
  }

  /** Resolves once every record written before the call has been read. */
  async start(): Promise<void> {
    await this.#tail.start();
    this.#log.info({ keys: this.list(undefined).length }, 'API keys loaded');
  }

  close(): Promise<void> {
    return this.#tail.close();
  }

  async put(record: ApiKeyRecord): Promise<void> {
    await this.#tail.write(keyStoreRecordKey(record), encodeKeyStoreRecord(record));
  }

  touch(keyId: string, at: number): void {
    const last = this.#touched.get(keyId);
    if (last !== undefined && at - last < TOUCH_INTERVAL_MS) return;
    this.#touched.set(keyId, at);
    const used: KeyStoreRecord = { v: 1, type: 'api_key.used', keyId, at };
    this.#tail.write(keyStoreRecordKey(used), encodeKeyStoreRecord(used), false).catch((err: unknown) => {
      this.#log.warn({ key_id: keyId, err: err instanceof Error ? err.message : String(err) }, 'could not record a key\'s last use');
    });
  }
}
