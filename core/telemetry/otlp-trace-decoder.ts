/**
 * Decoder of OTLP ExportTraceServiceRequest protobuf bodies (opentelemetry/proto/collector/trace/v1). The
 * exporter's own package (@opentelemetry/otlp-transformer 0.223) only serialises requests and decodes responses,
 * and its reader is internal, so this is a small reader for exactly the messages tests look at: resources, scopes,
 * spans with ids, parent ids, kind, times, attributes, events and status. Unknown fields are skipped.
 */

export type OtlpAttributeValue = string | number | boolean | bigint | Uint8Array | readonly OtlpAttributeValue[] | { readonly [key: string]: OtlpAttributeValue } | null;
export type OtlpAttributes = Readonly<Record<string, OtlpAttributeValue>>;

export interface DecodedSpanEvent {
  readonly name: string;
  readonly timeUnixNano: bigint;
  readonly attributes: OtlpAttributes;
}

export interface DecodedSpan {
  /** 32 lowercase hex characters. */
  readonly traceId: string;
  /** 16 lowercase hex characters. */
  readonly spanId: string;
  /** 16 hex characters, or '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number;
  readonly startTimeUnixNano: bigint;
  readonly endTimeUnixNano: bigint;
  readonly attributes: OtlpAttributes;
  readonly events: readonly DecodedSpanEvent[];
  /** OTLP StatusCode: 0 unset, 1 ok, 2 error. */
  readonly statusCode: number;
  readonly statusMessage: string;
  /** Resource attributes of the process that produced the span (service.name, ...). */
  readonly resource: OtlpAttributes;
  readonly scope: { readonly name: string; readonly version: string };
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

class Reader {
  pos = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  atEnd(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++] ?? 0;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error('varint too long');
    }
  }
  tag(): { field: number; wire: number } {
    const t = Number(this.varint());
    return { field: t >>> 3, wire: t & 7 };
  }
  bytes(): Uint8Array {
    const len = Number(this.varint());
    if (this.pos + len > this.buf.length) throw new Error('truncated length-delimited field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  string(): string {
    return new TextDecoder().decode(this.bytes());
  }
  fixed64(): bigint {
    if (this.pos + 8 > this.buf.length) throw new Error('truncated fixed64');
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  double(): number {
    if (this.pos + 8 > this.buf.length) throw new Error('truncated double');
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.bytes();
        return;
      case WIRE_FIXED32:
        this.pos += 4;
        return;
      default:
        throw new Error(`unsupported wire type ${wire}`);
    }
  }
}

/** Iterates the fields of one message, calling onField; onField returns false for fields it did not consume. */
function eachField(buf: Uint8Array, onField: (field: number, wire: number, r: Reader) => boolean): void {
  const r = new Reader(buf);
  while (!r.atEnd()) {
    const { field, wire } = r.tag();
    if (!onField(field, wire, r)) r.skip(wire);
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function toSigned64(v: bigint): bigint {
  return BigInt.asIntN(64, v);
}

function decodeAnyValue(buf: Uint8Array): OtlpAttributeValue {
  let value: OtlpAttributeValue = null;
  eachField(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_LEN) value = r.string();
    else if (field === 2 && wire === WIRE_VARINT) value = r.varint() !== 0n;
    else if (field === 3 && wire === WIRE_VARINT) {
      const n = toSigned64(r.varint());
      value = n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    } else if (field === 4 && wire === WIRE_FIXED64) value = r.double();
    else if (field === 5 && wire === WIRE_LEN) {
      const items: OtlpAttributeValue[] = [];
      eachField(r.bytes(), (f, w, rr) => {
        if (f === 1 && w === WIRE_LEN) {
          items.push(decodeAnyValue(rr.bytes()));
          return true;
        }
        return false;
      });
      value = items;
    } else if (field === 6 && wire === WIRE_LEN) value = decodeKeyValues(r.bytes(), 1);
    else if (field === 7 && wire === WIRE_LEN) value = Uint8Array.from(r.bytes());
    else return false;
    return true;
  });
  return value;
}

function decodeKeyValue(buf: Uint8Array): [string, OtlpAttributeValue] {
  let key = '';
  let value: OtlpAttributeValue = null;
  eachField(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_LEN) key = r.string();
    else if (field === 2 && wire === WIRE_LEN) value = decodeAnyValue(r.bytes());
    else return false;
    return true;
  });
  return [key, value];
}

