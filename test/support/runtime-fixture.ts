/**
 * Real-Kafka fixtures for the actor and engine runtime tests: a private topic prefix on the suite's broker, the
 * test playing the engines by publishing task events, recorders that read topics from their start, and a sender
 * wrapper that injects failures (or a hang) at the producer seam.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../core/clock.js';
import { DependencyUnavailableError } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { createRegistry, engineMetrics, orchestratorMetrics } from '../../core/metrics.js';
import { noopTracer } from '../../core/telemetry/tracer.js';
import { ActorHost, type ActorHostOptions } from '../../actors/actor-host.js';
import { taskIdFor } from '../../actors/dag.js';
import type { TransitionSettings } from '../../actors/job-transition.js';
import { EngineRunner, type EngineRunnerOptions } from '../../engines/runtime/engine-runner.js';
import { FsArtifactStore } from '../../storage/index.js';
import {
  JOB_EVENTS, allTopics, SCHEMA_VERSION, StreamConsumer, connectStreams, createKafka, decodeMessage, encodeMessage, ensureTopics, newMessageHeaders,
  prefixed, taskTopicFor, type JobEvent, type Kafka, type MessageSender, type OutgoingMessage, type SendResult, type StreamRuntime, type TopicBatch,
} from '../../streams/index.js';
import { startTestKafka, type TestKafka } from '../../harness/kafka-fixture.js';

export const SETTINGS: TransitionSettings = {
  maxRetries: 2, minTaskTimeoutMs: 60_000, engineTimeFactor: {}, heartbeatTimeoutMs: 3000, retryBaseDelayMs: 200,
  queueTimeoutMs: 600_000, engines: { engineFor: (stage) => `eng-${stage}` },
};

/** The engine SETTINGS picks for each stage, whose queues the fixture creates. */
const FIXTURE_ENGINES = ['prepare', 'vad', 'transcribe', 'merge'].map((stage) => ({ stage, engineId: SETTINGS.engines.engineFor(stage, undefined) }));

/** The (unprefixed) queue of a stage's task under SETTINGS: `tasks.<stage>.eng-<stage>`. */
export function fixtureTaskTopic(stage: string): string {
  return taskTopicFor(stage, SETTINGS.engines.engineFor(stage, undefined));
}

/** A record read back from a topic. */
export interface Recorded {
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  /** Decoded msgpack/JSON value, or null for a tombstone. */
  readonly value: Record<string, unknown> | null;
}

/** One step of a send through a FaultySender: tried (before any injected fault) or acknowledged by the broker. */
export interface SendStep {
  readonly step: 'tried' | 'acked';
  readonly topic: string;
  readonly key: string | null;
}

/**
 * Sends through the real producer unless told otherwise: `failNext(predicate, n)` rejects the next n matching sends
 * (retryably, as a broker error would), `hold(predicate)` makes matching sends wait until release(). `steps` records
 * every send tried and acknowledged, in order (a test reads what was durable before what was attempted).
 */
export class FaultySender implements MessageSender {
  #fail: { match: (topic: string) => boolean; remaining: number } | undefined;
  #hold: { match: (topic: string) => boolean; gate: Promise<void>; open: () => void } | undefined;
  failures = 0;
  readonly steps: SendStep[] = [];

  constructor(private readonly inner: MessageSender) {}

  failNext(match: (topic: string) => boolean, n = 1): void {
    this.#fail = { match, remaining: n };
  }

  hold(match: (topic: string) => boolean): void {
    let open: () => void = () => undefined;
    const gate = new Promise<void>((r) => (open = r));
    this.#hold = { match, gate, open };
  }

  release(): void {
    this.#hold?.open();
    this.#hold = undefined;
  }

