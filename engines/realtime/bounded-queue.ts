/**
 * A session's mailbox: a FIFO with a bound. put() waits while the queue is full, which holds back only the Kafka
 * partition the session's messages come from (backpressure), never other sessions' queues.
 */
import { IllegalStateError } from '../../core/errors.js';

export class BoundedQueue<T> {
  readonly #items: T[] = [];
  readonly #takers: ((item: T | undefined) => void)[] = [];
  readonly #spaceWaiters: (() => void)[] = [];
  #closed = false;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new IllegalStateError(`queue capacity must be a positive integer, got ${capacity}`);
  }

  get length(): number {
    return this.#items.length;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The item next in line, without taking it. */
  peek(): T | undefined {
    return this.#items[0];
  }

  /** Resolves once the item is queued (at once while there is room). Rejects when the queue is closed. */
  async put(item: T): Promise<void> {
    while (!this.#closed && this.#items.length >= this.capacity && this.#takers.length === 0) {
      await new Promise<void>((resolve) => this.#spaceWaiters.push(resolve));
    }
    if (this.#closed) throw new IllegalStateError('queue is closed');
    const taker = this.#takers.shift();
    if (taker !== undefined) taker(item);
    else this.#items.push(item);
  }

  /** Next item in order; undefined once the queue is closed and empty. */
  async take(): Promise<T | undefined> {
    const item = this.#items.shift();
    if (item !== undefined) {
      this.#spaceWaiters.shift()?.();
      return item;
    }
    if (this.#closed) return undefined;
    return new Promise<T | undefined>((resolve) => this.#takers.push(resolve));
  }

  /** Ends the queue: waiting takers get undefined, waiting putters reject; queued items are dropped. */
  close(): T[] {
    this.#closed = true;
    const dropped = this.#items.splice(0);
    for (const t of this.#takers.splice(0)) t(undefined);
    for (const w of this.#spaceWaiters.splice(0)) w();
    return dropped;
  }
}
