/**
 * A SpanExporter that writes finished spans to the ClickHouse `spans` table (clickhouse/migrations/0007_spans.sql),
 * so a stack without Jaeger can still show a job's waterfall. Used behind a BatchSpanProcessor: one export call is
 * one INSERT of the whole batch. The insert function is injected (no dependency on the clickhouse/ client module);
 * a failed insert reports FAILED to the processor, which drops that batch (tracing must never back-pressure jobs).
 */
import { SpanKind, SpanStatusCode, type AttributeValue, type HrTime } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ATTR } from '../observability-names.js';

/** Inserts rows (JSON objects keyed by column name) into table, naming the columns (ClickHouse 18.16 needs them). */
export type InsertRows = (table: string, rows: readonly Readonly<Record<string, unknown>>[], columns: readonly string[]) => Promise<void>;

export const SPANS_TABLE = 'spans';

export const SPAN_COLUMNS = [
  'trace_id',
  'span_id',
  'parent_span_id',
  'name',
  'service',
  'kind',
  'start_time',
  'start_us',
  'duration_us',
  'status_code',
  'status_message',
  'job_id',
  'attributes.key',
  'attributes.value',
] as const;

// A type alias (not an interface) so a row is assignable to Record<string, unknown>.
export type SpanRow = {
  readonly trace_id: string;
  readonly span_id: string;
  readonly parent_span_id: string;
  readonly name: string;
  readonly service: string;
  /** INTERNAL | SERVER | CLIENT | PRODUCER | CONSUMER */
  readonly kind: string;
  /** UTC `YYYY-MM-DD hh:mm:ss` (the DateTime text form 18.16 accepts). */
  readonly start_time: string;
  readonly start_us: number;
  readonly duration_us: number;
  /** UNSET | OK | ERROR */
  readonly status_code: string;
  readonly status_message: string;
  readonly job_id: string;
  readonly 'attributes.key': readonly string[];
  readonly 'attributes.value': readonly string[];
};

const KIND_NAMES: Readonly<Record<SpanKind, string>> = {
  [SpanKind.INTERNAL]: 'INTERNAL',
  [SpanKind.SERVER]: 'SERVER',
  [SpanKind.CLIENT]: 'CLIENT',
  [SpanKind.PRODUCER]: 'PRODUCER',
  [SpanKind.CONSUMER]: 'CONSUMER',
};

const STATUS_NAMES: Readonly<Record<SpanStatusCode, string>> = {
  [SpanStatusCode.UNSET]: 'UNSET',
  [SpanStatusCode.OK]: 'OK',
  [SpanStatusCode.ERROR]: 'ERROR',
};

/** Microseconds since the epoch; an integer. */
function hrTimeToMicros(t: HrTime): number {
  return t[0] * 1_000_000 + Math.floor(t[1] / 1000);
}

/** UTC `YYYY-MM-DD hh:mm:ss` for a time in epoch seconds. */
export function clickhouseDateTime(epochSeconds: number): string {
  return new Date(Math.floor(epochSeconds) * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

function attributeText(v: AttributeValue): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Maps one finished span to its `spans` row. Attributes are stored as text; arrays as JSON. */
export function spanToRow(span: ReadableSpan): SpanRow {
  const ctx = span.spanContext();
  const keys: string[] = [];
  const values: string[] = [];
  for (const [k, v] of Object.entries(span.attributes)) {
    if (v === undefined) continue;
    keys.push(k);
    values.push(attributeText(v));
  }
  const service = span.resource.attributes['service.name'];
  const jobId = span.attributes[ATTR.jobId];
  const startUs = hrTimeToMicros(span.startTime);
  return {
    trace_id: ctx.traceId,
    span_id: ctx.spanId,
    parent_span_id: span.parentSpanContext?.spanId ?? '',
    name: span.name,
    service: typeof service === 'string' ? service : '',
    kind: KIND_NAMES[span.kind] ?? 'INTERNAL',
    start_time: clickhouseDateTime(span.startTime[0]),
    start_us: startUs,
    duration_us: Math.max(0, hrTimeToMicros(span.endTime) - startUs),
    status_code: STATUS_NAMES[span.status.code] ?? 'UNSET',
    status_message: span.status.message ?? '',
    job_id: typeof jobId === 'string' ? jobId : '',
    'attributes.key': keys,
    'attributes.value': values,
  };
}

export interface ClickHouseSpanExporterOptions {
  readonly insert: InsertRows;
  /** @default 'spans' */
  readonly table?: string;
}

export class ClickHouseSpanExporter implements SpanExporter {
  private readonly insert: InsertRows;
  private readonly table: string;
  private readonly pending = new Set<Promise<void>>();
  private stopped = false;

  constructor(options: ClickHouseSpanExporterOptions) {
    this.insert = options.insert;
    this.table = options.table ?? SPANS_TABLE;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.stopped) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('ClickHouseSpanExporter is shut down') });
      return;
    }
    if (spans.length === 0) {
      resultCallback({ code: ExportResultCode.SUCCESS });
      return;
    }
    let rows: SpanRow[];
    try {
      rows = spans.map(spanToRow);
    } catch (error) {
      resultCallback({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) });
      return;
    }
    const p = this.insert(this.table, rows, SPAN_COLUMNS).then(
      () => resultCallback({ code: ExportResultCode.SUCCESS }),
      (error: unknown) => resultCallback({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) }),
    );
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Waits for inserts in flight. */
  async forceFlush(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    await this.forceFlush();
  }
}
