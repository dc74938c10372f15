/**
 * Receives a multipart/form-data upload with busboy: the `file` part is streamed into a sink (the artifact store,
 * see gateway/audio-intake.ts) as it arrives, never whole in memory or in a temporary file, under a byte limit;
 * text fields are collected. The request body is pulled as the sink accepts it, so a slow store slows the socket
 * instead of filling memory; a limit crossed or a client that leaves mid-upload leaves nothing stored.
 */
import { Transform, type Readable } from 'node:stream';
import busboy from 'busboy';
import { HttpError, badRequest } from './errors.js';
import type { HttpRequest } from './http-exchange.js';

/** What the client said of its file. */
export interface FileMeta {
  /** Client file name with any directory part removed ('' when none was sent). */
  readonly filename: string;
  readonly mimeType: string;
}

/** Where a file goes as it arrives. */
export interface FileSink {
  /** Stores `body` as it arrives; when `body` errors it must leave nothing stored and reject. */
  write(body: Readable, meta: FileMeta): Promise<void>;
  /** Removes what `write` stored (the request failed after it); safe to call more than once. */
  discard(): Promise<void>;
}

export interface UploadOptions {
  /** Largest accepted file in bytes (DALSTON_UPLOAD_MAX_BYTES); more → 413. */
  readonly maxFileBytes: number;
  readonly sink: FileSink;
  /** Name of the file part. @default 'file' */
  readonly fileField?: string;
  /** @default 32 */
  readonly maxFields?: number;
  /** Largest text field in bytes. @default 65536 */
  readonly maxFieldBytes?: number;
  /**
   * A text field that may name the audio's URL instead of a file part, and how to fetch it into the sink (after the
   * body was read and the fields checked). Both a file and a URL is a 400.
   */
  readonly url?: { readonly field: string; fetch(url: string, sink: FileSink): Promise<ReceivedFile> };
  /** Checks the text fields once the body is read, before a missing or empty file is refused (throw to refuse). */
  readonly validateFields?: (fields: readonly (readonly [string, string])[]) => void;
}

export interface ReceivedFile extends FileMeta {
  readonly bytes: number;
}

export interface ReceivedUpload {
  /** The file, already in the sink (the caller discards it if the request fails later). */
  readonly file: ReceivedFile;
  /** Text fields in arrival order; a name given twice appears twice. */
  readonly fields: readonly (readonly [string, string])[];
}

/** A pass-through that counts bytes and fails with a 413 once more than `maxBytes` went through. */
export function byteLimit(maxBytes: number): Transform & { readonly bytes: number } {
  let bytes = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      done(bytes > maxBytes ? fileTooLarge(maxBytes) : null, chunk);
    },
  });
  return Object.defineProperty(t, 'bytes', { get: () => bytes }) as Transform & { readonly bytes: number };
}

/** Multipart overhead tolerated on top of the file limit before Content-Length alone earns a 413. */
const MULTIPART_SLACK_BYTES = 1024 * 1024;

export function fileTooLarge(maxFileBytes: number): HttpError {
  return new HttpError(413, 'file_too_large', `the uploaded file exceeds the limit of ${maxFileBytes} bytes`);
}

function baseName(name: string | undefined): string {
  if (!name) return '';
  const parts = name.split(/[\\/]/);
  return parts[parts.length - 1] ?? '';
}

