/**
 * A tiny OTLP http/protobuf trace receiver on loopback, for tests that run real processes with
 * OTEL_EXPORTER_OTLP_ENDPOINT pointed at it and then assert the span tree they exported. Accepts
 * POST /v1/traces (application/x-protobuf, optionally gzip), answers with an empty ExportTraceServiceResponse,
 * and keeps every decoded span in arrival order. JSON bodies (http/json) are refused with 415: Dalston exports
 * protobuf only, and a test should notice if that changes.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { decodeExportTraceServiceRequest, type DecodedSpan } from './otlp-trace-decoder.js';

export type { DecodedSpan, OtlpAttributes, OtlpAttributeValue, DecodedSpanEvent } from './otlp-trace-decoder.js';

export interface OtlpTestReceiver {
  /** Value for OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://127.0.0.1:43117 (the exporter appends /v1/traces). */
  readonly endpoint: string;
  /** Full traces URL, for an exporter given `url` directly. */
  readonly tracesUrl: string;
  /** Every span received so far, in arrival order. */
  spans(): readonly DecodedSpan[];
  /** Number of export requests received (including malformed ones). */
  readonly requestCount: number;
  /** Bodies that failed to decode, with the reason; a test should assert this is empty. */
  readonly errors: readonly string[];
  /** Resolves with all spans once predicate holds over them; rejects after timeoutMs. */
  waitFor(predicate: (spans: readonly DecodedSpan[]) => boolean, timeoutMs?: number): Promise<readonly DecodedSpan[]>;
  /** Forgets the spans received so far. */
  clear(): void;
  close(): Promise<void>;
}

export interface OtlpTestReceiverOptions {
  /** @default 0 (a free port) */
  readonly port?: number;
  /** Largest accepted body. @default 16 MiB */
  readonly maxBodyBytes?: number;
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(new Error(`body larger than ${max} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startOtlpTestReceiver(options: OtlpTestReceiverOptions = {}): Promise<OtlpTestReceiver> {
  const maxBody = options.maxBodyBytes ?? 16 * 1024 * 1024;
  let received: DecodedSpan[] = [];
  const errors: string[] = [];
  let requestCount = 0;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'POST' || path !== '/v1/traces') {
      res.writeHead(404).end();
      return;
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
    if (type !== 'application/x-protobuf') {
      req.resume();
      res.writeHead(415, { 'content-type': 'text/plain' }).end('only application/x-protobuf is accepted');
      return;
    }
    requestCount += 1;
    readBody(req, maxBody)
      .then((raw) => {
        const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
        received.push(...decodeExportTraceServiceRequest(body));
        // An empty ExportTraceServiceResponse: full success.
        res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 }).end();
        notify();
      })
      .catch((err: unknown) => {
        errors.push(err instanceof Error ? err.message : String(err));
        res.writeHead(400, { 'content-type': 'text/plain' }).end('undecodable body');
        notify();
      });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const endpoint = `http://127.0.0.1:${port}`;

  return {
    endpoint,
    tracesUrl: `${endpoint}/v1/traces`,
    spans: () => received,
    get requestCount() {
      return requestCount;
    },
    errors,
    waitFor(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (predicate(received)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(received);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`OTLP receiver: condition not met within ${timeoutMs} ms (${received.length} spans: ${received.map((s) => s.name).join(', ')})`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    clear() {
      received = [];
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const w of [...waiters]) waiters.delete(w);
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** Spans of one trace indexed for tree assertions. */
export interface SpanTree {
  readonly roots: readonly DecodedSpan[];
  children(span: DecodedSpan): readonly DecodedSpan[];
  parent(span: DecodedSpan): DecodedSpan | undefined;
  byName(name: string): readonly DecodedSpan[];
  /** Indented `name [service]` lines, handy in assertion messages. */
  render(): string;
}

function serviceOf(s: DecodedSpan): string {
  const v = s.resource['service.name'];
  return typeof v === 'string' ? v : '?';
}

export function buildSpanTree(spans: readonly DecodedSpan[]): SpanTree {
  const byId = new Map(spans.map((s) => [s.spanId, s] as const));
  const kids = new Map<string, DecodedSpan[]>();
  const roots: DecodedSpan[] = [];
  const ordered = [...spans].sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : a.startTimeUnixNano > b.startTimeUnixNano ? 1 : 0));
  for (const s of ordered) {
    if (s.parentSpanId !== '' && byId.has(s.parentSpanId)) {
      const list = kids.get(s.parentSpanId) ?? [];
      list.push(s);
      kids.set(s.parentSpanId, list);
    } else roots.push(s);
  }
  const render = (s: DecodedSpan, depth: number): string[] => [
    `${'  '.repeat(depth)}${s.name} [${serviceOf(s)}]`,
    ...(kids.get(s.spanId) ?? []).flatMap((c) => render(c, depth + 1)),
  ];
  return {
    roots,
    children: (s) => kids.get(s.spanId) ?? [],
    parent: (s) => byId.get(s.parentSpanId),
    byName: (name) => ordered.filter((s) => s.name === name),
    render: () => roots.flatMap((r) => render(r, 0)).join('\n'),
  };
}
