/**
 * An artifact (an upload, a session's recording) as a download: streamed from the store, never read whole into
 * memory, with HTTP byte ranges so players can seek and clients can resume (`Range: bytes=…` → 206, a range past
 * the end → 416). Several ranges in one request are answered with the whole object, as RFC 9110 allows.
 */
import type { ArtifactStore, ByteRange } from '../storage/index.js';
import { HttpError } from './errors.js';
import type { HttpRequest, HttpResponse } from './http-exchange.js';

/**
 * The single range a `Range` header asks for, clipped to `size`: undefined when there is none or it is not a single
 * byte range (then the whole object is sent), 'unsatisfiable' when it starts past the end. Pure.
 */
export function parseByteRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header ?? '');
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined; // syntactically invalid: ignored
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

export interface Download {
  readonly key: string;
  readonly contentType: string;
  /** The name offered to save it as. */
  readonly filename: string;
  /** Runs once the request is known to be served, before any byte leaves (an audit that must be recorded first). */
  readonly beforeSend?: () => Promise<void>;
}

export async function sendArtifact(store: ArtifactStore, req: HttpRequest, res: HttpResponse, d: Download): Promise<void> {
  const size = await store.size(d.key);
  const range = parseByteRange(req.headers['range'], size);
  const headers = {
    'content-type': d.contentType,
    'content-disposition': `attachment; filename="${d.filename.replace(/["\\\r\n]/g, '_')}"`,
    'accept-ranges': 'bytes',
  };
  if (range === 'unsatisfiable') {
    throw new HttpError(416, 'range_not_satisfiable', `the range "${req.headers['range'] ?? ''}" starts past the end of the ${size} bytes`, {
      headers: { 'content-range': `bytes */${size}` },
    });
  }
  await d.beforeSend?.();
  if (range) {
    const { body } = await store.getStream(d.key, range);
    await res.stream(206, { ...headers, 'content-range': `bytes ${range.start}-${range.end}/${size}` }, body, range.end - range.start + 1);
    return;
  }
  const { body } = await store.getStream(d.key);
  await res.stream(200, headers, body, size);
}
