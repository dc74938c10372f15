/**
 * The engine's view of sessions.state: the latest session-actor snapshot of every session, read from the start of
 * the compacted topic for the life of the process (a per-instance group that commits nothing). A session the engine
 * inherits is restored from here, and a final counts as durable once a snapshot here shows it (input-ledger.ts).
 * Snapshots are ordered by revision, so an older one never replaces a newer one whatever order compaction keeps.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../core/logger.js';
import { StreamConsumer, checkSessionStateMessage, decodeMessage, type Admin, type DeadLetterWriter, type Kafka } from '../../streams/index.js';
import { sessionRecord, type SessionRecord } from './session-record.js';

export interface SessionSnapshotsOptions {
  readonly kafka: Kafka;
  readonly admin: Admin;
  /** Full (prefixed) name of sessions.state. */
  readonly topic: string;
  readonly groupPrefix: string;
  readonly deadLetter: DeadLetterWriter;
  readonly log: Logger;
  /** Called for every snapshot that is newer than the one known. */
  readonly onRecord: (record: SessionRecord) => void;
}

type TailRecord =
  | { readonly kind: 'snapshot'; readonly record: SessionRecord }
  | { readonly kind: 'tombstone'; readonly key: string | null }
  | { readonly kind: 'bad'; readonly error: string }
  /** An actor host's partition claim: sessions.state carries them beside the snapshots; nothing here needs them. */
  | { readonly kind: 'claim' };

export class SessionSnapshots {
  readonly #o: SessionSnapshotsOptions;
  readonly #consumer: StreamConsumer<TailRecord>;
  readonly #records = new Map<string, SessionRecord>();
  readonly groupId: string;

  constructor(options: SessionSnapshotsOptions) {
    this.#o = options;
    this.groupId = `${options.groupPrefix}-rt-engine-state-${randomUUID()}`;
    const log = options.log.child({ component: 'session-snapshots' });
    this.#consumer = new StreamConsumer<TailRecord>({
      kafka: options.kafka,
      groupId: this.groupId,
      topics: [options.topic],
      decode: (value) => {
        try {
          const msg = decodeMessage(checkSessionStateMessage, value);
          return msg.type === 'rt.session.snapshot' ? { kind: 'snapshot', record: sessionRecord(msg.state) } : { kind: 'claim' };
        } catch (err) {
          return { kind: 'bad', error: err instanceof Error ? err.message : String(err) };
        }
      },
      onTombstone: (key) => ({ kind: 'tombstone', key }),
      handler: async (m) => {
        const r = m.value;
        switch (r.kind) {
          case 'snapshot':
            this.remember(r.record);
            break;
          case 'tombstone':
            if (r.key !== null) this.#records.delete(r.key);
            break;
          case 'claim':
            break;
          case 'bad':
            log.warn({ partition: m.partition, offset: m.offset, err: r.error }, 'skipped an undecodable sessions.state record');
            break;
        }
      },
      deadLetter: options.deadLetter,
      log,
      partitionsConsumedConcurrently: 6,
      fromBeginning: true,
      commitOffsets: false,
      maxWaitTimeMs: 50,
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 1000,
    });
  }

  get size(): number {
    return this.#records.size;
  }

  async start(): Promise<void> {
    await this.#consumer.start();
  }

  /** Resolves once every snapshot written before the call has been read (an inheriting engine waits for this). */
  async caughtUp(timeoutMs = 30_000): Promise<void> {
    await this.#consumer.waitCaughtUp(this.#o.admin, timeoutMs);
  }

  get(sessionId: string): SessionRecord | undefined {
    return this.#records.get(sessionId);
  }

  remember(record: SessionRecord): void {
    const known = this.#records.get(record.sessionId);
    if (known !== undefined && known.revision >= record.revision) return;
    this.#records.set(record.sessionId, record);
    this.#o.onRecord(record);
  }

  async close(): Promise<void> {
    await this.#consumer.close();
    await this.#o.admin.deleteGroups([this.groupId]).catch(() => undefined);
  }
}
