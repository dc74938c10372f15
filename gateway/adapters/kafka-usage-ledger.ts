/**
 * What every gateway counts against tenants' limits, shared through the one-partition topic `tenants.usage`:
 * - request counts: each gateway counts its own requests in memory, publishes its running total per tenant and
 *   minute every `flushMs` when it changed, and tails the topic for the others' totals. A limit then holds across
 *   gateways to within what they count in one flush interval plus the tail's poll, which the README states.
 * - admission claims for concurrency limits: appended and read back before a job or session starts, so the topic's
 *   order decides between gateways admitting at the same moment (gateway/limits/concurrency-admission.ts).
 */
import type { Logger } from '../../core/logger.js';
import {
  ReadPosition, StreamConsumer, TENANT_USAGE, decodeUsageRecord, encodeUsageRecord, ensureTopics, newMessageHeaders, prefixed,
  type AdmissionKind, type DeadLetterWriter, type Kafka, type StreamProducer, type UsageRecord,
} from '../../streams/index.js';
import { CLAIM_RECENT_MS, type AdmissionLedger } from '../limits/tenant-admission.js';
import { windowOf } from '../limits/request-window.js';
import type { RequestCounter } from '../limits/request-limiter.js';

export interface KafkaUsageLedgerOptions {
  readonly kafka: Kafka;
  readonly producer: StreamProducer;
  readonly deadLetter: DeadLetterWriter;
  readonly topicPrefix: string;
  /** This gateway's id (its own request counts are skipped on the tail: it knows them first-hand). */
  readonly gatewayId: string;
  /** Unique per process. */
  readonly groupId: string;
  readonly log: Logger;
  /** @default 100 */
  readonly flushMs?: number;
  /** @default 5000 */
  readonly claimTimeoutMs?: number;
  readonly now?: () => number;
}

interface Claim {
  readonly id: string;
  readonly at: number;
}

export class KafkaUsageLedger implements RequestCounter, AdmissionLedger {
  readonly #o: KafkaUsageLedgerOptions;
  readonly #topic: string;
  /** `tenant|window` → this gateway's count. */
  readonly #local = new Map<string, number>();
  /** Keys of #local changed since the last flush. */
  readonly #dirty = new Set<string>();
  /** `tenant|window` → gateway id → that gateway's latest total. */
  readonly #remote = new Map<string, Map<string, number>>();
  /** `tenant|kind` → claims in log order (withdrawn ones removed), the last CLAIM_RECENT_MS of them. */
  readonly #claims = new Map<string, Claim[]>();
  readonly #position = new ReadPosition();
  readonly #consumer: StreamConsumer<UsageRecord>;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(o: KafkaUsageLedgerOptions) {
    this.#o = o;
    this.#topic = prefixed(o.topicPrefix, TENANT_USAGE.name);
    this.#consumer = new StreamConsumer<UsageRecord>({
      kafka: o.kafka, groupId: o.groupId, topics: [this.#topic], decode: decodeUsageRecord, deadLetter: o.deadLetter, log: o.log,
      commitOffsets: false, fromBeginning: true, maxWaitTimeMs: 100, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000,
      handler: async (m) => {
        this.#apply(m.value);
        this.#position.advance(BigInt(m.offset) + 1n);
      },
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

  async claim(tenantId: string, kind: AdmissionKind, id: string): Promise<readonly string[]> {
    const at = this.#now();
    const record: UsageRecord = { v: 1, type: 'usage.admission', gatewayId: this.#o.gatewayId, tenantId, kind, id, at };
    const sent = await this.#o.producer.send(this.#topic, { key: `${tenantId}|${kind}`, value: encodeUsageRecord(record), headers: newMessageHeaders() });
    await this.#position.reach(BigInt(sent.baseOffset) + 1n, this.#o.claimTimeoutMs ?? 5000, 'the usage ledger did not confirm the admission claim in time');
    const claims = this.#claims.get(`${tenantId}|${kind}`) ?? [];
    const mine = claims.findIndex((c) => c.id === id);
    return claims.slice(0, mine < 0 ? claims.length : mine).filter((c) => c.at >= at - CLAIM_RECENT_MS).map((c) => c.id);
  }

  withdraw(tenantId: string, kind: AdmissionKind, id: string): void {
    const record: UsageRecord = { v: 1, type: 'usage.withdrawn', tenantId, kind, id };
    this.#o.producer.send(this.#topic, { key: `${tenantId}|${kind}`, value: encodeUsageRecord(record), headers: newMessageHeaders() }).catch((err: unknown) => {
      // Unwithdrawn, the claim counts against the tenant for CLAIM_RECENT_MS at most.
      this.#o.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not withdraw a refused admission claim');
    });
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  #apply(r: UsageRecord): void {
    if (r.type === 'usage.requests') {
      if (r.gatewayId === this.#o.gatewayId) return;
      const key = `${r.tenantId}|${r.window}`;
      const byGateway = this.#remote.get(key) ?? new Map<string, number>();
      byGateway.set(r.gatewayId, Math.max(r.count, byGateway.get(r.gatewayId) ?? 0));
      this.#remote.set(key, byGateway);
      return;
    }
    const key = `${r.tenantId}|${r.kind}`;
    const claims = this.#claims.get(key) ?? [];
    if (r.type === 'usage.admission') {
      // Claims older than the recent window no longer count (ClickHouse shows their jobs by then).
      const cutoff = this.#now() - 2 * CLAIM_RECENT_MS;
      this.#claims.set(key, [...claims.filter((c) => c.at >= cutoff), { id: r.id, at: r.at }]);
    } else {
      this.#claims.set(key, claims.filter((c) => c.id !== r.id));
    }
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

  /** Forgets request windows before the previous one. */
  #prune(): void {
    const oldest = windowOf(this.#now()) - 1;
    for (const map of [this.#local, this.#remote]) {
      for (const key of map.keys()) if (Number(key.split('|')[1]) < oldest) map.delete(key);
    }
  }
}
