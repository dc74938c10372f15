/**
 * How far a process has read a one-partition topic it tails, and waiting for the read to pass an offset: the
 * read-your-writes step of the topics every process tails whole (used tokens, API keys, tenant usage). A writer
 * produces, learns its record's offset, and waits here until its own tail has read that far, so what it acts on
 * next includes its write and everything ordered before it.
 */
import { DependencyUnavailableError } from '../core/errors.js';

export class ReadPosition {
  /** The next offset to read. */
  #next = 0n;
  readonly #waiters = new Set<{ target: bigint; resolve: () => void }>();

  get next(): bigint {
    return this.#next;
  }

  /** The tail handled the record before `next`. */
  advance(next: bigint): void {
    this.#next = next;
    for (const w of this.#waiters) if (this.#next >= w.target) w.resolve();
  }

  /** Resolves once the next offset to read is at least `target`; rejects (dependency unavailable) after `timeoutMs`. */
  reach(target: bigint, timeoutMs: number, message: string): Promise<void> {
    if (this.#next >= target) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        target,
        resolve: () => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new DependencyUnavailableError(message));
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }
}
