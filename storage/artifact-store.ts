/**
 * Where audio and task artifacts live. Keys are laid out per job and task so one job's data can be listed and
 * deleted together:
 *   jobs/<job_id>/audio/original.<ext>          the upload
 *   jobs/<job_id>/tasks/<task_id>/input.json    what the engine was asked
 *   jobs/<job_id>/tasks/<task_id>/output.json   what it answered (plus any blobs beside it, e.g. audio.wav)
 *   jobs/<job_id>/transcript.json               the merged result
 */
import type { Readable } from 'node:stream';

/** Bytes start..end of an object, both inclusive (as in HTTP's Range). */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export interface ArtifactStore {
  /** 'fs' or 's3', for the dalston.storage.backend span attribute. */
  readonly backend: 'fs' | 's3';
  put(key: string, body: Buffer | Uint8Array, contentType?: string): Promise<void>;
  /** Streams a local file into the store without reading it into memory. */
  putFile(key: string, path: string, contentType?: string): Promise<void>;
  /**
   * Stores a stream as it arrives (an upload straight from the socket), holding at most one part in memory; resolves
   * with the bytes stored. If the stream errors (a limit crossed, the client gone) nothing is left under the key.
   */
  putStream(key: string, body: Readable, contentType?: string): Promise<number>;
  get(key: string): Promise<Buffer>;
  /**
   * Reads an object as a stream, whole or the bytes `start`..`end` (inclusive); `size` is the whole object's.
   * NotFoundError when there is none.
   */
  /** An object's size in bytes; NotFoundError when there is none. */
  size(key: string): Promise<number>;
  getStream(key: string, range?: ByteRange): Promise<{ readonly body: Readable; readonly size: number }>;
  /** Copies an object to a local file (engines work on files). */
  getToFile(key: string, path: string): Promise<void>;
  exists(key: string): Promise<boolean>;
  list(prefix: string): Promise<string[]>;
  deletePrefix(prefix: string): Promise<number>;
}

export const artifactKeys = {
  jobPrefix: (jobId: string) => `jobs/${jobId}/`,
  originalAudio: (jobId: string, ext: string) => `jobs/${jobId}/audio/original${ext ? `.${ext}` : ''}`,
  taskPrefix: (jobId: string, taskId: string) => `jobs/${jobId}/tasks/${taskId}/`,
  taskInput: (jobId: string, taskId: string) => `jobs/${jobId}/tasks/${taskId}/input.json`,
  taskOutput: (jobId: string, taskId: string) => `jobs/${jobId}/tasks/${taskId}/output.json`,
  taskBlob: (jobId: string, taskId: string, name: string) => `jobs/${jobId}/tasks/${taskId}/${name}`,
  transcript: (jobId: string) => `jobs/${jobId}/transcript.json`,
};

/** Rejects keys that could escape the store's root or address outside a job. */
export function assertSafeKey(key: string): void {
  if (key.length === 0 || key.startsWith('/') || key.split('/').some((part) => part === '..' || part === '.')) {
    throw new Error(`unsafe artifact key: ${JSON.stringify(key)}`);
  }
}

/** What every task writes as its output.json: the engine's data plus where its blobs went. */
export interface TaskOutputDocument {
  readonly engine_id: string;
  readonly task_id: string;
  readonly stage: string;
  readonly data: unknown;
  /** Blob name → artifact key. */
  readonly blobs: Readonly<Record<string, string>>;
}

export function isTaskOutputDocument(doc: unknown): doc is TaskOutputDocument {
  return typeof doc === 'object' && doc !== null && 'engine_id' in doc && 'data' in doc && 'blobs' in doc;
}