  async #check(topics: readonly string[]): Promise<void> {
    const hold = this.#hold;
    if (hold && topics.some(hold.match)) await hold.gate;
    const fail = this.#fail;
    if (fail && fail.remaining > 0 && topics.some(fail.match)) {
      fail.remaining--;
      this.failures++;
      throw new DependencyUnavailableError(`injected send failure to ${topics.join(',')}`);
    }
  }

  #record(step: SendStep['step'], batches: readonly TopicBatch[]): void {
    for (const b of batches) for (const m of b.messages) this.steps.push({ step, topic: b.topic, key: m.key === null ? null : m.key.toString() });
  }

  async send(topic: string, message: OutgoingMessage): Promise<SendResult> {
    this.#record('tried', [{ topic, messages: [message] }]);
    await this.#check([topic]);
    const result = await this.inner.send(topic, message);
    this.#record('acked', [{ topic, messages: [message] }]);
    return result;
  }

  async sendBatch(batches: readonly TopicBatch[]): Promise<SendResult[]> {
    this.#record('tried', batches);
    await this.#check(batches.map((b) => b.topic));
    const result = await this.inner.sendBatch(batches);
    this.#record('acked', batches);
    return result;
  }
}

/** Reads a topic from its start for as long as it runs (no commits, own group). */
export class TopicRecorder {
  readonly records: Recorded[] = [];
  readonly #consumer: StreamConsumer<Recorded>;

  constructor(kafka: Kafka, topic: string, decode: (value: Buffer) => Record<string, unknown>) {
    this.#consumer = new StreamConsumer<Recorded>({
      kafka, groupId: `recorder-${randomBytes(6).toString('hex')}`, topics: [topic],
      decode: (value) => ({ partition: -1, offset: '', key: null, value: decode(value) }),
      onTombstone: () => ({ partition: -1, offset: '', key: null, value: null }),
      handler: async (m) => {
        this.records.push({ ...m.value, partition: m.partition, offset: m.offset, key: m.key });
      },
      deadLetter: { write: async () => undefined },
      log: silentLogger, fromBeginning: true, commitOffsets: false, maxWaitTimeMs: 50, partitionsConsumedConcurrently: 6,
    });
  }

  start(): Promise<void> {
    return this.#consumer.start();
  }

  close(): Promise<void> {
    return this.#consumer.close();
  }

  values(): Record<string, unknown>[] {
    return this.records.map((r) => r.value).filter((v): v is Record<string, unknown> => v !== null);
  }
}

export interface RuntimeFixture {
  readonly prefix: string;
  readonly kafka: Kafka;
  readonly streams: StreamRuntime;
  readonly log: Logger;
  topic(name: string): string;
  /** Publishes a job event keyed by its job id, as the gateway or an engine would. */
  publish(event: JobEvent): Promise<void>;
  jobCreated(jobId: string): Promise<void>;
  /** Plays the engine for one task attempt: started (+ optional heartbeats), then completed. */
  taskStarted(jobId: string, taskId: string, attempt: number): Promise<void>;
  taskCompleted(jobId: string, taskId: string, attempt: number): Promise<void>;
  recorder(topicName: string, decode: (value: Buffer) => Record<string, unknown>): Promise<TopicRecorder>;
  host(overrides?: Partial<ActorHostOptions>): ActorHost;
  runner(overrides: Partial<EngineRunnerOptions> & Pick<EngineRunnerOptions, 'engine'>): Promise<EngineRunner>;
  stop(): Promise<void>;
}

