/**
 * Where a job's audio enters the artifact store, whatever API it came through. The job's id is taken before the
 * first byte arrives, so an upload streams straight to its final key (jobs/<id>/audio/original.<ext>) instead of
 * through memory or a temporary file; a request that fails after that discards what was stored.
 */
import { extname } from 'node:path';
import type { Readable } from 'node:stream';
import { SpanStatusCode, context as otelContext, trace, type Attributes, type Context } from '@opentelemetry/api';
import type { Clock } from '../core/clock.js';
import { ATTR, SPAN } from '../core/observability-names.js';
import { artifactKeys } from '../storage/index.js';
import { TRACER_NAME } from './http-server.js';
import { newJobId } from './ids.js';
import type { ArtifactStore } from './ports.js';
import type { FileMeta, FileSink } from './upload.js';

/** A job's identity, fixed before its audio arrives. */
export interface JobSlot {
  readonly jobId: string;
  readonly createdAt: number;
}

export function newJobSlot(clock: Clock): JobSlot {
  const createdAt = clock.now();
  return { jobId: newJobId(createdAt), createdAt };
}

/** A job's audio, stored. */
export interface StoredAudio {
  readonly key: string;
  readonly filename: string;
  readonly bytes: number;
  readonly contentType: string;
}

/** Runs fn in a child span of the active one; errors set status ERROR and are rethrown. */
export async function inSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  return trace.getTracer(TRACER_NAME).startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn();
    } catch (err) {
      span.recordException(err instanceof Error ? err : new Error(String(err)));
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** The extension of the uploaded file name (lower-case, 1-8 alphanumerics) for the artifact key, or ''. */
export function audioExtension(filename: string): string {
  const ext = extname(filename).slice(1).toLowerCase();
  return /^[a-z0-9]{1,8}$/.test(ext) ? ext : '';
}

/** The sink of one job's audio: the artifact store under the job's key, traced as the upload span. */
export class JobAudioSink implements FileSink {
  #stored: StoredAudio | undefined;
  /** The request's context: writes start from body events, which carry none, and their span is the request's child. */
  readonly #context: Context = otelContext.active();

  constructor(
    private readonly store: ArtifactStore,
    readonly slot: JobSlot,
    private readonly attributes: Attributes,
  ) {}

  async write(body: Readable, meta: FileMeta): Promise<void> {
    const key = artifactKeys.originalAudio(this.slot.jobId, audioExtension(meta.filename));
    const bytes = await this.#traced(() => this.store.putStream(key, body, meta.mimeType));
    this.#stored = { key, filename: meta.filename, bytes, contentType: meta.mimeType };
  }

  /** Stores a whole buffer (inline audio of a Kafka request). */
  async writeBuffer(audio: Buffer, meta: FileMeta): Promise<void> {
    const key = artifactKeys.originalAudio(this.slot.jobId, audioExtension(meta.filename));
    await this.#traced(() => this.store.put(key, audio, meta.mimeType));
    this.#stored = { key, filename: meta.filename, bytes: audio.length, contentType: meta.mimeType };
  }

  #traced<T>(fn: () => Promise<T>): Promise<T> {
    const attributes = { ...this.attributes, [ATTR.jobId]: this.slot.jobId, [ATTR.storageBackend]: this.store.backend };
    return otelContext.with(this.#context, () => inSpan(SPAN.uploadToS3, attributes, fn));
  }

  /** What was stored; throws before `write` succeeded. */
  get stored(): StoredAudio {
    if (!this.#stored) throw new Error(`no audio stored for ${this.slot.jobId}`);
    return this.#stored;
  }

  async discard(): Promise<void> {
    await this.store.deletePrefix(artifactKeys.jobPrefix(this.slot.jobId));
  }
}
