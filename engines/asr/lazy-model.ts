/**
 * Load-once-on-first-use for model weights, shared by every recogniser: concurrent callers share one load, a
 * failed load may be retried (after set-up repairs the files), and close() releases whatever was loaded.
 */
import { IllegalStateError } from '../../core/errors.js';

export class LazyModel<T> {
  #loading: Promise<T> | undefined;
  #value: T | undefined;
  #closed = false;

  constructor(private readonly loader: () => Promise<T>) {}

  get loaded(): boolean {
    return this.#value !== undefined;
  }

  /** The loaded value, loading it first if needed. */
  async get(): Promise<T> {
    if (this.#closed) throw new IllegalStateError('recogniser is closed');
    if (this.#value !== undefined) return this.#value;
    this.#loading ??= this.loader().then(
      (v) => (this.#value = v),
      (err: unknown) => {
        this.#loading = undefined;
        throw err;
      },
    );
    return this.#loading;
  }

  /** Refuses further use and hands back what was loaded (waiting for a load in flight), for the caller to release. */
  async close(): Promise<T | undefined> {
    this.#closed = true;
    const v = this.#value ?? (this.#loading ? await this.#loading.catch(() => undefined) : undefined);
    this.#value = undefined;
    return v;
  }
}
