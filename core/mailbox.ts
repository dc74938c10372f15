/**
 * Serial execution per key: work for one key (a job, a session) runs one item at a time, in arrival order,
 * while different keys run concurrently. Bounded: a key whose queue is full rejects new work, so a stuck actor
 * is an error, not a silent memory climb.
 */
import { DependencyUnavailableError } from './errors.js';

export class MailboxFullError extends DependencyUnavailableError {
  override readonly code: string = 'DALSTON_ERR_MAILBOX_FULL';
}

export class KeyedMailbox {
  readonly #tails = new Map<string, { tail: Promise<unknown>; depth: number }>();

  /** @param maxDepth items queued or running per key before run() rejects. */
  constructor(private readonly maxDepth = 1000) {}

  /** Keys with queued or running work. */
  get activeKeys(): number {
    return this.#tails.size;
  }

  depth(key: string): number {
    return this.#tails.get(key)?.depth ?? 0;
  }

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const entry = this.#tails.get(key) ?? { tail: Promise.resolve(), depth: 0 };
    if (entry.depth >= this.maxDepth) return Promise.reject(new MailboxFullError(`mailbox of ${key} is full (${this.maxDepth})`));
    entry.depth += 1;
    const result = entry.tail.then(work, work);
    entry.tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, entry);
    const settle = (): void => {
      entry.depth -= 1;
      if (entry.depth === 0 && this.#tails.get(key) === entry) this.#tails.delete(key);
    };
    result.then(settle, settle);
    return result;
  }
}
