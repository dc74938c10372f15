/**
 * Which partitions of an actor group this host owns, and under which epoch: the fencing shared by every actor host
 * (job actors over jobs.events/jobs.state, session actors over realtime.events/sessions.state).
 *
 * A takeover writes a partition claim with an epoch above anything seen on the partition to the state topic; every
 * later snapshot carries that epoch, so readers prefer the new owner's, and an old owner that reads the newer claim
 * stops acting on the partition. A host acts only while its group membership lease holds (last heartbeat + session
 * timeout, less a margin for clock skew and a send in flight).
 */
import type { Clock } from '../core/clock.js';
import { DependencyUnavailableError } from '../core/errors.js';
import { SCHEMA_VERSION, claimKey, encodeMessage, newMessageHeaders, type MessageSender, type PartitionClaim } from '../streams/index.js';

/** Keep acting on a partition only while the lease has at least this much left (clock skew, a send in flight). */
const LEASE_MARGIN_MS = 2000;

export interface PartitionOwnershipOptions {
  /** This host's instance id (the claims' owner). */
  readonly owner: string;
  /** Full (prefixed) name of the state topic the claims go to. */
  readonly stateTopic: string;
  readonly producer: MessageSender;
  /** The state tail: highest epoch seen per partition, and where our own claims are noted. */
  readonly tail: { maxEpoch(partition: number): number; noteClaim(claim: PartitionClaim): void };
  /** The events consumer: its membership lease and whether a rebalance is under way. */
  readonly lease: { readonly leaseUntil: number; readonly rebalancing: boolean };
  readonly clock: Clock;
  /** How long ensure() waits for a lapsed lease to be confirmed again. */
  readonly sessionTimeoutMs: number;
  /** True once the host is closing: it owns nothing any more. */
  readonly closing: () => boolean;
  /** For messages, e.g. `actor group`. */
  readonly groupLabel: string;
}

export class PartitionOwnership {
  readonly #o: PartitionOwnershipOptions;
  /** Owned partitions and the epoch claimed for each. */
  readonly #owned = new Map<number, number>();

  constructor(options: PartitionOwnershipOptions) {
    this.#o = options;
  }

  get partitions(): number[] {
    return [...this.#owned.keys()].sort((a, b) => a - b);
  }

  epoch(partition: number): number | undefined {
    return this.#owned.get(partition);
  }

  has(partition: number): boolean {
    return this.#owned.has(partition);
  }

  /** Writes a claim per partition, each with an epoch above anything its previous owners wrote. Owns nothing yet. */
  async writeClaims(partitions: readonly number[]): Promise<PartitionClaim[]> {
    const claims: PartitionClaim[] = partitions.map((p) => ({
      v: SCHEMA_VERSION, type: 'partition.claim', partition: p, epoch: this.#o.tail.maxEpoch(p) + 1, owner: this.#o.owner, at: this.#o.clock.now(),
    }));
    if (claims.length === 0) return claims;
    await this.#o.producer.sendBatch([{
      topic: this.#o.stateTopic,
      messages: claims.map((c) => ({ key: claimKey(c.partition), partition: c.partition, value: encodeMessage(c), headers: newMessageHeaders({}) })),
    }]);
    return claims;
  }

  /** Starts acting on a claimed partition (call it when the partition's actors are about to be restored). */
  own(claim: PartitionClaim): void {
    this.#o.tail.noteClaim(claim);
    this.#owned.set(claim.partition, claim.epoch);
  }

  release(partitions: Iterable<number>): void {
    for (const p of partitions) this.#owned.delete(p);
  }

  /** A claim read from the state topic: our epoch on its partition when the claim supersedes ours (we are fenced). */
  fencedBy(claim: PartitionClaim): number | undefined {
    const mine = this.#owned.get(claim.partition);
    if (mine === undefined || claim.owner === this.#o.owner || claim.epoch < mine) return undefined;
    return mine;
  }

  /**
   * Resolves with our epoch while this host may act as the partition's owner: it still owns it and the membership
   * lease holds. A lapsed lease (a long pause, a lost broker) is waited out until a heartbeat confirms membership
   * again or the partition is revoked; then the work is refused (retryable).
   */
  async ensure(partition: number): Promise<number> {
    const deadline = Date.now() + this.#o.sessionTimeoutMs;
    for (;;) {
      const epoch = this.#owned.get(partition);
      if (epoch === undefined || this.#o.closing()) throw new NotOwnerError(`partition ${partition} is not owned by ${this.#o.owner}`);
      // The group cannot finish a rebalance while our handlers wait: let go at once (the event is fetched again).
      if (this.#o.lease.rebalancing) throw new NotOwnerError(`the ${this.#o.groupLabel} is rebalancing; partition ${partition} waits for its owner`);
      if (this.#o.lease.leaseUntil - LEASE_MARGIN_MS > Date.now()) return epoch;
      if (Date.now() > deadline) throw new DependencyUnavailableError(`group membership of ${this.#o.owner} is unconfirmed; not acting on partition ${partition}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** This host does not (or no longer) own the partition: the work belongs to its owner. */
export class NotOwnerError extends DependencyUnavailableError {
  override readonly code: string = 'DALSTON_ERR_NOT_OWNER';
}
