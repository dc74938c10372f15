/**
 * The engine runner: consumes its stage topic in group `dalston-engine-<engine_id>` and, per task, downloads the
 * inputs, runs the engine, uploads the outputs and reports started / heartbeat / completed / failed on
 * jobs.events. The dispatch offset is committed only after the result is published, so a worker that dies
 * mid-task leaves the task to be redelivered. Cancellation arrives on tasks.control and aborts the engine's
 * signal, which engines check between chunks.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../core/clock.js';
import { CancelledError, TimeoutError, toFailureRecord } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { EngineMetrics } from '../../core/metrics.js';
import { ATTR, LOG, SPAN } from '../../core/observability-names.js';
import type { Tracer } from '../../core/telemetry/tracer.js';
import { artifactKeys, type ArtifactStore, type TaskOutputDocument } from '../../storage/index.js';
import {
  JOB_EVENTS, SCHEMA_VERSION, TASK_CONTROL, StreamConsumer, checkControlMessage, checkTaskMessage, decodeMessage, encodeMessage,
  engineGroupId, newMessageHeaders, prefixed, topicForStage,
  type ConsumedMessage, type ControlMessage, type DeadLetterWriter, type JobEvent, type Kafka, type StreamProducer, type TaskDispatch,
} from '../../streams/index.js';
import type { Engine, EngineResult } from '../sdk/engine.js';

export interface EngineRunnerOptions {
  readonly engine: Engine;
  readonly kafka: Kafka;
  readonly producer: StreamProducer;
  readonly deadLetter: DeadLetterWriter;
  readonly store: ArtifactStore;
  readonly topicPrefix: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly tracer: Tracer;
  readonly metrics: EngineMetrics;
  /** Tasks run at once. @default 1 */
  readonly concurrency?: number;
  /** @default 5000 */
  readonly heartbeatIntervalMs?: number;
}

interface Running {
  readonly controller: AbortController;
  readonly attempt: number;
}

export class EngineRunner {
  readonly #o: EngineRunnerOptions;
  readonly #log: Logger;
  readonly #tasks: StreamConsumer<TaskDispatch>;
  readonly #control: StreamConsumer<ControlMessage>;
  readonly #running = new Map<string, Running>();
  /** Cancels that arrived before their task was picked up (bounded, oldest forgotten first). */
  readonly #cancelled = new Set<string>();
  readonly instanceId = `${process.env['HOSTNAME'] ?? 'local'}-${process.pid}-${randomUUID().slice(0, 6)}`;
  readonly #controlGroup: string;
  /** Tasks this instance finished, for tests that show two instances shared the work. */
  processed = 0;

