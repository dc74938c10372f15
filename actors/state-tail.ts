/**
 * Reads the compacted jobs.state topic into memory, from its start, for the whole life of the host: the latest
 * snapshot of every live job by partition, a small marker per finished or removed job, and each partition's latest
 * ownership claim. Because it runs all the time, a host that takes over a partition has (almost) everything already:
 * it waits only for the records written since, so a takeover's restore time does not grow with history.
 *
 * It never commits offsets (every start re-reads the topic, so its per-instance group leaves nothing on the broker)
 * and never dead-letters: an undecodable record is skipped with a warning, but its offset still counts, so a partition
 * whose last record is bad is still "caught up". Snapshots are ordered by (owner epoch, revision): a snapshot of an
 * owner that lost the partition never replaces its successor's, whatever order compaction keeps them in.
 */
import { randomUUID } from 'node:crypto';
import { ConfigError, TimeoutError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import {
  StreamConsumer, checkStateMessage, decodeMessage, fetchTopicOffsets, type Admin, type DeadLetterWriter, type JobState, type Kafka, type PartitionClaim,
} from '../streams/index.js';

/**
 * What the tail needs to know of one kind of actor state (jobs in jobs.state, real-time sessions in sessions.state):
 * how a record decodes, and a snapshot's identity, ordering and end. The default is the job actor's.
 */
export interface TailCodec<S> {
  /** Topic name for logs, e.g. `jobs.state`. */
  readonly label: string;
  decode(value: Buffer): { readonly kind: 'snapshot'; readonly state: S } | { readonly kind: 'claim'; readonly claim: PartitionClaim };
  id(state: S): string;
  revision(state: S): number;
  epoch(state: S): number;
  /** The terminal status of a finished actor's snapshot (its events are ignored from then on), else undefined. */
  finished(state: S): Exclude<FinishedMarker['status'], 'removed'> | undefined;
  /** When a finished actor finished, epoch ms. */
  finishedAt(state: S): number | undefined;
  /**
   * When the snapshot was written, if it carries an outbox (effects its writer may have died before sending);
   * undefined for an empty outbox. A finished snapshot with one is kept whole until the host's resend window passes.
   */
  outboxWrittenAt?(state: S): number | undefined;
}

export const JOB_TAIL_CODEC: TailCodec<JobState> = {
  label: 'jobs.state',
  decode: (value) => {
    const msg = decodeMessage(checkStateMessage, value);
    return msg.type === 'job.snapshot' ? { kind: 'snapshot', state: msg.state } : { kind: 'claim', claim: msg };
  },
  id: (s) => s.jobId,
  revision: (s) => s.revision,
  epoch: (s) => s.epoch ?? 0,
  finished: (s) => (TERMINAL.has(s.status) ? s.status as 'completed' | 'failed' | 'cancelled' : undefined),
  finishedAt: (s) => s.completedAt,
  outboxWrittenAt: (s) => ((s.outbox?.length ?? 0) > 0 ? s.persistedAt ?? 0 : undefined),
};

export interface StateTailOptions<S = JobState> {
  readonly kafka: Kafka;
  readonly admin: Admin;
  /** Full (prefixed) name of the jobs.state topic. */
  readonly topic: string;
  readonly groupPrefix: string;
  readonly deadLetter: DeadLetterWriter;
  readonly log: Logger;
  /** Called for every snapshot read (after it is remembered): an owner checks for stale writers here. */
  readonly onSnapshot?: (state: S, partition: number) => void;
  /** Called for every claim read: an owner that sees a newer claim on its partition fences itself. */
  readonly onClaim?: (claim: PartitionClaim) => void;
  /** @default JOB_TAIL_CODEC (S must then be JobState) */
  readonly codec?: TailCodec<S>;
}

/** A job that reached a terminal status (or was removed): all later events for it are ignored. */
export interface FinishedMarker<S = unknown> {
  readonly status: 'completed' | 'failed' | 'cancelled' | 'interrupted' | 'removed';
  readonly partition: number;
  readonly epoch: number;
  readonly revision: number;
  /** When the job finished (or its snapshot was removed), epoch ms. */
  readonly at: number;
  /**
   * The finishing snapshot while its outbox may still be unsent (the job.completed audit, the last task fact): a host
   * taking the partition over sends it again. Dropped by `releaseOutboxes` once the resend window has passed.
   */
  readonly withOutbox?: S;
}

type TailRecord<S> =
  | { readonly kind: 'snapshot'; readonly state: S }
  | { readonly kind: 'claim'; readonly claim: PartitionClaim }
  | { readonly kind: 'tombstone'; readonly key: string | null }
  | { readonly kind: 'bad'; readonly error: string };

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

function newer(a: { epoch: number; revision: number }, b: { epoch: number; revision: number }): boolean {
  return a.epoch > b.epoch || (a.epoch === b.epoch && a.revision > b.revision);
}

export function epochOf(state: JobState): number {
  return state.epoch ?? 0;
}

/**
 * What the tail remembers, without Kafka: the latest snapshot of every live actor by partition, a marker per finished
 * or removed one, each partition's latest claim and highest epoch. Records are applied in whatever order they arrive;
 * (epoch, revision) decides which snapshot of an actor wins.
 */
export class TailIndex<S = JobState> {
  readonly #codec: TailCodec<S>;
  readonly #live = new Map<string, { state: S; partition: number }>();
  readonly #finished = new Map<string, FinishedMarker<S>>();
  readonly #claims = new Map<number, PartitionClaim>();
  /** Highest epoch seen per partition, in claims and snapshots alike. */
  readonly #maxEpoch = new Map<number, number>();

  constructor(codec: TailCodec<S>) {
    this.#codec = codec;
  }

  /** Records a snapshot unless an equal or newer (epoch, revision) of the job is already known. */
  remember(state: S, partition: number): void {
    const c = this.#codec;
    const id = c.id(state);
    const incoming = { epoch: c.epoch(state), revision: c.revision(state) };
    this.#bumpEpoch(partition, incoming.epoch);
    const live = this.#live.get(id);
    const finished = this.#finished.get(id);
    if (finished?.status === 'removed') return;
    if (live && !newer(incoming, { epoch: c.epoch(live.state), revision: c.revision(live.state) })) return;
    if (finished && !newer(incoming, finished)) return;
    const status = c.finished(state);
    if (status) {
      this.#live.delete(id);
      const withOutbox = c.outboxWrittenAt?.(state) !== undefined ? { withOutbox: state } : {};
      this.#finished.set(id, { status, partition, ...incoming, at: c.finishedAt(state) ?? Date.now(), ...withOutbox });
    } else {
      this.#finished.delete(id);
      this.#live.set(id, { state, partition });
    }
  }

  noteClaim(claim: PartitionClaim): void {
    const known = this.#claims.get(claim.partition);
    if (!known || claim.epoch >= known.epoch) this.#claims.set(claim.partition, claim);
    this.#bumpEpoch(claim.partition, claim.epoch);
  }

  /** The job's snapshot was removed (a tombstone): later events and replays for it are ignored. */
  markRemoved(jobId: string, partition: number, at: number): void {
    this.#live.delete(jobId);
    const known = this.#finished.get(jobId);
    this.#finished.set(jobId, { status: 'removed', partition, epoch: known?.epoch ?? 0, revision: known?.revision ?? 0, at });
  }

  /** Forgets a removed job's marker (its tombstone is older than the retention window). */
  forget(jobId: string): void {
    this.#finished.delete(jobId);
  }

  #bumpEpoch(partition: number, epoch: number): void {
    if (epoch > (this.#maxEpoch.get(partition) ?? 0)) this.#maxEpoch.set(partition, epoch);
  }

  get(jobId: string): S | undefined {
    return this.#live.get(jobId)?.state;
  }

  finished(jobId: string): FinishedMarker<S> | undefined {
    return this.#finished.get(jobId);
  }

  /** Every finished and removed job known, with its marker. */
  finishedEntries(): IterableIterator<[string, FinishedMarker<S>]> {
    return this.#finished.entries();
  }

  claim(partition: number): PartitionClaim | undefined {
    return this.#claims.get(partition);
  }

  maxEpoch(partition: number): number {
    return this.#maxEpoch.get(partition) ?? 0;
  }

  /** Finished snapshots in `partition` whose outbox was written at or after `since` (a takeover re-sends them). */
  finishedWithOutbox(partition: number, since: number): S[] {
    const out: S[] = [];
    for (const marker of this.#finished.values()) {
      const state = marker.withOutbox;
      if (marker.partition === partition && state !== undefined && (this.#codec.outboxWrittenAt?.(state) ?? 0) >= since) out.push(state);
    }
    return out;
  }

  /** Forgets finished snapshots whose outbox was written before `before` (only their markers stay). */
  releaseOutboxes(before: number): void {
    for (const [id, marker] of this.#finished) {
      const state = marker.withOutbox;
      if (state === undefined || (this.#codec.outboxWrittenAt?.(state) ?? 0) >= before) continue;
      const { withOutbox: _dropped, ...rest } = marker;
      this.#finished.set(id, rest);
    }
  }

  /** Unfinished jobs whose snapshots live in `partition`. */
  liveInPartition(partition: number): S[] {
    return [...this.#live.values()].filter((e) => e.partition === partition).map((e) => e.state);
  }

  get liveCount(): number {
    return this.#live.size;
  }
}

/** A TailIndex fed, for the host's whole life, by a consumer of the state topic from its start. */
export class StateTail<S = JobState> extends TailIndex<S> {
  readonly #o: StateTailOptions<S>;
  readonly #consumer: StreamConsumer<TailRecord<S>>;
  /** Next offset to read, per partition. */
  readonly #position = new Map<number, bigint>();
  readonly groupId: string;

  constructor(options: StateTailOptions<S>) {
    const codec = options.codec ?? (JOB_TAIL_CODEC as unknown as TailCodec<S>);
    super(codec);
    this.#o = options;
    this.groupId = `${options.groupPrefix}-state-tail-${randomUUID()}`;
    const log = options.log.child({ component: 'state-tail' });
    this.#consumer = new StreamConsumer<TailRecord<S>>({
      kafka: options.kafka,
      groupId: this.groupId,
      topics: [options.topic],
      decode: (value) => {
        try {
          return codec.decode(value);
        } catch (err) {
          return { kind: 'bad', error: err instanceof Error ? err.message : String(err) };
        }
      },
      onTombstone: (key) => ({ kind: 'tombstone', key }),
      handler: async (m) => {
        const r = m.value;
        switch (r.kind) {
          case 'snapshot':
            this.remember(r.state, m.partition);
            this.#o.onSnapshot?.(r.state, m.partition);
            break;
          case 'claim':
            this.noteClaim(r.claim);
            this.#o.onClaim?.(r.claim);
            break;
          case 'tombstone':
            if (r.key !== null) this.markRemoved(r.key, m.partition, m.timestamp);
            break;
          case 'bad':
            log.warn({ partition: m.partition, offset: m.offset, err: r.error }, `skipped an undecodable ${codec.label} record`);
            break;
        }
        this.#position.set(m.partition, BigInt(m.offset) + 1n);
      },
      deadLetter: options.deadLetter,
      log,
      partitionsConsumedConcurrently: 6,
      fromBeginning: true,
      commitOffsets: false,
      maxWaitTimeMs: 100,
    });
  }

  async start(): Promise<void> {
    await this.#consumer.start();
  }

  async close(): Promise<void> {
    await this.#consumer.close();
    // Without committed offsets the group disappears once empty; deleting it just makes that immediate.
    await this.#o.admin.deleteGroups([this.groupId]).catch(() => undefined);
  }

  /** Resolves once every record written to `partitions` before this call has been read. */
  async waitCaughtUp(partitions: readonly number[], timeoutMs = 30_000): Promise<void> {
    const offsets = await fetchTopicOffsets(this.#o.admin, this.#o.topic);
    const targets = offsets.filter((o) => partitions.includes(o.partition)).map((o) => ({ p: o.partition, high: BigInt(o.high), low: BigInt(o.low) }));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const behind = targets.filter((t) => t.high > t.low && (this.#position.get(t.p) ?? 0n) < t.high);
      if (behind.length === 0) return;
      if (Date.now() > deadline) {
        throw new TimeoutError(`state tail did not catch up on partitions ${behind.map((b) => b.p).join(',')} within ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** The partition a key lands on must match between jobs.events and jobs.state: both topics need the same count. */
export function assertSamePartitionCount(eventsTopic: string, events: number, stateTopic: string, state: number): void {
  if (events !== state) {
    throw new ConfigError(
      `${eventsTopic} has ${events} partitions but ${stateTopic} has ${state}: they must be equal, or hosts restore the wrong jobs; `
      + 'recreate the topics with the same count (adding partitions to one remaps its keys)',
    );
  }
}
