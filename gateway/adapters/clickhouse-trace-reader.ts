/** TraceReader over the ClickHouse span store (`spans`, clickhouse/migrations/0007_spans.sql). */
import type { ClickHouse } from '../../clickhouse/client.js';
import { num, qualified, str } from '../../clickhouse/sql.js';
import type { StoredSpan, TraceReader } from '../ports.js';

interface SpanSelect {
  trace_id: string; span_id: string; parent_span_id: string; name: string; service: string; kind: string;
  // UInt64 arrive as JSON strings (output_format_json_quote_64bit_integers).
  start_us: string | number; duration_us: string | number; status_code: string; status_message: string;
  attr_keys: string[]; attr_values: string[];
}

export class ClickHouseTraceReader implements TraceReader {
  constructor(private readonly ch: ClickHouse) {}

  async getTrace(traceId: string, limit: number): Promise<readonly StoredSpan[]> {
    const rows = await this.ch.query<SpanSelect>(
      `SELECT trace_id, span_id, parent_span_id, name, service, kind, start_us, duration_us, status_code, status_message,
              attributes.key AS attr_keys, attributes.value AS attr_values
       FROM ${qualified(this.ch.database, 'spans')}
       WHERE trace_id = ${str(traceId)}
       ORDER BY start_us
       LIMIT ${num(limit)}`,
    );
    return rows.map((r) => {
      const attributes: Record<string, string> = {};
      r.attr_keys.forEach((k, i) => (attributes[k] = r.attr_values[i] ?? ''));
      return {
        traceId: r.trace_id, spanId: r.span_id, parentSpanId: r.parent_span_id, name: r.name, service: r.service, kind: r.kind,
        startUs: Number(r.start_us), durationUs: Number(r.duration_us), statusCode: r.status_code, statusMessage: r.status_message, attributes,
      };
    });
  }
}
