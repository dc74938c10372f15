/**
 * Receives a multipart/form-data upload with busboy: the `file` part is streamed to a temporary file (never held in
 * memory) under a byte limit; text fields are collected. The caller moves the file into the artifact store and
 * must call `discard()` when done. The request body is pulled as the temporary file accepts it, so a slow disk
 * slows the socket instead of filling memory; a client that leaves mid-upload leaves no file behind.
 */
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { HttpError, badRequest } from './errors.js';
import type { HttpRequest } from './http-exchange.js';

export interface UploadOptions {
  /** Largest accepted file in bytes (DALSTON_UPLOAD_MAX_BYTES); more → 413. */
  readonly maxFileBytes: number;
  /** Directory for the temporary file. */
  readonly tmpDir: string;
  /** Name of the file part. @default 'file' */
  readonly fileField?: string;
  /** @default 32 */
  readonly maxFields?: number;
  /** Largest text field in bytes. @default 65536 */
  readonly maxFieldBytes?: number;
  /** Checks the text fields once the body is read, before a missing or empty file is refused (throw to refuse). */
  readonly validateFields?: (fields: readonly (readonly [string, string])[]) => void;
}

export interface ReceivedFile {
  /** Temporary file holding the upload. */
  readonly path: string;
  /** Client file name with any directory part removed ('' when none was sent). */
  readonly filename: string;
  readonly mimeType: string;
  readonly bytes: number;
}

export interface ReceivedUpload {
  readonly file: ReceivedFile;
  /** Text fields in arrival order; a name given twice appears twice. */
  readonly fields: readonly (readonly [string, string])[];
  /** Removes the temporary file; safe to call more than once. */
  discard(): Promise<void>;
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
        files: 1,
        fields: options.maxFields ?? 32,
        fieldSize: options.maxFieldBytes ?? 65536,
      },
    });
  } catch (err) {
    throw badRequest(`malformed multipart request: ${err instanceof Error ? err.message : String(err)}`);
  }

  const tmpPath = join(options.tmpDir, `dalston-upload-${randomUUID()}`);
  const fields: [string, string][] = [];
  let file: { filename: string; mimeType: string; bytes: number } | undefined;
  let written: Promise<void> | undefined;
  let current: Readable | undefined;
  const discard = async () => rm(tmpPath, { force: true });

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
        // Ends the temp-file pipeline instead of leaving it waiting for data that will not come (a plain destroy()
        // of busboy's file stream leaves the pipeline pending).
        current?.destroy(err);
        reject(err);
      };
      bb.on('file', (name, stream, info) => {
        if (name !== fileField || file !== undefined) {
          stream.resume();
          fail(badRequest(name === fileField ? `only one "${fileField}" part is allowed` : `unexpected file part "${name}"; the audio goes in "${fileField}"`));
          return;
        }
        const received = { filename: baseName(info.filename), mimeType: info.mimeType || 'application/octet-stream', bytes: 0 };
        file = received;
        current = stream;
        stream.on('data', (chunk: Buffer) => {
          received.bytes += chunk.length;
        });
        stream.on('limit', () => fail(fileTooLarge(options.maxFileBytes)));
        written = pipeline(stream, createWriteStream(tmpPath));
        written.catch(() => undefined); // awaited below; this only keeps a failure from being unhandled meanwhile
      });
      bb.on('field', (name, value, info) => {
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
      req.body.on('error', () => fail(badRequest('the client aborted the upload')));
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
  if (!file) {
    await discard();
    throw badRequest(`missing "${fileField}": send the audio as a multipart file part named "${fileField}"`);
  }
  const done: { filename: string; mimeType: string; bytes: number } = file;
  if (done.bytes === 0) {
    await discard();
    throw badRequest(`the uploaded file${done.filename ? ` "${done.filename}"` : ''} is empty (0 bytes)`);
  }
  return { file: { path: tmpPath, ...done }, fields, discard };
}

/**
 * A request whose whole body is the audio (Deepgram's pre-recorded API): streamed to a temporary file as it arrives,
 * never held in memory; over the limit → 413 as soon as it is crossed, with nothing kept.
 */
export async function receiveRawBody(req: HttpRequest, options: Pick<UploadOptions, 'maxFileBytes' | 'tmpDir'>): Promise<ReceivedUpload> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > options.maxFileBytes) throw fileTooLarge(options.maxFileBytes);
  const tmpPath = join(options.tmpDir, `dalston-upload-${randomUUID()}`);
  const discard = async () => rm(tmpPath, { force: true });
  let bytes = 0;
  const limit = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      done(bytes > options.maxFileBytes ? fileTooLarge(options.maxFileBytes) : null, chunk);
    },
  });
  try {
    await pipeline(req.body, limit, createWriteStream(tmpPath));
  } catch (err) {
    await discard();
    throw err instanceof HttpError ? err : badRequest('the client aborted the upload');
  }
  if (bytes === 0) {
    await discard();
    throw badRequest('the request body is empty: send the audio as the body');
  }
  const mimeType = (req.headers['content-type'] ?? 'application/octet-stream').split(';')[0]?.trim() || 'application/octet-stream';
  return { file: { path: tmpPath, filename: '', mimeType, bytes }, fields: [], discard };
}