export async function receiveUpload(req: HttpRequest, options: UploadOptions): Promise<ReceivedUpload> {
  const fileField = options.fileField ?? 'file';
  const contentType = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data\s*;/i.test(contentType)) {
    throw new HttpError(415, 'unsupported_media_type', 'the request body must be multipart/form-data with a "file" part');
  }
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > options.maxFileBytes + MULTIPART_SLACK_BYTES) throw fileTooLarge(options.maxFileBytes);

  let bb: busboy.Busboy;
  try {
    bb = busboy({
      headers: req.headers,
      limits: {
        fileSize: options.maxFileBytes,
        // Two: a second file part reaches the 'file' handler, whose answer names it (one of 1 would fail unnamed).
        files: 2,
        fields: options.maxFields ?? 32,
        fieldSize: options.maxFieldBytes ?? 65536,
      },
    });
  } catch (err) {
    throw badRequest(`malformed multipart request: ${err instanceof Error ? err.message : String(err)}`);
  }

  const fields: [string, string][] = [];
  let file: { filename: string; mimeType: string; bytes: number } | undefined;
  let written: Promise<void> | undefined;
  let current: Readable | undefined;
  const discard = () => options.sink.discard();

  try {
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      const aborted = () => fail(badRequest('the client aborted the upload'));
      const fail = (err: HttpError) => {
        if (failed) return;
        failed = true;
        // Stop feeding busboy: the unread rest of the body stays in the socket (paused) until the answer closes it.
        req.body.unpipe(bb);
        req.signal.removeEventListener('abort', aborted);
        // Ends the sink's write with the error instead of leaving it waiting for data that will not come.
        current?.destroy(err);
        reject(err);
      };
      bb.on('file', (name, stream, info) => {
        // busboy may still emit parts it had buffered when the request failed: nothing may wait on them.
        if (failed) {
          stream.resume();
          return;
        }
        if (name !== fileField || file !== undefined) {
          stream.resume();
          fail(badRequest(name === fileField ? `only one "${fileField}" part is allowed` : `unexpected file part "${name}"; the audio goes in "${fileField}"`));
          return;
        }
        const received = { filename: baseName(info.filename), mimeType: info.mimeType || 'application/octet-stream', bytes: 0 };
        file = received;
        // Counted as the sink reads (a 'data' listener would start the flow before the sink is ready for it).
        const counted = new Transform({
          transform(chunk: Buffer, _enc, done) {
            received.bytes += chunk.length;
            done(null, chunk);
          },
        });
        current = counted;
        counted.on('error', () => undefined); // the sink's write rejects with it; this keeps a late one from crashing
        stream.on('error', (err) => counted.destroy(err));
        stream.on('limit', () => fail(fileTooLarge(options.maxFileBytes)));
        stream.pipe(counted);
        written = options.sink.write(counted, { filename: received.filename, mimeType: received.mimeType });
        written.catch(() => undefined); // awaited below; this only keeps a failure from being unhandled meanwhile
      });
      bb.on('field', (name, value, info) => {
        if (failed) return;
        if (info.valueTruncated) fail(badRequest(`field "${name}" is longer than ${options.maxFieldBytes ?? 65536} bytes`));
        else if (name === fileField) fail(badRequest(`"${fileField}" must be a file part (with a filename), not a text field`));
        else fields.push([name, value]);
      });
      bb.on('filesLimit', () => fail(badRequest(`only one "${fileField}" part is allowed`)));
      bb.on('fieldsLimit', () => fail(badRequest(`too many form fields (at most ${options.maxFields ?? 32})`)));
      bb.on('error', (err: unknown) => fail(badRequest(`malformed multipart body: ${err instanceof Error ? err.message : String(err)}`)));
      bb.on('close', () => {
        req.signal.removeEventListener('abort', aborted);
        if (!failed) resolve();
      });
      // The body stream errors when the client leaves; pipe() would not forward that to busboy.
      req.body.on('error', (err) => fail(err instanceof HttpError ? err : badRequest('the client aborted the upload')));
      if (req.signal.aborted) aborted();
      else req.signal.addEventListener('abort', aborted, { once: true });
      req.body.pipe(bb);
    });
    if (written) await written;
  } catch (err) {
    if (written) await written.catch(() => undefined);
    await discard();
    throw err;
  }
  try {
    // A request whose fields are wrong (or name another input) says so, rather than that the file is missing.
    options.validateFields?.(fields);
  } catch (err) {
    await discard();
    throw err;
  }
  const url = options.url && fields.find(([name]) => name === options.url?.field)?.[1];
  if (options.url && url !== undefined) {
    if (file) {
      await discard();
      throw badRequest(`send the audio either as "${fileField}" or as "${options.url.field}", not both`);
    }
    return { file: await options.url.fetch(url, options.sink), fields };
  }
  if (!file) {
    await discard();
    throw badRequest(`missing "${fileField}": send the audio as a multipart file part named "${fileField}"${options.url ? ` or its URL as "${options.url.field}"` : ''}`);
  }
  const done: { filename: string; mimeType: string; bytes: number } = file;
  if (done.bytes === 0) {
    await discard();
    throw badRequest(`the uploaded file${done.filename ? ` "${done.filename}"` : ''} is empty (0 bytes)`);
  }
  return { file: done, fields };
}

/**
 * A request whose whole body is the audio (Deepgram's pre-recorded API): streamed into the sink as it arrives, never
 * held in memory; over the limit → 413 as soon as it is crossed, with nothing kept.
 */
export async function receiveRawBody(req: HttpRequest, options: Pick<UploadOptions, 'maxFileBytes' | 'sink'>): Promise<ReceivedUpload> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > options.maxFileBytes) throw fileTooLarge(options.maxFileBytes);
  const limit = byteLimit(options.maxFileBytes);
  // The body's own errors (the client gone) reach the sink through the limit stream.
  req.body.on('error', (err) => limit.destroy(err));
  const mimeType = (req.headers['content-type'] ?? 'application/octet-stream').split(';')[0]?.trim() || 'application/octet-stream';
  try {
    await options.sink.write(req.body.pipe(limit), { filename: '', mimeType });
  } catch (err) {
    await options.sink.discard();
    throw err instanceof HttpError ? err : badRequest('the client aborted the upload');
  }
  if (limit.bytes === 0) {
    await options.sink.discard();
    throw badRequest('the request body is empty: send the audio as the body');
  }
  return { file: { filename: '', mimeType, bytes: limit.bytes }, fields: [] };
}

/** A small JSON request body (Deepgram's `{"url": …}`), read whole up to `maxBytes`; more → 413, bad JSON → 400. */
export async function receiveSmallJson(req: HttpRequest, maxBytes = 65_536): Promise<unknown> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  try {
    for await (const chunk of req.body) {
      bytes += (chunk as Buffer).length;
      if (bytes > maxBytes) throw new HttpError(413, 'file_too_large', `the JSON body exceeds ${maxBytes} bytes`);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    throw err instanceof HttpError ? err : badRequest('the client aborted the request');
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw badRequest('the request body is not valid JSON');
  }
}
