/**
 * Dead letters: messages a consumer gave up on, kept with why and where they came from so an operator can
 * inspect and replay them. The record is JSON (readable with any console consumer); the original payload rides
 * along base64-encoded, byte for byte.
 */
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { FailureRecord } from '../core/errors.js';
import { HEADER } from '../core/observability-names.js';
import { newMessageHeaders, type MessageHeaders } from './headers.js';
import type { StreamProducer } from './producer.js';
import { MessageDecodeError } from './validate.js';

/**
 * - `undecodable`: headers or value could not be decoded (corrupt bytes, unknown schema version).
 * - `handler_rejected`: the handler threw a non-retryable error.
 * - `retries_exhausted`: the handler kept throwing retryable errors past the attempt limit.
 */
export type DeadLetterReason = 'undecodable' | 'handler_rejected' | 'retries_exhausted';

export interface DeadLetterSource {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** Record timestamp, ms since the epoch, as kafkajs reports it. */
  readonly timestamp: string;
  readonly groupId: string;
}

export interface DeadLetterRecord {
  readonly v: 1;
  readonly type: 'dead_letter';
  readonly reason: DeadLetterReason;
  readonly error: FailureRecord;
  /** Handler attempts made (0 when the message never reached the handler). */
  readonly attempts: number;
  readonly source: DeadLetterSource;
  /** Original key as UTF-8, or null. */
  readonly key: string | null;
  /** Original record headers, verbatim (as UTF-8 strings). */
  readonly headers: Readonly<Record<string, string>>;
  /** Original value, base64; null for a record without value, or one too large to keep (see payloadOmittedBytes). */
  readonly payloadBase64: string | null;
  /** Set when the original value was left out because the dead letter would exceed Kafka's record size: its size. */
  readonly payloadOmittedBytes?: number;
  readonly deadLetteredAt: number;
}

/** Where a consumer puts messages it gives up on. Resolves once the dead letter is durable. */
export interface DeadLetterSink {
  write(record: DeadLetterRecord): Promise<void>;
  /** Declares the source topics a consumer reads, so their dead-letter count is exported (at 0) before the first one. */
  watch?(topics: readonly string[]): void;
}

/** Counts dead letters per source topic: `dalston_stream_dead_letters_total{topic}` (core/metrics.ts streamMetrics). */
export interface DeadLetterCounter {
  inc(labels: { topic: string }, value?: number): void;
}

export function encodeDeadLetter(record: DeadLetterRecord): Buffer {
  return Buffer.from(JSON.stringify(record), 'utf8');
}

export function decodeDeadLetter(value: Buffer): DeadLetterRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(value.toString('utf8'));
  } catch (err) {
    throw new MessageDecodeError('dead letter is not JSON', { cause: err });
  }
  const r = raw as Partial<DeadLetterRecord> | null;
  if (r === null || typeof r !== 'object' || r.v !== 1 || r.type !== 'dead_letter' || typeof r.reason !== 'string' || r.source === undefined) {
    throw new MessageDecodeError('not a version-1 dead letter');
  }
  return r as DeadLetterRecord;
}

export interface DeadLetterWriterOptions {
  readonly producer: StreamProducer;
  /** Full (prefixed) dead-letter topic name. */
  readonly topic: string;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Incremented per durable dead letter, labelled with the source topic. @default none */
  readonly counter?: DeadLetterCounter;
}

/** Largest original value (base64) a dead letter carries: with the rest it stays under Kafka's default 1 MB record. */
export const DEAD_LETTER_PAYLOAD_MAX_BASE64 = 512 * 1024;

/**
 * A dead letter that Kafka will accept: an original too large to copy is left out (its size noted), or the dead
 * letter itself would be refused and the poison message would block its partition for good.
 */
export function withinRecordSize(record: DeadLetterRecord): DeadLetterRecord {
  if (record.payloadBase64 === null || record.payloadBase64.length <= DEAD_LETTER_PAYLOAD_MAX_BASE64) return record;
  return { ...record, payloadBase64: null, payloadOmittedBytes: Math.floor((record.payloadBase64.length * 3) / 4) };
}

/**
 * Writes dead letters to a topic, keyed like the original message. The Kafka headers keep the original
 * request/tenant/trace headers (so a dead letter shows up in the job's trace and logs) under a new message id.
 */
export class DeadLetterWriter implements DeadLetterSink {
  readonly #producer: StreamProducer;
  readonly #topic: string;
  readonly #clock: Clock;
  readonly #counter: DeadLetterCounter | undefined;

  constructor(options: DeadLetterWriterOptions) {
    this.#producer = options.producer;
    this.#topic = options.topic;
    this.#clock = options.clock ?? systemClock;
    this.#counter = options.counter;
  }

  watch(topics: readonly string[]): void {
    for (const topic of topics) this.#counter?.inc({ topic }, 0);
  }

  get topic(): string {
    return this.#topic;
  }

  async write(record: DeadLetterRecord): Promise<void> {
    const h = record.headers;
    const fresh = newMessageHeaders({ clock: this.#clock });
    const headers: MessageHeaders = {
      ...fresh,
      ...(h[HEADER.requestId] !== undefined && { requestId: h[HEADER.requestId] }),
      ...(h[HEADER.tenantId] !== undefined && { tenantId: h[HEADER.tenantId] }),
      ...(h[HEADER.traceparent] !== undefined && { traceparent: h[HEADER.traceparent] }),
      ...(h[HEADER.tracestate] !== undefined && { tracestate: h[HEADER.tracestate] }),
    };
    await this.#producer.send(this.#topic, { key: record.key, value: encodeDeadLetter(withinRecordSize(record)), headers });
    this.#counter?.inc({ topic: record.source.topic });
  }
}
