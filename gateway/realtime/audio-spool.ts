/**
 * Retention of a session's audio: the 16 kHz s16le frames the gateway publishes are appended to a temporary WAV
 * file (opened on the first frame), whose header is completed at close before the file moves to the artifact store.
 * On disk rather than in memory: a four-hour session is 460 MB of PCM.
 */
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArtifactStore } from '../ports.js';

const HEADER_BYTES = 44;

export function wavHeader(dataBytes: number, sampleRate = 16000): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/** Artifact key of a session's audio; a session resumed through another gateway stores its later part beside it. */
export function sessionAudioKey(sessionId: string, startOffsetSamples: number): string {
  return startOffsetSamples === 0 ? `sessions/${sessionId}/audio.wav` : `sessions/${sessionId}/audio.from-${startOffsetSamples}.wav`;
}

export class AudioSpool {
  #file: Promise<FileHandle> | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #bytes = 0;
  #failed: Error | undefined;
  readonly #path: string;

  constructor(dir: string, private readonly sessionId: string) {
    this.#path = join(dir, `dalston-rt-${sessionId}.wav`);
  }

  append(pcm: Buffer): void {
    this.#file ??= open(this.#path, 'w').then(async (fh) => {
      await fh.write(wavHeader(0), 0, HEADER_BYTES, 0);
      return fh;
    });
    const file = this.#file;
    const position = HEADER_BYTES + this.#bytes;
    this.#bytes += pcm.length;
    this.#chain = this.#chain.then(async () => {
      if (this.#failed !== undefined) return;
      try {
        await (await file).write(pcm, 0, pcm.length, position);
      } catch (err) {
        this.#failed = err instanceof Error ? err : new Error(String(err));
      }
    });
  }

  /** Completes the WAV and stores it; answers the key, or undefined when no audio came. Removes the temp file. */
  async store(store: ArtifactStore, key: string): Promise<string | undefined> {
    if (this.#file === undefined) return undefined;
    const fh = await this.#file;
    try {
      await this.#chain;
      if (this.#failed !== undefined) throw this.#failed;
      await fh.write(wavHeader(this.#bytes), 0, HEADER_BYTES, 0);
      await fh.close();
      await store.putFile(key, this.#path, 'audio/wav');
      return key;
    } finally {
      await fh.close().catch(() => undefined);
      await rm(this.#path, { force: true });
    }
  }

  /** Drops the spooled audio (retention off after all, or the store failed). */
  async discard(): Promise<void> {
    if (this.#file === undefined) return;
    const fh = await this.#file.catch(() => undefined);
    await this.#chain;
    await fh?.close().catch(() => undefined);
    await rm(this.#path, { force: true });
  }
}