  constructor(options: EngineRunnerOptions) {
    this.#o = options;
    const { engine } = options;
    this.#log = options.log.child({ [LOG.engineId]: engine.engineId, instance: this.instanceId });
    // Both outcomes exported from start-up at 0, so the error-rate panels and alert see the first task as a change.
    for (const status of ['success', 'failure'] as const) options.metrics.tasksProcessed.inc({ engine_id: engine.engineId, stage: engine.stage, status }, 0);
    this.#tasks = new StreamConsumer<TaskDispatch>({
      kafka: options.kafka,
      groupId: engineGroupId(options.topicPrefix, engine.engineId),
      topics: [prefixed(options.topicPrefix, topicForStage(engine.stage))],
      decode: (value) => decodeMessage(checkTaskMessage, value),
      handler: (m) => this.#onTask(m),
      deadLetter: options.deadLetter,
      log: this.#log,
      partitionsConsumedConcurrently: options.concurrency ?? 1,
      sessionTimeoutMs: 10_000,
      maxWaitTimeMs: 100,
      // A task that failed is reported as task.failed, never retried here: retries are the actor's decision.
      retry: { maxAttempts: 3 },
      drainTimeoutMs: 30_000,
    });
    this.#controlGroup = `${options.topicPrefix.replace(/\.$/, '')}-engine-control-${this.instanceId}`;
    this.#control = new StreamConsumer<ControlMessage>({
      kafka: options.kafka,
      groupId: this.#controlGroup,
      topics: [prefixed(options.topicPrefix, TASK_CONTROL.name)],
      decode: (value) => decodeMessage(checkControlMessage, value),
      handler: async (m) => this.#onControl(m.value),
      deadLetter: options.deadLetter,
      log: this.#log,
      fromBeginning: false,
      maxWaitTimeMs: 100,
    });
  }

  get inFlight(): number {
    return this.#running.size;
  }

  async start(): Promise<void> {
    await this.#o.engine.start?.();
    await this.#control.start();
    await this.#tasks.start();
    this.#log.info({ stage: this.#o.engine.stage }, 'engine runner started');
  }

  /** Stops taking tasks and lets running ones finish (the consumer's drain deadline bounds it). */
  async close(): Promise<void> {
    await this.#tasks.close();
    await this.#control.close();
    await this.#o.engine.close?.();
  }

  #onControl(msg: ControlMessage): void {
    const key = `${msg.taskId}#${msg.attempt}`;
    const running = this.#running.get(msg.taskId);
    if (running && running.attempt === msg.attempt) {
      running.controller.abort(new CancelledError('task cancelled'));
      this.#log.info({ [LOG.jobId]: msg.jobId, [LOG.taskId]: msg.taskId }, 'cancel signal delivered to running task');
      return;
    }
    this.#cancelled.add(key);
    if (this.#cancelled.size > 10_000) {
      const oldest = this.#cancelled.values().next().value;
      if (oldest !== undefined) this.#cancelled.delete(oldest);
    }
  }

  async #publish(event: JobEvent, requestId: string | undefined, tenantId: string | undefined): Promise<void> {
    await this.#o.producer.send(prefixed(this.#o.topicPrefix, JOB_EVENTS.name), {
      key: event.jobId,
      value: encodeMessage(event),
      headers: newMessageHeaders({ ...(requestId ? { requestId } : {}), ...(tenantId ? { tenantId } : {}), clock: this.#o.clock }),
    });
  }

  async #onTask(m: ConsumedMessage<TaskDispatch>): Promise<void> {
    const task = m.value;
    const { engine, tracer, metrics, clock } = this.#o;
    if (task.engineId !== engine.engineId) return; // another engine of this stage serves it
    const log = this.#log.child({
      [LOG.jobId]: task.jobId, [LOG.taskId]: task.taskId,
      ...(m.headers.requestId ? { [LOG.requestId]: m.headers.requestId } : {}),
      ...(m.headers.tenantId ? { [LOG.tenantId]: m.headers.tenantId } : {}),
    });
    if (this.#cancelled.delete(`${task.taskId}#${task.attempt}`)) {
      log.info({ attempt: task.attempt }, 'task was cancelled before pick-up; skipped');
      return;
    }
    const pickedUp = clock.now();
    const queueWaitMs = Math.max(0, pickedUp - task.enqueuedAt);
    const labels = { engine_id: engine.engineId, stage: task.stage.replace(/_ch\d+$/, '') };
    metrics.queueWait.observe(labels, queueWaitMs / 1000);
    tracer.recordSpan(SPAN.queueWait, { [ATTR.jobId]: task.jobId, [ATTR.taskId]: task.taskId, [ATTR.stage]: task.stage, [ATTR.engineId]: engine.engineId }, task.enqueuedAt, pickedUp);

    const controller = new AbortController();
    this.#running.set(task.taskId, { controller, attempt: task.attempt });
    // The deadline bounds processing, not queueing: time spent waiting in the topic under load must not eat it.
    const timeoutMs = Math.max(1, task.deadlineAt - task.enqueuedAt);
    const deadline = setTimeout(() => controller.abort(new TimeoutError(`task exceeded its deadline of ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    const publishBase = { v: SCHEMA_VERSION, jobId: task.jobId, taskId: task.taskId, attempt: task.attempt, instanceId: this.instanceId } as const;
    const heartbeat = setInterval(() => {
      void this.#publish({ ...publishBase, type: 'task.heartbeat', at: clock.now() }, m.headers.requestId, m.headers.tenantId).catch(() => undefined);
      void m.heartbeat().catch(() => undefined);
    }, this.#o.heartbeatIntervalMs ?? 5000);
    let modelLoadMs = 0;
    const workDir = await mkdtemp(join(tmpdir(), `dalston-${engine.stage}-`));
    try {
      await tracer.startSpan(SPAN.engineProcessRoot(engine.engineId), {
        [ATTR.jobId]: task.jobId, [ATTR.taskId]: task.taskId, [ATTR.stage]: task.stage, [ATTR.engineId]: engine.engineId,
        [ATTR.retries]: task.attempt - 1, [ATTR.requestId]: m.headers.requestId, [ATTR.tenantId]: m.headers.tenantId,
        [ATTR.language]: task.config.language, [ATTR.model]: task.config.model, [ATTR.audioDurationSeconds]: task.audioDurationSeconds,
      }, async (span) => {
        // engine.model_load hangs directly under this span (the contract's tree), not under engine.process.
        const taskSpan = tracer.inject({});
        await this.#publish({ ...publishBase, type: 'task.started', engineId: engine.engineId, at: pickedUp, queueWaitMs }, m.headers.requestId, m.headers.tenantId);
        log.info({ stage: task.stage, attempt: task.attempt, queue_wait_ms: queueWaitMs }, 'task started');

        const inputs = await tracer.startSpan(SPAN.engineDownloadInput, { [ATTR.storageBackend]: this.#o.store.backend }, () => this.#download(task, workDir));
        await this.#o.store.put(artifactKeys.taskInput(task.jobId, task.taskId), Buffer.from(JSON.stringify({ task, inputs: inputs.keys }, null, 2)), 'application/json');

        const result: EngineResult = await tracer.startSpan(SPAN.engineProcess, {}, () =>
          engine.process({
            jobId: task.jobId, taskId: task.taskId, stage: task.stage, attempt: task.attempt, config: task.config,
            inputs: inputs.paths, workDir, signal: controller.signal, log,
            measureModelLoad: async (model, load) => {
              const start = clock.now();
              try {
                return await tracer.startSpan(SPAN.engineModelLoad, { [ATTR.model]: model, [ATTR.engineId]: engine.engineId }, load, { parentCarrier: taskSpan });
              } finally {
                modelLoadMs += clock.now() - start;
                metrics.modelLoad.observe({ engine_id: engine.engineId, model }, (clock.now() - start) / 1000);
              }
            },
          }),
        );
        const audioSeconds = result.audioDurationSeconds ?? task.audioDurationSeconds;
        span.setAttributes({ [ATTR.audioDurationSeconds]: audioSeconds, [ATTR.language]: result.language ?? task.config.language, [ATTR.model]: result.model ?? task.config.model });

        const outputKey = artifactKeys.taskOutput(task.jobId, task.taskId);
        await tracer.startSpan(SPAN.engineUploadOutput, { [ATTR.storageBackend]: this.#o.store.backend }, async () => {
          const blobs: Record<string, string> = {};
          for (const [name, path] of Object.entries(result.blobs ?? {})) {
            const key = artifactKeys.taskBlob(task.jobId, task.taskId, name);
            await this.#o.store.putFile(key, path);
            blobs[name] = key;
          }
          const doc: TaskOutputDocument = { engine_id: engine.engineId, task_id: task.taskId, stage: task.stage, data: result.data, blobs };
          await this.#o.store.put(outputKey, Buffer.from(JSON.stringify(doc)), 'application/json');
          // The merged transcript also lives at the job's well-known key, as the plain document clients read.
          if (task.stage === 'merge') await this.#o.store.put(artifactKeys.transcript(task.jobId), Buffer.from(JSON.stringify(result.data)), 'application/json');
        });
        const processingMs = clock.now() - pickedUp;
        await this.#publish({
          ...publishBase, type: 'task.completed', engineId: engine.engineId, at: clock.now(), outputKey,
          metrics: {
            processingMs, queueWaitMs, modelLoadMs,
            ...(audioSeconds !== undefined ? { audioDurationSeconds: audioSeconds } : {}),
            ...(result.language ? { language: result.language } : {}), ...(result.model ? { model: result.model } : {}),
          },
        }, m.headers.requestId, m.headers.tenantId);
        metrics.taskDuration.observe({ ...labels, status: 'success' }, processingMs / 1000);
        metrics.tasksProcessed.inc({ ...labels, status: 'success' });
        if (audioSeconds !== undefined) {
          metrics.audioDuration.observe(labels, audioSeconds);
          metrics.audioProcessed.inc({ engine_id: engine.engineId }, audioSeconds);
        }
        this.processed++;
        log.info({ processing_ms: processingMs, model_load_ms: modelLoadMs }, 'task completed');
      });
    } catch (err) {
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : err;
      const failure = toFailureRecord(reason instanceof CancelledError || reason instanceof TimeoutError ? reason : err);
      const processingMs = clock.now() - pickedUp;
      metrics.taskDuration.observe({ ...labels, status: 'failure' }, processingMs / 1000);
      metrics.tasksProcessed.inc({ ...labels, status: 'failure' });
      log.warn({ code: failure.code, retryable: failure.retryable, err: failure.message }, 'task failed');
      await this.#publish({ ...publishBase, type: 'task.failed', engineId: engine.engineId, at: clock.now(), error: failure, processingMs }, m.headers.requestId, m.headers.tenantId);
    } finally {
      clearTimeout(deadline);
      clearInterval(heartbeat);
      this.#running.delete(task.taskId);
      await rm(workDir, { recursive: true, force: true });
    }
  }

  /**
   * Downloads the task's inputs: the original upload as 'audio', each upstream output.json under its stage
   * name, and upstream blobs as '<stage>.<blob>'. A prepared WAV from the prepare stage replaces 'audio'
   * (the channel's WAV for per-channel tasks).
   */
  async #download(task: TaskDispatch, workDir: string): Promise<{ paths: Record<string, string>; keys: Record<string, string> }> {
    const paths: Record<string, string> = {};
    const keys: Record<string, string> = { ...task.inputs };
    for (const [name, key] of Object.entries(task.inputs)) {
      if (name === 'audio' && task.inputs['prepare']) continue; // the prepared WAV below replaces the upload
      const local = join(workDir, name === 'audio' ? `original${extOf(key)}` : `${name}.json`);
      await this.#o.store.getToFile(key, local);
      paths[name] = local;
      if (name === 'audio') continue;
      const doc = JSON.parse(await readFile(local, 'utf8')) as Partial<TaskOutputDocument>;
      for (const [blob, blobKey] of Object.entries(doc.blobs ?? {})) {
        const blobPath = join(workDir, `${name}.${blob}`);
        await this.#o.store.getToFile(blobKey, blobPath);
        paths[`${name}.${blob}`] = blobPath;
        keys[`${name}.${blob}`] = blobKey;
      }
      // Engines read the upstream data directly, not the wrapper document.
      await writeFile(local, JSON.stringify(doc.data ?? null));
    }
    const channelWav = task.config.channel !== undefined ? paths[`prepare.audio_ch${task.config.channel}.wav`] : undefined;
    const prepared = channelWav ?? paths['prepare.audio.wav'];
    if (prepared) paths['audio'] = prepared;
    return { paths, keys };
  }
}

function extOf(key: string): string {
  const m = /\.[A-Za-z0-9]{1,5}$/.exec(key);
  return m ? m[0] : '';
}
