/**
 * The webhook worker. Two consumer groups:
 * - **events** (`<prefix>-webhooks-events`) reads job outcomes (jobs.results) and session ends (the
 *   `realtime.session.completed` audit events on analytics), and schedules one delivery per target on
 *   `webhooks.deliveries` (attempt 1, due now) before committing the event.
 * - **deliveries** (`<prefix>-webhooks`) reads that schedule. Each delivery's latest record is its state; the worker
 *   keeps the pending ones in memory with a timer for their due time. An attempt's row goes to the delivery log
 *   (ClickHouse) first, then the delivery's next record (the next attempt, or its end) to the topic, and only then
 *   may the consumer commit past the record that scheduled the attempt (deferred durability: offsets are committed as
 *   a contiguous prefix). A worker killed at any point re-reads every record of a delivery not yet ended: nothing is
 *   lost, and the worst case is an attempt made again with the same `webhook-id` (at-least-once). After an
 *   assignment, timers start only once the partition is read to the end it had, so an older attempt re-read from the
 *   uncommitted tail never fires when a newer one follows it.
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { LOG } from '../core/observability-names.js';
import type { WebhookMetrics } from '../core/metrics.js';
import type { UrlAllowList } from '../core/network-policy.js';
import type { ClickHouse } from '../clickhouse/client.js';
import { BatchWriter } from '../clickhouse/batch-writer.js';
import { formatDateTime } from '../clickhouse/sql.js';
import {
  ANALYTICS, JOB_RESULTS, SCHEMA_VERSION, StreamConsumer, WEBHOOK_DELIVERIES, checkAnalyticsMessage, checkJobResult, decodeMessage, decodeWebhookDeliveryRecord,
  encodeJsonRecord, fetchTopicOffsets, newMessageHeaders, prefixed, startNewGroupAtEnd,
  type Admin, type DeadLetterWriter, type DeferredDurability, type Kafka, type StreamProducer, type TopicPartitions, type WebhookDeliveryRecord,
  type WebhookDeliveryScheduled, type WebhookEndpointRecord, type WebhookEventType,
} from '../streams/index.js';
import { jobWebhookSecret, liveSecrets } from './endpoint-store.js';
import { postWebhook, type AttemptResult } from './http-delivery.js';
import { retryDelayMs, type RetryPolicy } from './retry-schedule.js';
import { bodyOf, deliveryIdOf, eventOfAudit, eventOfOutcome, targetsOf, type WebhookEvent } from './webhook-events.js';
import { signedHeaders } from './webhook-signature.js';

export const DELIVERY_COLUMNS = [
  'time', 'time_ms', 'delivery_id', 'tenant_id', 'endpoint_id', 'url', 'event_type', 'subject_id', 'attempt', 'status', 'http_status', 'error',
  'duration_ms', 'next_attempt_at_ms', 'body',
] as const;
type DeliveryRow = Record<(typeof DELIVERY_COLUMNS)[number], string | number>;

export interface WebhookWorkerOptions {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: StreamProducer;
  readonly deadLetter: DeadLetterWriter;
  readonly topicPrefix: string;
  readonly log: Logger;
  readonly endpoints: { get(endpointId: string): WebhookEndpointRecord | undefined; list(tenantId: string | undefined): WebhookEndpointRecord[] };
  readonly clickhouse: ClickHouse;
  /** Opens the sealed signing secrets (DALSTON_API_KEY). */
  readonly bootstrapKey: string;
  readonly allow: UrlAllowList;
  readonly retry: RetryPolicy;
  readonly timeoutMs: number;
  /** Attempts in flight at once, over all deliveries. */
  readonly maxInFlight: number;
  readonly clock: Clock;
  readonly metrics?: WebhookMetrics;
}

interface Pending {
  readonly record: WebhookDeliveryScheduled;
  readonly partition: number;
  timer: NodeJS.Timeout | undefined;
  inFlight: boolean;
  /** A newer record of the delivery was read: this one does nothing more once its attempt (if any) ends. */
  superseded: boolean;
  /** Lets the consumer commit past this record. */
  readonly done: () => void;
}

type EventSource = { readonly kind: 'event'; readonly event: WebhookEvent } | { readonly kind: 'other' };

/** The contract's log field for what an event is about: a session's id, or a job's. */
function subjectField(eventType: WebhookEventType): string {
  return eventType === 'realtime.session.ended' ? LOG.sessionId : LOG.jobId;
}

