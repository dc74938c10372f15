/**
 * Request counts shared by every gateway through `tenants.usage`: each gateway counts its own requests in memory,
 * publishes its running total per tenant and minute every `flushMs` when it changed, and tails the topic for the
 * others' totals. A limit then holds across gateways to within what they count in one flush interval (plus the
 * tail's poll), which the README states.
 */
import type { Logger } from '../../core/logger.js';
import {
  StreamConsumer, TENANT_USAGE, decodeUsageRecord, encodeUsageRecord, ensureTopics, newMessageHeaders, prefixed,
  type DeadLetterWriter, type Kafka, type StreamProducer, type UsageRecord,
} from '../../streams/index.js';
import { windowOf } from '../limits/request-window.js';
import type { RequestCounter } from '../limits/request-limiter.js';

export interface KafkaUsageLedgerOptions {
  readonly kafka: Kafka;
  readonly producer: StreamProducer;
  readonly deadLetter: DeadLetterWriter;
  readonly topicPrefix: string;
  /** This gateway's id (its own records are skipped on the tail: it knows its counts first-hand). */
  readonly gatewayId: string;
  /** Unique per process. */
  readonly groupId: string;
  readonly log: Logger;
  /** @default 100 */
  readonly flushMs?: number;
  readonly now?: () => number;
}

export class KafkaUsageLedger implements RequestCounter {
  readonly #o: KafkaUsageLedgerOptions;
  readonly #topic: string;
  /** `tenant|window` → this gateway's count. */
  readonly #local = new Map<string, number>();
  /** Keys of #local changed since the last flush. */
  readonly #dirty = new Set<string>();
  /** `tenant|window` → gateway id → that gateway's latest total. */
  readonly #remote = new Map<string, Map<string, number>>();
  readonly #consumer: StreamConsumer<UsageRecord>;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(o: KafkaUsageLedgerOptions) {
    this.#o = o;
    this.#topic = prefixed(o.topicPrefix, TENANT_USAGE.name);
    this.#consumer = new StreamConsumer<UsageRecord>({
      kafka: o.kafka, groupId: o.groupId, topics: [this.#topic], decode: decodeUsageRecord, deadLetter: o.deadLetter, log: o.log,
      commitOffsets: false, fromBeginning: true, maxWaitTimeMs: 100, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000,
      handler: async (m) => this.#apply(m.value),
    });
  }

  async start(): Promise<void> {
    await ensureTopics(this.#o.kafka, [{ ...TENANT_USAGE, name: this.#topic }], this.#o.log);
    await this.#consumer.start();
    this.#timer = setInterval(() => {
      this.#flushing = this.#flushing.then(() => this.#flush());
    }, this.#o.flushMs ?? 100);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#flushing;
    await this.#flush();
    await this.#consumer.close();
  }

  counted(tenantId: string, window: number): number {
    const key = `${tenantId}|${window}`;
    let sum = this.#local.get(key) ?? 0;
    for (const n of this.#remote.get(key)?.values() ?? []) sum += n;
    return sum;
  }

  add(tenantId: string, window: number): void {
    const key = `${tenantId}|${window}`;
    this.#local.set(key, (this.#local.get(key) ?? 0) + 1);
    this.#dirty.add(key);
  }

  #apply(r: UsageRecord): void {
    if (r.gatewayId === this.#o.gatewayId) return;
    const key = `${r.tenantId}|${r.window}`;
    const byGateway = this.#remote.get(key) ?? new Map<string, number>();
    byGateway.set(r.gatewayId, Math.max(r.count, byGateway.get(r.gatewayId) ?? 0));
    this.#remote.set(key, byGateway);
  }

  async #flush(): Promise<void> {
    this.#prune();
    if (this.#dirty.size === 0) return;
    const keys = [...this.#dirty];
    this.#dirty.clear();
    const messages = keys.map((key) => {
      const [tenantId = '', window = '0'] = key.split('|');
      const record: UsageRecord = { v: 1, type: 'usage.requests', gatewayId: this.#o.gatewayId, tenantId, window: Number(window), count: this.#local.get(key) ?? 0 };
      return { key: `${this.#o.gatewayId}|${key}`, value: encodeUsageRecord(record), headers: newMessageHeaders() };
    });
    try {
      await this.#o.producer.sendBatch([{ topic: this.#topic, messages }]);
    } catch (err) {
      // Counted again at the next flush: a running total loses nothing by waiting.
      for (const k of keys) this.#dirty.add(k);
      this.#o.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not publish request counts');
    }
  }

  /** Forgets windows before the previous one. */
  #prune(): void {
    const oldest = windowOf((this.#o.now ?? Date.now)()) - 1;
    for (const map of [this.#local, this.#remote]) {
      for (const key of map.keys()) if (Number(key.split('|')[1]) < oldest) map.delete(key);
    }
  }
}
