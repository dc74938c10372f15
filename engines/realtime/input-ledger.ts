/**
 * The realtime.input messages one session still needs, and the commit rule built on them.
 *
 * A partition's offset may be committed only up to the first message some session on it still needs, because a new
 * owner re-reads from the committed offset after a crash. A session needs the audio of its open utterance (from the
 * end of its last final on) and every message after it; it stops needing the rest once the final before that audio is
 * durable (the session actor's snapshot in sessions.state shows it). Each message's release callback tells the
 * consumer the message is no longer needed; the consumer commits the contiguous released prefix of the partition.
 */

export type LedgerKind = 'start' | 'audio' | 'control' | 'reply_to';

export interface LedgerEntry {
  readonly offset: bigint;
  readonly kind: LedgerKind;
  /** Audio only: session sample positions [startSample, endSample). */
  readonly startSample?: number;
  readonly endSample?: number;
  /** When the gateway sent the message (epoch ms). */
  readonly sentAt?: number;
  /** Tells the consumer this offset may be committed. */
  readonly release: () => void;
}

export class InputLedger {
  #entries: LedgerEntry[] = [];

  /** Messages still held. */
  get size(): number {
    return this.#entries.length;
  }

  /** Entries arrive in offset order (one partition, read in order). */
  add(entry: LedgerEntry): void {
    const last = this.#entries[this.#entries.length - 1];
    if (last !== undefined && entry.offset <= last.offset) throw new RangeError(`ledger offsets must increase: ${entry.offset} after ${last.offset}`);
    this.#entries.push(entry);
  }

  /**
   * Where a new owner must start re-reading this session after a final whose utterance ended at `audioOffsetSamples`,
   * emitted while handling the message at `handled`: the first held audio message that reaches past that sample, or
   * else the message after `handled` (the final closed everything received so far, e.g. on a flush). No control
   * message can lie between the utterance's end and the final's message: a flush or end there would have produced
   * the final itself, a clear would have dropped the utterance.
   */
  resumeOffset(audioOffsetSamples: number, handled: bigint): bigint {
    for (const e of this.#entries) {
      if (e.kind === 'audio' && (e.endSample ?? 0) > audioOffsetSamples && e.offset <= handled) return e.offset;
    }
    return handled + 1n;
  }

  /** Releases every held message below `offset` (the durable resume offset of the session). Returns how many. */
  releaseBefore(offset: bigint): number {
    let n = 0;
    while (this.#entries.length > 0 && (this.#entries[0]?.offset ?? offset) < offset) {
      this.#entries.shift()?.release();
      n++;
    }
    return n;
  }

  /** The session ended (or failed for good): nothing of it is needed any more. */
  releaseAll(): number {
    const n = this.#entries.length;
    for (const e of this.#entries) e.release();
    this.#entries = [];
    return n;
  }

  /** sentAt of the held audio message holding `sample` (for speechEndAt), if still held. */
  sentAtOfSample(sample: number): number | undefined {
    for (const e of this.#entries) {
      if (e.kind === 'audio' && (e.startSample ?? 0) <= sample && sample < (e.endSample ?? 0)) return e.sentAt;
    }
    // The end of the stream: the last audio message.
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      const e = this.#entries[i];
      if (e?.kind === 'audio' && e.endSample === sample) return e.sentAt;
    }
    return undefined;
  }
}
