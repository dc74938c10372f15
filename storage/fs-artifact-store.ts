/** The default artifact store: files under a root directory (DALSTON_HOME/artifacts). */
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import { NotFoundError } from './errors.js';
import { assertSafeKey, type ArtifactStore, type ByteRange } from './artifact-store.js';

export class FsArtifactStore implements ArtifactStore {
  readonly backend = 'fs' as const;
  constructor(private readonly root: string) {}

  private path(key: string): string {
    assertSafeKey(key);
    return join(this.root, key);
  }

  /** Writes to a temporary name then renames, so a reader never sees half an object. */
  async put(key: string, body: Buffer | Uint8Array): Promise<void> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.${randomUUID()}.tmp`;
    await writeFile(tmp, body);
    await rename(tmp, target);
  }

  async putFile(key: string, path: string): Promise<void> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.${randomUUID()}.tmp`;
    await pipeline(createReadStream(path), createWriteStream(tmp));
    await rename(tmp, target);
  }

  async putStream(key: string, body: Readable): Promise<number> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.${randomUUID()}.tmp`;
    let bytes = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(body, count, createWriteStream(tmp));
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return bytes;
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.path(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`artifact ${key} not found`, { cause: err });
      throw err;
    }
  }

  async size(key: string): Promise<number> {
    try {
      return (await stat(this.path(key))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`artifact ${key} not found`, { cause: err });
      throw err;
    }
  }

  async getStream(key: string, range?: ByteRange): Promise<{ body: Readable; size: number }> {
    const size = await this.size(key);
    return { body: createReadStream(this.path(key), range ? { start: range.start, end: range.end } : {}), size };
  }

  async getToFile(key: string, path: string): Promise<void> {
    try {
      await copyFile(this.path(key), path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`artifact ${key} not found`, { cause: err });
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await stat(this.path(key));
      return true;
    } catch {
      return false;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const base = this.path(prefix.replace(/\/+$/, '') || '.');
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const full = join(dir, e.name);
        if (e.isDirectory()) await walk(full);
        else if (!e.name.endsWith('.tmp')) out.push(relative(this.root, full).split('\\').join('/'));
      }
    };
    await walk(base);
    return out.sort();
  }

  async deletePrefix(prefix: string): Promise<number> {
    const keys = await this.list(prefix);
    await rm(this.path(prefix.replace(/\/+$/, '')), { recursive: true, force: true });
    return keys.length;
  }
}