/** Longest setTimeout delay Node takes (about 24.8 days); a longer wait is re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class WebhookWorker {
  readonly #o: WebhookWorkerOptions;
  readonly #log: Logger;
  readonly #topic: string;
  readonly #events: StreamConsumer<EventSource>;
  readonly #eventsGroup: string;
  readonly #eventTopics: readonly string[];
  readonly #deliveries: StreamConsumer<WebhookDeliveryRecord>;
  readonly #rows: BatchWriter<DeliveryRow>;
  readonly #pending = new Map<string, Pending>();
  /** Per partition: the end it had when assigned; timers wait until it is read. */
  readonly #catchUp = new Map<number, bigint>();
  readonly #held = new Map<number, Pending[]>();
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];
  #closing = false;

  constructor(o: WebhookWorkerOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'webhook-worker' });
    this.#topic = prefixed(o.topicPrefix, WEBHOOK_DELIVERIES.name);
    const group = o.topicPrefix.replace(/\.$/, '');
    this.#rows = new BatchWriter<DeliveryRow>({
      name: 'webhook_deliveries', log: this.#log, flushIntervalMs: 100, batchRows: 500,
      write: (rows) => o.clickhouse.insert('webhook_deliveries', rows, DELIVERY_COLUMNS),
    });
    this.#eventsGroup = `${group}-webhooks-events`;
    this.#eventTopics = [prefixed(o.topicPrefix, JOB_RESULTS.name), prefixed(o.topicPrefix, ANALYTICS.name)];
    this.#events = new StreamConsumer<EventSource>({
      kafka: o.kafka, groupId: this.#eventsGroup, log: this.#log, deadLetter: o.deadLetter, topics: this.#eventTopics,
      decode: (value) => {
        // The topic decides the schema: an outcome and an analytics fact never share one.
        try {
          return { kind: 'event', event: eventOfOutcome(decodeMessage(checkJobResult, value)) };
        } catch {
          const a = decodeMessage(checkAnalyticsMessage, value);
          const event = a.type === 'analytics.audit_event' ? eventOfAudit(a) : undefined;
          return event ? { kind: 'event', event } : { kind: 'other' };
        }
      },
      handler: async (m) => {
        if (m.value.kind === 'event') await this.#schedule(m.value.event);
      },
      partitionsConsumedConcurrently: 4, maxWaitTimeMs: 100,
      retry: { maxAttempts: Number.POSITIVE_INFINITY, maxBackoffMs: 5000 },
    });
    this.#deliveries = new StreamConsumer<WebhookDeliveryRecord>({
      kafka: o.kafka, groupId: `${group}-webhooks`, topics: [this.#topic], log: this.#log, deadLetter: o.deadLetter,
      decode: decodeWebhookDeliveryRecord,
      handler: async (m) => this.#read(m.value, m.partition, BigInt(m.offset)),
      hooks: { onPartitionsAssigned: (a) => this.#assigned(a), onPartitionsRevoked: (r) => this.#revoked(r) },
      partitionsConsumedConcurrently: WEBHOOK_DELIVERIES.partitions, maxWaitTimeMs: 100,
      sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000,
      // Waiting deliveries never become durable before their time: a close gives in-flight attempts a moment and
      // leaves the rest uncommitted for the next reader (nothing is lost; an interrupted attempt is made again).
      drainTimeoutMs: 3000,
    });
  }

  async start(): Promise<void> {
    await this.#deliveries.start();
    // The first worker of a stack announces what ends from now on, not the week of outcomes the topics still hold.
    await startNewGroupAtEnd(this.#o.admin, this.#eventsGroup, this.#eventTopics, this.#log);
    await this.#events.start();
  }

  async close(): Promise<void> {
    this.#closing = true;
    await this.#events.close();
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    await this.#deliveries.close();
    await this.#rows.close();
  }

  /** One scheduled record per target of the event; resolves once all are on the topic. */
  async #schedule(event: WebhookEvent): Promise<void> {
    const targets = targetsOf(event, this.#o.endpoints.list(event.tenantId));
    if (targets.length === 0) return;
    const now = this.#o.clock.now();
    const body = bodyOf(event);
    await Promise.all(targets.map((target) => this.#write({
      v: SCHEMA_VERSION, type: 'webhook.delivery.scheduled', deliveryId: deliveryIdOf(event, target), tenantId: event.tenantId,
      ...(target.endpointId !== undefined ? { endpointId: target.endpointId } : {}), ...(target.url !== undefined ? { url: target.url } : {}),
      eventType: event.eventType, subjectId: event.subjectId, body, attempt: 1, dueAt: now, createdAt: now,
    })));
    this.#log.info({ event_type: event.eventType, [LOG.tenantId]: event.tenantId, [subjectField(event.eventType)]: event.subjectId, targets: targets.length }, 'webhook deliveries scheduled');
  }

  async #write(r: WebhookDeliveryRecord): Promise<void> {
    await this.#o.producer.send(this.#topic, { key: r.deliveryId, value: encodeJsonRecord(r), headers: newMessageHeaders() });
  }

  async #assigned(assigned: readonly TopicPartitions[]): Promise<void> {
    const offsets = await fetchTopicOffsets(this.#o.admin, this.#topic);
    for (const { partitions } of assigned) {
      for (const p of partitions) this.#catchUp.set(p, BigInt(offsets.find((o) => o.partition === p)?.high ?? '0'));
    }
  }

  #revoked(revoked: readonly TopicPartitions[]): void {
    const lost = new Set(revoked.flatMap((r) => r.partitions));
    for (const [id, p] of this.#pending) {
      if (!lost.has(p.partition) || p.inFlight) continue;
      // The new owner re-reads the record from the committed offset; this member lets it go.
      clearTimeout(p.timer);
      this.#pending.delete(id);
    }
    for (const p of lost) {
      this.#catchUp.delete(p);
      this.#held.delete(p);
    }
    this.#o.metrics?.pending.set(this.#pending.size);
  }

  /** The latest record of a delivery replaces what was held of it. */
  #read(r: WebhookDeliveryRecord, partition: number, offset: bigint): DeferredDurability | undefined {
    const existing = this.#pending.get(r.deliveryId);
    let result: DeferredDurability | undefined;
    if (r.type === 'webhook.delivery.finished') {
      if (existing && existing.record.attempt <= r.attempt) this.#supersede(r.deliveryId, existing);
    } else if (existing && existing.record.attempt >= r.attempt) {
      // An older or repeated schedule (an outcome read twice): the delivery already went further.
    } else {
      if (existing) this.#supersede(r.deliveryId, existing);
      let done!: () => void;
      const durable = new Promise<void>((resolve) => (done = resolve));
      const entry: Pending = { record: r, partition, timer: undefined, inFlight: false, superseded: false, done };
      this.#pending.set(r.deliveryId, entry);
      const end = this.#catchUp.get(partition);
      if (end !== undefined && offset + 1n < end) {
        const held = this.#held.get(partition);
        if (held) held.push(entry);
        else this.#held.set(partition, [entry]);
      } else {
        this.#arm(entry);
      }
      result = { durable };
    }
    const end = this.#catchUp.get(partition);
    if (end !== undefined && offset + 1n >= end) {
      this.#catchUp.delete(partition);
      for (const held of this.#held.get(partition) ?? []) if (!held.superseded) this.#arm(held);
      this.#held.delete(partition);
    }
    this.#o.metrics?.pending.set(this.#pending.size);
    return result;
  }

  #supersede(id: string, existing: Pending): void {
    clearTimeout(existing.timer);
    existing.superseded = true;
    if (!existing.inFlight) existing.done();
    this.#pending.delete(id);
  }

  #arm(entry: Pending): void {
    const wait = Math.max(0, entry.record.dueAt - this.#o.clock.now());
    entry.timer = setTimeout(() => {
      if (wait > MAX_TIMER_MS) this.#arm(entry);
      else void this.#attempt(entry);
    }, Math.min(wait, MAX_TIMER_MS));
  }

  async #slot(): Promise<void> {
    if (this.#inFlight < this.#o.maxInFlight) {
      this.#inFlight++;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#inFlight--;
  }

  async #attempt(entry: Pending): Promise<void> {
    if (entry.superseded || this.#closing) return;
    entry.inFlight = true;
    await this.#slot();
    let recorded = false;
    try {
      if (!entry.superseded && !this.#closing) recorded = await this.#attemptOnce(entry);
    } catch (err) {
      // Only a close interrupts the log or the schedule: the record stays uncommitted and its next reader tries again.
      this.#log.warn({ delivery_id: entry.record.deliveryId, err: err instanceof Error ? err.message : String(err) }, 'webhook attempt not recorded; it will be made again');
    } finally {
      this.#release();
      entry.inFlight = false;
    }
    // A superseded record is behind a newer one of its delivery: nothing of it is left to do.
    if (recorded || entry.superseded) entry.done();
  }

  /** Makes the attempt, logs it, and writes the delivery's next record; true once all of that is durable. */
  async #attemptOnce(entry: Pending): Promise<boolean> {
    const r = entry.record;
    const result = await this.#send(r);
    const now = this.#o.clock.now();
    const delay = result.kind === 'failed' ? retryDelayMs(r.attempt, this.#o.retry) : undefined;
    const nextAt = delay === undefined ? 0 : now + delay;
    this.#o.metrics?.deliveries.inc({ status: result.kind });
    this.#o.metrics?.deliveryDuration.observe(result.ms / 1000);
    const log = { delivery_id: r.deliveryId, [LOG.tenantId]: r.tenantId, endpoint_id: r.endpointId ?? '', event_type: r.eventType, [subjectField(r.eventType)]: r.subjectId, attempt: r.attempt };
    if (result.kind === 'delivered') this.#log.info({ ...log, http_status: result.httpStatus, ms: result.ms }, 'webhook delivered');
    else this.#log.warn({ ...log, status: result.kind, http_status: result.kind === 'failed' ? result.httpStatus : 0, error: result.error, next_attempt_at: nextAt || undefined }, 'webhook attempt did not deliver');
    // The log row first: once the next record is on the topic, this attempt is history and must be in the log.
    await this.#add({
      time: formatDateTime(now), time_ms: now, delivery_id: r.deliveryId, tenant_id: r.tenantId, endpoint_id: r.endpointId ?? '', url: result.url,
      event_type: r.eventType, subject_id: r.subjectId, attempt: r.attempt, status: result.kind,
      http_status: result.kind === 'delivered' || result.kind === 'failed' ? result.httpStatus : 0,
      error: result.kind === 'delivered' ? '' : result.error, duration_ms: result.ms, next_attempt_at_ms: nextAt, body: r.body,
    });
    if (!entry.superseded) {
      await this.#durably(nextAt > 0
        ? { ...r, attempt: r.attempt + 1, dueAt: nextAt }
        : { v: SCHEMA_VERSION, type: 'webhook.delivery.finished', deliveryId: r.deliveryId, attempt: r.attempt, outcome: result.kind, at: now });
    }
    return true;
  }

  /** Signs and sends one attempt; a deleted or disabled endpoint drops the delivery. */
  async #send(r: WebhookDeliveryScheduled): Promise<(AttemptResult | { readonly kind: 'dropped'; readonly error: string; readonly ms: number }) & { readonly url: string }> {
    const now = this.#o.clock.now();
    let url = r.url ?? '';
    let secrets: string[];
    if (r.endpointId !== undefined) {
      const endpoint = this.#o.endpoints.get(r.endpointId);
      if (!endpoint || endpoint.deletedAt !== undefined || !endpoint.enabled) {
        return { kind: 'dropped', error: 'the endpoint was deleted or disabled', ms: 0, url: endpoint?.url ?? '' };
      }
      url = endpoint.url;
      secrets = liveSecrets(endpoint, this.#o.bootstrapKey, now);
      if (secrets.length === 0) return { kind: 'dropped', error: 'no signing secret of the endpoint opens with this DALSTON_API_KEY', ms: 0, url };
    } else {
      secrets = [jobWebhookSecret(this.#o.bootstrapKey, r.tenantId)];
    }
    const headers = signedHeaders(secrets, r.deliveryId, Math.floor(now / 1000), r.body);
    return { ...(await postWebhook(url, headers, r.body, this.#o.allow, this.#o.timeoutMs)), url };
  }

  async #add(row: DeliveryRow): Promise<void> {
    while (!this.#rows.add(row)) await this.#rows.whenWritable();
    await this.#rows.whenWritten();
  }

  /** Writes the delivery's next record, retrying while Kafka is away (unless closing). */
  async #durably(r: WebhookDeliveryRecord): Promise<void> {
    for (let wait = 200; ; wait = Math.min(wait * 2, 5000)) {
      try {
        await this.#write(r);
        return;
      } catch (err) {
        if (this.#closing) throw err;
        this.#log.warn({ delivery_id: r.deliveryId, err: err instanceof Error ? err.message : String(err) }, 'could not write the delivery\'s next record; retrying');
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }
}