/** Decodes the repeated KeyValue field `kvField` of a message into a record. */
function decodeKeyValues(buf: Uint8Array, kvField: number): Record<string, OtlpAttributeValue> {
  const out: Record<string, OtlpAttributeValue> = {};
  eachField(buf, (field, wire, r) => {
    if (field === kvField && wire === WIRE_LEN) {
      const [k, v] = decodeKeyValue(r.bytes());
      out[k] = v;
      return true;
    }
    return false;
  });
  return out;
}

function decodeEvent(buf: Uint8Array): DecodedSpanEvent {
  let name = '';
  let timeUnixNano = 0n;
  eachField(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_FIXED64) timeUnixNano = r.fixed64();
    else if (field === 2 && wire === WIRE_LEN) name = r.string();
    else return false;
    return true;
  });
  return { name, timeUnixNano, attributes: decodeKeyValues(buf, 3) };
}

type SpanCore = Omit<DecodedSpan, 'resource' | 'scope'>;

function decodeSpan(buf: Uint8Array): SpanCore {
  let traceId = '';
  let spanId = '';
  let parentSpanId = '';
  let name = '';
  let kind = 0;
  let startTimeUnixNano = 0n;
  let endTimeUnixNano = 0n;
  let statusCode = 0;
  let statusMessage = '';
  const events: DecodedSpanEvent[] = [];
  eachField(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_LEN) traceId = hex(r.bytes());
    else if (field === 2 && wire === WIRE_LEN) spanId = hex(r.bytes());
    else if (field === 4 && wire === WIRE_LEN) parentSpanId = hex(r.bytes());
    else if (field === 5 && wire === WIRE_LEN) name = r.string();
    else if (field === 6 && wire === WIRE_VARINT) kind = Number(r.varint());
    else if (field === 7 && wire === WIRE_FIXED64) startTimeUnixNano = r.fixed64();
    else if (field === 8 && wire === WIRE_FIXED64) endTimeUnixNano = r.fixed64();
    else if (field === 11 && wire === WIRE_LEN) events.push(decodeEvent(r.bytes()));
    else if (field === 15 && wire === WIRE_LEN) {
      eachField(r.bytes(), (f, w, rr) => {
        if (f === 2 && w === WIRE_LEN) statusMessage = rr.string();
        else if (f === 3 && w === WIRE_VARINT) statusCode = Number(rr.varint());
        else return false;
        return true;
      });
    } else return false;
    return true;
  });
  return { traceId, spanId, parentSpanId, name, kind, startTimeUnixNano, endTimeUnixNano, attributes: decodeKeyValues(buf, 9), events, statusCode, statusMessage };
}

function decodeScopeSpans(buf: Uint8Array, resource: OtlpAttributes): DecodedSpan[] {
  let scope = { name: '', version: '' };
  const cores: SpanCore[] = [];
  eachField(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_LEN) {
      let name = '';
      let version = '';
      eachField(r.bytes(), (f, w, rr) => {
        if (f === 1 && w === WIRE_LEN) name = rr.string();
        else if (f === 2 && w === WIRE_LEN) version = rr.string();
        else return false;
        return true;
      });
      scope = { name, version };
    } else if (field === 2 && wire === WIRE_LEN) cores.push(decodeSpan(r.bytes()));
    else return false;
    return true;
  });
  return cores.map((c) => ({ ...c, resource, scope }));
}

function decodeResourceSpans(buf: Uint8Array): DecodedSpan[] {
  let resource: OtlpAttributes = {};
  const scopeBufs: Uint8Array[] = [];
  eachField(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_LEN) resource = decodeKeyValues(r.bytes(), 1);
    else if (field === 2 && wire === WIRE_LEN) scopeBufs.push(r.bytes());
    else return false;
    return true;
  });
  return scopeBufs.flatMap((b) => decodeScopeSpans(b, resource));
}

/** Decodes an ExportTraceServiceRequest body into a flat list of spans. Throws on malformed input. */
export function decodeExportTraceServiceRequest(body: Uint8Array): DecodedSpan[] {
  const spans: DecodedSpan[] = [];
  eachField(body, (field, wire, r) => {
    if (field === 1 && wire === WIRE_LEN) {
      spans.push(...decodeResourceSpans(r.bytes()));
      return true;
    }
    return false;
  });
  return spans;
}
