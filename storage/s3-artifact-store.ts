/** S3 (or S3-compatible) artifact store; the endpoint is configurable for MinIO and friends. */
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectsCommand, GetObjectCommand,
  HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, UploadPartCommand, type CompletedPart,
} from '@aws-sdk/client-s3';
import { NotFoundError } from './errors.js';
import { assertSafeKey, type ArtifactStore, type ByteRange } from './artifact-store.js';

export interface S3ArtifactStoreOptions {
  readonly bucket: string;
  readonly region: string;
  /** Unset: AWS. Set: an S3-compatible endpoint, addressed path-style. */
  readonly endpoint?: string;
}

/** Multipart part size: S3's minimum is 5 MiB (except the last part); one part is the memory an upload holds. */
export const S3_PART_BYTES = 8 * 1024 * 1024;

export class S3ArtifactStore implements ArtifactStore {
  readonly backend = 's3' as const;
  private readonly client: S3Client;
  private readonly bucket: string;

  constructor(options: S3ArtifactStoreOptions) {
    this.bucket = options.bucket;
    this.client = new S3Client({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
    });
  }

  async put(key: string, body: Buffer | Uint8Array, contentType?: string): Promise<void> {
    assertSafeKey(key);
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }));
  }

  async putFile(key: string, path: string, contentType?: string): Promise<void> {
    assertSafeKey(key);
    const { size } = await stat(path);
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: createReadStream(path), ContentLength: size, ContentType: contentType }),
    );
  }

  /**
   * A stream shorter than one part is one PutObject; a longer one a multipart upload, part by part as the stream
   * delivers them (the stream is not read while a part is in flight), aborted if the stream fails.
   */
  async putStream(key: string, body: Readable, contentType?: string): Promise<number> {
    assertSafeKey(key);
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let total = 0;
    let uploadId: string | undefined;
    const parts: CompletedPart[] = [];
    const flushPart = async (): Promise<void> => {
      if (uploadId === undefined) {
        const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: contentType }));
        uploadId = created.UploadId;
        if (uploadId === undefined) throw new Error(`S3 gave no upload id for ${key}`);
      }
      const PartNumber = parts.length + 1;
      const part = await this.client.send(new UploadPartCommand({
        Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber, Body: Buffer.concat(pending, pendingBytes), ContentLength: pendingBytes,
      }));
      parts.push({ PartNumber, ETag: part.ETag });
      pending = [];
      pendingBytes = 0;
    };
    try {
      for await (const chunk of body) {
        const buf = chunk as Buffer;
        pending.push(buf);
        pendingBytes += buf.length;
        total += buf.length;
        if (pendingBytes >= S3_PART_BYTES) await flushPart();
      }
      if (uploadId === undefined) {
        await this.put(key, Buffer.concat(pending, pendingBytes), contentType);
        return total;
      }
      if (pendingBytes > 0) await flushPart();
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
      return total;
    } catch (err) {
      if (uploadId !== undefined) {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
      }
      throw err;
    }
  }

  private async body(key: string): Promise<Readable> {
    assertSafeKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return out.Body as Readable;
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') throw new NotFoundError(`artifact ${key} not found`, { cause: err });
      throw err;
    }
  }

  async size(key: string): Promise<number> {
    assertSafeKey(key);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return Number(head.ContentLength ?? 0);
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'NotFound' || name === 'NoSuchKey') throw new NotFoundError(`artifact ${key} not found`, { cause: err });
      throw err;
    }
  }

  async getStream(key: string, range?: ByteRange): Promise<{ body: Readable; size: number }> {
    assertSafeKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }));
      // With a range, ContentLength is the range's; the object's size is after the slash of Content-Range.
      const size = range ? Number(/\/(\d+)$/.exec(out.ContentRange ?? '')?.[1] ?? NaN) : Number(out.ContentLength ?? NaN);
      if (!Number.isFinite(size)) throw new Error(`S3 gave no size for ${key}`);
      return { body: out.Body as Readable, size };
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') throw new NotFoundError(`artifact ${key} not found`, { cause: err });
      throw err;
    }
  }

  async get(key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.body(key)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async getToFile(key: string, path: string): Promise<void> {
    await pipeline(await this.body(key), createWriteStream(path));
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch {
      return false;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const obj of page.Contents ?? []) if (obj.Key) keys.push(obj.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  async deletePrefix(prefix: string): Promise<number> {
    const keys = await this.list(prefix);
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000).map((Key) => ({ Key }));
      await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch } }));
    }
    return keys.length;
  }
}
