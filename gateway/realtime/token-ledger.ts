/**
 * The used-token ledger shared by every gateway through Kafka: a single-partition topic `realtime.tokens` where a
 * gateway redeeming a token appends a claim (token id, its own claim id) and then reads the partition up to its
 * claim. The partition's order decides: the first claim of a token id wins, on every gateway alike, so a token
 * presented to two gateways at the same moment is still accepted once. Each gateway tails the topic from the start
 * (retention outlives the longest token TTL), so it also refuses a reused token at once without a round trip.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../core/logger.js';
import { ReadPosition, StreamConsumer, newMessageHeaders, type DeadLetterWriter, type Kafka, type StreamProducer } from '../../streams/index.js';

interface Claim {
  readonly jti: string;
  readonly claimId: string;
  readonly expiresAt: number;
}

function decodeClaim(value: Buffer): Claim {
  const raw = JSON.parse(value.toString('utf8')) as Partial<Claim>;
  if (typeof raw.jti !== 'string' || typeof raw.claimId !== 'string' || typeof raw.expiresAt !== 'number') throw new Error('not a token claim');
  return { jti: raw.jti, claimId: raw.claimId, expiresAt: raw.expiresAt };
}

export interface TokenLedger {
  /** True when this redemption is the first of the token id (cluster-wide); false when it was used before. */
  claim(jti: string, expiresAt: number): Promise<boolean>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface KafkaTokenLedgerOptions {
  readonly kafka: Kafka;
  readonly producer: StreamProducer;
  readonly deadLetter: DeadLetterWriter;
  /** Prefixed topic name. */
  readonly topic: string;
  /** Consumer group of this gateway process (unique: every gateway reads every claim). */
  readonly groupId: string;
  readonly log: Logger;
  readonly now?: () => number;
  /** @default 5000 */
  readonly claimTimeoutMs?: number;
}

export class KafkaTokenLedger implements TokenLedger {
  readonly #o: KafkaTokenLedgerOptions;
  /** Winning claim per token id, until the token expires. */
  readonly #winners = new Map<string, Claim>();
  /** How far the tail has read the single partition. */
  readonly #position = new ReadPosition();
  readonly #consumer: StreamConsumer<Claim>;

  constructor(o: KafkaTokenLedgerOptions) {
    this.#o = o;
    this.#consumer = new StreamConsumer<Claim>({
      kafka: o.kafka, groupId: o.groupId, topics: [o.topic], decode: decodeClaim, deadLetter: o.deadLetter, log: o.log,
      commitOffsets: false, fromBeginning: true, maxWaitTimeMs: 100, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000,
      handler: async (m) => {
        if (!this.#winners.has(m.value.jti)) this.#winners.set(m.value.jti, m.value);
        this.#position.advance(BigInt(m.offset) + 1n);
      },
    });
  }

  start(): Promise<void> {
    return this.#consumer.start();
  }

  close(): Promise<void> {
    return this.#consumer.close();
  }

  async claim(jti: string, expiresAt: number): Promise<boolean> {
    this.#prune();
    if (this.#winners.has(jti)) return false;
    const claimId = randomBytes(9).toString('base64url');
    const sent = await this.#o.producer.send(this.#o.topic, {
      key: jti, value: Buffer.from(JSON.stringify({ jti, claimId, expiresAt })), headers: newMessageHeaders(),
    });
    await this.#position.reach(BigInt(sent.baseOffset) + 1n, this.#o.claimTimeoutMs ?? 5000, 'the used-token ledger did not confirm the claim in time');
    return this.#winners.get(jti)?.claimId === claimId;
  }

  #prune(): void {
    const now = (this.#o.now ?? Date.now)();
    // An expired token is refused on its expiry alone, so its claim can be forgotten.
    if (this.#winners.size < 1024) return;
    for (const [jti, c] of this.#winners) if (c.expiresAt < now) this.#winners.delete(jti);
  }
}
