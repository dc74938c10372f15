/**
 * What this gateway knows of sessions cluster-wide, from a tail of the compacted `sessions.state` topic (the
 * session actors' snapshots): the latest snapshot of every session not yet finished, for resuming a session whose
 * gateway went away (its finalised text and checkpoint) and for the cluster-wide count of active sessions.
 * Finished sessions are dropped, so memory follows the live sessions, not the history.
 */
import type { Logger } from '../../core/logger.js';
import {
  StreamConsumer, checkSessionStateMessage, decodeMessage, type DeadLetterWriter, type Kafka, type RealtimeSessionState,
} from '../../streams/index.js';

export interface SessionDirectory {
  /** The latest snapshot of a live (active or interrupted) session; waits up to `waitMs` for it to arrive. */
  lookup(sessionId: string, waitMs: number): Promise<RealtimeSessionState | undefined>;
  /** Sessions with status active cluster-wide (undefined until the tail caught up once). */
  activeSessions(): number | undefined;
  start(): Promise<void>;
  close(): Promise<void>;
}

type Record_ = ReturnType<typeof checkSessionStateMessage> | { readonly type: 'tombstone'; readonly key: string | null };

export class KafkaSessionDirectory implements SessionDirectory {
  readonly #live = new Map<string, RealtimeSessionState>();
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #consumer: StreamConsumer<Record_>;
  #active = 0;
  #started = false;

  constructor(o: { kafka: Kafka; topic: string; groupId: string; deadLetter: DeadLetterWriter; log: Logger }) {
    this.#consumer = new StreamConsumer<Record_>({
      kafka: o.kafka, groupId: o.groupId, topics: [o.topic], deadLetter: o.deadLetter, log: o.log,
      decode: (value) => decodeMessage(checkSessionStateMessage, value),
      onTombstone: (key) => ({ type: 'tombstone', key }),
      commitOffsets: false, fromBeginning: true, maxWaitTimeMs: 100, partitionsConsumedConcurrently: 6,
      sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000,
      handler: async (m) => {
        if (m.value.type === 'tombstone') {
          if (m.key !== null) this.#set(m.key, undefined);
          return;
        }
        // sessions.state also carries the actor hosts' partition claims.
        if (m.value.type !== 'rt.session.snapshot') return;
        const s = m.value.state;
        this.#set(s.sessionId, s.status === 'active' || s.status === 'interrupted' ? s : undefined);
      },
    });
  }

  #set(id: string, state: RealtimeSessionState | undefined): void {
    const before = this.#live.get(id);
    if (before && before.revision > (state?.revision ?? -1) && state !== undefined) return; // an older snapshot
    if (before?.status === 'active') this.#active--;
    if (state) {
      this.#live.set(id, state);
      if (state.status === 'active') this.#active++;
      const w = this.#waiters.get(id);
      if (w) for (const f of w) f();
    } else {
      this.#live.delete(id);
    }
  }

  async start(): Promise<void> {
    await this.#consumer.start();
    this.#started = true;
  }

  close(): Promise<void> {
    return this.#consumer.close();
  }

  activeSessions(): number | undefined {
    return this.#started ? this.#active : undefined;
  }

  async lookup(sessionId: string, waitMs: number): Promise<RealtimeSessionState | undefined> {
    const known = this.#live.get(sessionId);
    if (known || waitMs <= 0) return known;
    await new Promise<void>((resolve) => {
      let set = this.#waiters.get(sessionId);
      if (!set) this.#waiters.set(sessionId, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        set?.delete(done);
        if (set?.size === 0) this.#waiters.delete(sessionId);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      set.add(done);
    });
    return this.#live.get(sessionId);
  }
}
