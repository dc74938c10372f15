/**
 * Kafka ingress: jobs submitted on jobs.requests by producers that never speak HTTP. Every gateway joins one group,
 * so each request is taken by one gateway; a request whose signature holds becomes a job through the same path as an
 * upload (queueJob), and its outcome appears on jobs.results carrying the producer's requestId. A request that is
 * unsigned, badly signed, malformed or too large is refused once, into the dead-letter topic with the reason, and
 * harms nothing else.
 *
 * Delivery is at least once: a gateway that dies between queueing a job and committing the request leaves it to be
 * queued again by the next one (two jobs, both reporting the same requestId on jobs.results).
 */
import { InvalidInputError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { LOG } from '../core/observability-names.js';
import {
  JOB_REQUESTS, StreamConsumer, checkJobRequest, prefixed, signatureProblem, type ConsumedMessage, type DeadLetterWriter, type Kafka, type JobRequest,
  REQUEST_HEADERS,
} from '../streams/index.js';
import { bootstrapPrincipal, keyIdOf, type Principal } from './auth.js';
import { unsealRequestSecret } from './keys/api-key-secret.js';
import type { KeyStore } from './keys/key-store.js';
import { accessOf, requireAccess } from './route-access.js';
import { HttpError } from './errors.js';
import { jobAudioSink, parseSubmitFields, queueJob, urlSource, type TranscriptionsDeps } from './transcriptions.js';
import type { JobAudioSink } from './audio-intake.js';
import { NotFoundError, assertSafeKey } from '../storage/index.js';
import { posix } from 'node:path';

export interface KafkaJobIngressOptions {
  readonly kafka: Kafka;
  readonly topicPrefix: string;
  readonly deadLetter: DeadLetterWriter;
  readonly log: Logger;
  readonly deps: TranscriptionsDeps;
  /** DALSTON_API_KEY: signs requests as the bootstrap key, and unseals issued keys' signing secrets. */
  readonly apiKey: string;
  /** Issued keys; without it only the bootstrap key signs. */
  readonly keys?: KeyStore;
  readonly now?: () => number;
  /** DALSTON_KAFKA_INLINE_AUDIO_MAX_BYTES: largest decoded inline audio. */
  readonly inlineMaxBytes: number;
}

interface RawRequest {
  readonly value: Buffer;
  readonly headers: Readonly<Record<string, string>>;
}

/** Refused for good: the consumer dead-letters it with this message as the reason. */
const refuse = (message: string): InvalidInputError => new InvalidInputError(message);

/** A request's JSON → its checked shape; a refusal names what is wrong. Pure. */
export function parseJobRequest(value: Buffer): JobRequest {
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch {
    throw refuse('the request is not JSON');
  }
  try {
    return checkJobRequest(json, 'request');
  } catch (err) {
    throw refuse(`the request does not match job.request v1: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export class KafkaJobIngress {
  readonly #o: KafkaJobIngressOptions;
  readonly #consumer: StreamConsumer<RawRequest>;
  readonly #keyId: string;
  readonly #log: Logger;

  constructor(options: KafkaJobIngressOptions) {
    this.#o = options;
    this.#keyId = keyIdOf(options.apiKey);
    this.#log = options.log.child({ component: 'kafka-ingress' });
    this.#consumer = new StreamConsumer<RawRequest>({
      kafka: options.kafka, groupId: `${options.topicPrefix.replace(/\.$/, '')}-gateway-ingress`, topics: [prefixed(options.topicPrefix, JOB_REQUESTS.name)],
      externalProducers: true,
      // Checked in the handler, so a refusal is dead-lettered with its reason rather than as "undecodable".
      decode: (value, _headers, raw) => ({ value, headers: raw }),
      handler: (m) => this.#handle(m),
      deadLetter: options.deadLetter, log: this.#log, maxWaitTimeMs: 100, partitionsConsumedConcurrently: 3,
      retry: { maxAttempts: 5, maxBackoffMs: 5000 },
    });
  }

  start(): Promise<void> {
    return this.#consumer.start();
  }

  close(): Promise<void> {
    return this.#consumer.close();
  }

  async #handle(m: ConsumedMessage<RawRequest>): Promise<void> {
    const { value, headers } = m.value;
    const now = (this.#o.now ?? Date.now)();
    if (!headers[REQUEST_HEADERS.signature] || !headers[REQUEST_HEADERS.keyId]) {
      throw refuse(`unauthorized: unsigned request: headers ${REQUEST_HEADERS.keyId}, ${REQUEST_HEADERS.timestamp} and ${REQUEST_HEADERS.signature} are required`);
    }
    const { principal, secret } = this.#signer(headers[REQUEST_HEADERS.keyId] ?? '', now);
    const problem = signatureProblem(secret, headers, value, now);
    if (problem) throw refuse(`unauthorized: ${problem}`);
    try {
      requireAccess(principal, accessOf('KAFKA', JOB_REQUESTS.name));
    } catch (err) {
      throw refuse(`insufficient_scope: ${err instanceof Error ? err.message : String(err)}`);
    }
    const request = parseJobRequest(value);
    const fields: [string, string][] = [];
    const p = request.params ?? {};
    if (p.language !== undefined) fields.push(['language', p.language]);
    if (p.model !== undefined) fields.push(['model', p.model]);
    if (p.timestampsGranularity !== undefined) fields.push(['timestamps_granularity', p.timestampsGranularity]);
    if (p.vad !== undefined) fields.push(['vad', String(p.vad)]);
    let params;
    try {
      params = parseSubmitFields(fields, this.#o.deps.openAiAliases);
    } catch (err) {
      throw refuse(err instanceof HttpError ? err.message : String(err));
    }
    const { base64, url, key, filename } = request.audio;
    if ([base64, url, key].filter((x) => x !== undefined).length !== 1) throw refuse('audio must have exactly one of base64, url, key');
    const log = this.#log.child({ [LOG.requestId]: request.requestId });
    const origin = { principal, requestId: request.requestId, traceId: undefined, log, annotate: () => undefined };
    const sink = jobAudioSink(this.#o.deps, origin);
    try {
      if (base64 !== undefined) {
        const audio = Buffer.from(base64, 'base64');
        if (audio.length === 0) throw refuse('audio.base64 is empty or not base64');
        if (audio.length > this.#o.inlineMaxBytes) throw refuse(`inline audio is ${audio.length} bytes; at most ${this.#o.inlineMaxBytes}`);
        await sink.writeBuffer(audio, { filename: filename ?? '', mimeType: 'application/octet-stream' });
      } else if (url !== undefined) {
        await urlSource(this.#o.deps, 'audio.url')(url, sink);
      } else if (key !== undefined) {
        await this.#fromStore(key, filename, sink);
      }
    } catch (err) {
      // A URL or key the request names wrongly is the producer's to fix: dead-lettered at once with the reason.
      if (err instanceof HttpError && err.status < 500) throw refuse(`${err.apiCode}: ${err.message}`);
      throw err;
    }
    const created = await queueJob(this.#o.deps, origin, sink, { ...params.params, api: 'kafka' });
    log.info({ [LOG.jobId]: created.jobId, bytes: sink.stored.bytes, source: base64 !== undefined ? 'inline' : url !== undefined ? 'url' : 'key' }, 'job queued from a Kafka request');
  }

  /**
   * Who signed a request and the secret its signature must match: the bootstrap key, or an issued key that is
   * neither revoked nor expired (refused as `unauthorized`, like a 401 over HTTP).
   */
  #signer(keyId: string, now: number): { principal: Principal; secret: string } {
    if (keyId === this.#keyId) return { principal: bootstrapPrincipal(this.#o.apiKey), secret: this.#o.apiKey };
    const record = this.#o.keys?.get(keyId);
    if (!record) throw refuse(`unauthorized: unknown ${REQUEST_HEADERS.keyId} "${keyId.slice(0, 80)}"`);
    if (record.revokedAt !== undefined) throw refuse(`unauthorized: API key ${keyId} revoked`);
    if (record.expiresAt !== undefined && now >= record.expiresAt) throw refuse(`unauthorized: API key ${keyId} expired`);
    const secret = unsealRequestSecret(record.requestSecretSealed, this.#o.apiKey);
    if (secret === undefined) throw refuse(`unauthorized: API key ${keyId} has no Kafka signing secret this gateway can read (was DALSTON_API_KEY changed since it was created?)`);
    this.#o.keys?.touch(keyId, now);
    return { principal: { tenantId: record.tenantId, keyId, scopes: record.scopes }, secret };
  }

  /** Copies an object the producer put under `incoming/` into the job's audio (the producer keeps its object). */
  async #fromStore(key: string, filename: string | undefined, sink: JobAudioSink): Promise<void> {
    if (!key.startsWith(INCOMING_PREFIX)) throw refuse(`audio.key must be under ${INCOMING_PREFIX} (got "${key.slice(0, 200)}")`);
    const store = this.#o.deps.store;
    let body;
    try {
      assertSafeKey(key);
      ({ body } = await store.getStream(key));
    } catch (err) {
      if (err instanceof NotFoundError) throw refuse(`audio.key "${key}" is not in the artifact store`);
      if (err instanceof Error && /unsafe artifact key/.test(err.message)) throw refuse(err.message);
      throw err;
    }
    await sink.write(body, { filename: filename ?? posix.basename(key), mimeType: 'application/octet-stream' });
  }
}

/** Where producers put audio they reference by key (`audio.key`); job data lives elsewhere and cannot be named. */
export const INCOMING_PREFIX = 'incoming/';
