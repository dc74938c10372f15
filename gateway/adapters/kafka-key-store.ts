/**
 * The API-key store on the compacted, single-partition `auth.keys` topic: every gateway process reads the whole
 * topic into memory before it serves (start resolves once it has read up to the end it saw at start) and tails it
 * with a short poll, so a key created or revoked through any gateway, or by `dalston keys`, holds on every gateway
 * within a fraction of a second. Why Kafka and not ClickHouse: the store must be shared by all gateways, survive
 * restarts and let a revocation overwrite a key atomically; a compacted topic keyed by key id is exactly that, and
 * ClickHouse merges replacements eventually, not at once.
 */
import type { Logger } from '../../core/logger.js';
import {
  API_KEYS, ReadPosition, StreamConsumer, decodeKeyStoreRecord, encodeKeyStoreRecord, ensureTopics, fetchTopicOffsets, keyStoreRecordKey, newMessageHeaders, prefixed,
  type Admin, type ApiKeyRecord, type DeadLetterWriter, type Kafka, type KeyStoreRecord, type StreamProducer,
} from '../../streams/index.js';
import { KeyTable, TOUCH_INTERVAL_MS, type KeyStore } from '../keys/key-store.js';

export interface KafkaKeyStoreOptions {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: StreamProducer;
  readonly deadLetter: DeadLetterWriter;
  readonly topicPrefix: string;
  /** Unique per process: every process reads every record. */
  readonly groupId: string;
  readonly log: Logger;
  /** @default 5000 */
  readonly writeTimeoutMs?: number;
}

export class KafkaKeyStore extends KeyTable implements KeyStore {
  readonly #o: KafkaKeyStoreOptions;
  readonly #topic: string;
  /** When this process last wrote each key's last-used record. */
  readonly #touched = new Map<string, number>();
  readonly #position = new ReadPosition();
  readonly #consumer: StreamConsumer<KeyStoreRecord | undefined>;

  constructor(o: KafkaKeyStoreOptions) {
    super();
    this.#o = o;
    this.#topic = prefixed(o.topicPrefix, API_KEYS.name);
    this.#consumer = new StreamConsumer<KeyStoreRecord | undefined>({
      kafka: o.kafka, groupId: o.groupId, topics: [this.#topic], decode: decodeKeyStoreRecord, deadLetter: o.deadLetter, log: o.log,
      commitOffsets: false, fromBeginning: true, maxWaitTimeMs: 100, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000,
      // A tombstone (a purged key) removes nothing here that matters: its record was revoked before it was purged.
      onTombstone: () => undefined,
      handler: async (m) => {
        if (m.value) this.apply(m.value);
        this.#position.advance(BigInt(m.offset) + 1n);
      },
    });
  }

  /** Resolves once every record written before the call has been read. */
  async start(): Promise<void> {
    await ensureTopics(this.#o.kafka, [{ ...API_KEYS, name: this.#topic }], this.#o.log);
    const [partition] = await fetchTopicOffsets(this.#o.admin, this.#topic);
    await this.#consumer.start();
    await this.#position.reach(BigInt(partition?.high ?? '0'), 30_000, 'the key store did not read auth.keys to its end in time');
    this.#o.log.info({ keys: this.list(undefined).length }, 'API keys loaded');
  }

  close(): Promise<void> {
    return this.#consumer.close();
  }

  async put(record: ApiKeyRecord): Promise<void> {
    const offset = await this.#write(record);
    await this.#position.reach(offset + 1n, this.#o.writeTimeoutMs ?? 5000, 'the key store did not confirm the write in time');
  }

  touch(keyId: string, at: number): void {
    const last = this.#touched.get(keyId);
    if (last !== undefined && at - last < TOUCH_INTERVAL_MS) return;
    this.#touched.set(keyId, at);
    this.#write({ v: 1, type: 'api_key.used', keyId, at }).catch((err: unknown) => {
      this.#o.log.warn({ key_id: keyId, err: err instanceof Error ? err.message : String(err) }, 'could not record a key\'s last use');
    });
  }

  async #write(r: KeyStoreRecord): Promise<bigint> {
    const sent = await this.#o.producer.send(this.#topic, { key: keyStoreRecordKey(r), value: encodeKeyStoreRecord(r), headers: newMessageHeaders() });
    return BigInt(sent.baseOffset);
  }
}