/** Polls until check() returns a value (not undefined) or throws its last error after timeoutMs. */
export async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startRuntimeFixture(name: string, topicOverrides: Readonly<Record<string, number>> = {}): Promise<RuntimeFixture> {
  const testKafka: TestKafka = await startTestKafka(silentLogger);
  const prefix = `rt-${name}-${randomBytes(3).toString('hex')}.`;
  const log = silentLogger;
  const kafka = createKafka({ brokers: testKafka.brokers, clientId: `fixture-${name}`, log });
  await ensureTopics(kafka, allTopics(FIXTURE_ENGINES).map((t) => ({ ...t, name: prefixed(prefix, t.name), partitions: topicOverrides[t.name] ?? t.partitions })), log);
  const streams = await connectStreams({ brokers: testKafka.brokers, clientId: `fixture-${name}`, topicPrefix: prefix, log });
  const storeDir = await mkdtemp(join(tmpdir(), `dalston-rt-${name}-`));
  const closers: (() => Promise<void>)[] = [];
  const topic = (n: string): string => prefixed(prefix, n);
  const publish = async (event: JobEvent): Promise<void> => {
    await streams.producer.send(topic(JOB_EVENTS.name), { key: event.jobId, value: encodeMessage(event), headers: newMessageHeaders({ requestId: 'req_test', tenantId: 'default' }) });
  };
  const base = { v: SCHEMA_VERSION, instanceId: 'test-engine', engineId: 'eng-test' } as const;
  const fixture: RuntimeFixture = {
    prefix, kafka, streams, log, topic, publish,
    jobCreated: (jobId) => publish({
      v: SCHEMA_VERSION, type: 'job.created', jobId, tenantId: 'default', keyId: 'key', createdAt: Date.now(),
      audio: { key: `jobs/${jobId}/audio.wav`, filename: 'a.wav', bytes: 10, contentType: 'audio/wav' }, params: {},
    }),
    taskStarted: (jobId, taskId, attempt) => publish({ ...base, type: 'task.started', jobId, taskId, attempt, at: Date.now(), queueWaitMs: 1 }),
    taskCompleted: (jobId, taskId, attempt) => publish({
      ...base, type: 'task.completed', jobId, taskId, attempt, at: Date.now(), outputKey: `jobs/${jobId}/${taskId}/output.json`,
      metrics: { processingMs: 5, queueWaitMs: 1, modelLoadMs: 0, audioDurationSeconds: 1 },
    }),
    async recorder(topicName, decode) {
      const r = new TopicRecorder(kafka, topic(topicName), decode);
      await r.start();
      closers.push(() => r.close());
      return r;
    },
    host(overrides = {}) {
      const host = new ActorHost({
        kafka, admin: streams.admin, producer: streams.producer, deadLetter: streams.deadLetter, topicPrefix: prefix, settings: SETTINGS,
        engineIds: [], clock: systemClock, log, tracer: noopTracer, metrics: orchestratorMetrics(createRegistry()),
        queueDepthIntervalMs: 3_600_000, ...overrides,
      });
      closers.push(() => host.close());
      return host;
    },
    async runner(overrides) {
      const runner = new EngineRunner({
        kafka, admin: streams.admin, producer: streams.producer, deadLetter: streams.deadLetter, store: new FsArtifactStore(storeDir),
        topicPrefix: prefix, clock: systemClock, log, tracer: noopTracer, metrics: engineMetrics(createRegistry()), heartbeatIntervalMs: 500,
        ...overrides,
      });
      closers.push(() => runner.close());
      return runner;
    },
    async stop() {
      for (const close of closers.reverse()) await close().catch(() => undefined);
      await streams.close();
      await rm(storeDir, { recursive: true, force: true });
      await testKafka.stop();
    },
  };
  return fixture;
}

/** Decodes a Dalston message without schema checks (tests look at fields of several message types). */
export function raw(value: Buffer): Record<string, unknown> {
  return decodeMessage((v) => v as Record<string, unknown>, value);
}

/** Task id of a job's stage (as the DAG builder derives it). */
export function taskOf(jobId: string, stage: string): string {
  return taskIdFor(jobId, stage);
}

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly msg: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** A logger that keeps info, warn and error lines (with their bindings) for assertions. */
export function recordingLogger(lines: LogLine[] = [], bindings: Readonly<Record<string, unknown>> = {}): Logger & { readonly lines: LogLine[] } {
  const at = (level: LogLine['level']) => (fields: Readonly<Record<string, unknown>>, msg: string): void => {
    if (level !== 'debug') lines.push({ level, msg, fields: { ...bindings, ...fields } });
  };
  return {
    lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'),
    child: (b) => recordingLogger(lines, { ...bindings, ...b }),
  };
}
