/**
 * The engine runner: consumes its own queue `tasks.<stage>.<engine_id>` in group `dalston-engine-<engine_id>` and,
 * per task, downloads the inputs, runs the engine, uploads the outputs and reports started / heartbeat / completed /
 * failed on jobs.events.
 *
 * Tasks run outside Kafka's fetch loop: a dispatch is taken only when a task slot is free (otherwise the topic is
 * paused and the dispatch fetched again later), its offset is committed once `task.started` is acknowledged, and the
 * task then runs on its own while the consumer keeps heart-beating and can rejoin a rebalance at once. From then on
 * the task's heartbeats are its lease: if this process dies, the job actor sees the beats stop and dispatches a new
 * attempt. So a scale-out or deploy during a long task neither evicts this member nor runs the task twice.
 *
 * Cancellation arrives on tasks.control, read from its start (an hour of history) by every instance before it takes
 * any task, so a new instance also honours cancels sent before it started. On shutdown the runner stops taking tasks,
 * lets running ones finish for the drain time, then aborts the rest and gives them back (`task.released`): work
 * stopped by a shutdown is never reported as failed.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../core/clock.js';
import { CancelledError, DependencyUnavailableError, ShutdownError, TimeoutError, toFailureRecord } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { EngineMetrics } from '../../core/metrics.js';
import { ATTR, LOG, SPAN } from '../../core/observability-names.js';
import type { Tracer } from '../../core/telemetry/tracer.js';
import { artifactKeys, type ArtifactStore, type TaskOutputDocument } from '../../storage/index.js';
import {
  JOB_EVENTS, JOB_PROGRESS, SCHEMA_VERSION, TASK_CONTROL, StreamConsumer, checkControlMessage, checkTaskMessage, decodeMessage, encodeMessage,
  baseStage, engineGroupId, engineTaskTopic, ensureTopics, newMessageHeaders, prefixed, taskTopicFor,
  type Admin, type ConsumedMessage, type ControlMessage, type DeadLetterWriter, type JobEvent, type Kafka, type MessageSender, type TaskDispatch,
  type TranscriptProgress,
} from '../../streams/index.js';
import { RecentIds } from '../../core/recent-ids.js';
import type { Engine, EngineResult } from '../sdk/engine.js';

export interface EngineRunnerOptions {
  readonly engine: Engine;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: MessageSender;
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
  /**
   * Starts a running task's heartbeat: calls `beat` every `intervalMs` until cancelled (a seam for tests, which fire
   * the beats themselves). @default setInterval
   */
  readonly heartbeatTimer?: (beat: () => void, intervalMs: number) => { cancel(): void };
  /** On close(), how long running tasks may finish before they are given back. @default 30000 */
  readonly drainMs?: number;
  /** Group session timeout of the task consumer. @default 10000 */
  readonly sessionTimeoutMs?: number;
  /** How long the group waits for members to rejoin a rebalance. @default 60000 */
  readonly rebalanceTimeoutMs?: number;
}

interface Running {
  readonly controller: AbortController;
  readonly attempt: number;
  readonly jobId: string;
  done: Promise<void>;
}

export class EngineRunner {
  readonly #o: EngineRunnerOptions;
  readonly #log: Logger;
  readonly #tasks: StreamConsumer<TaskDispatch>;
  readonly #control: StreamConsumer<ControlMessage>;
  readonly #running = new Map<string, Running>();
  readonly #concurrency: number;
  /** Attempts this instance has taken (bounded): both copies of a re-sent dispatch share a key, so they come here. */
  readonly #taken = new RecentIds(50_000);
  /** Cancels that arrived before their task was picked up (bounded, oldest forgotten first). */
  readonly #cancelled = new Set<string>();
  readonly instanceId = `${process.env['HOSTNAME'] ?? 'local'}-${process.pid}-${randomUUID().slice(0, 6)}`;
  readonly #controlGroup: string;
  #closing = false;
  /** Tasks this instance finished, for tests that show two instances shared the work. */
  processed = 0;
  /** Tasks this instance gave back on shutdown. */
  released = 0;

  constructor(options: EngineRunnerOptions) {
    this.#o = options;
    const { engine } = options;
    this.#concurrency = options.concurrency ?? 1;
    this.#log = options.log.child({ [LOG.engineId]: engine.engineId, instance: this.instanceId });
    // Both outcomes exported from start-up at 0, so the error-rate panels and alert see the first task as a change.
    for (const status of ['success', 'failure'] as const) options.metrics.tasksProcessed.inc({ engine_id: engine.engineId, stage: engine.stage, status }, 0);
    this.#tasks = new StreamConsumer<TaskDispatch>({
      kafka: options.kafka,
      groupId: engineGroupId(options.topicPrefix, engine.engineId),
      topics: [prefixed(options.topicPrefix, taskTopicFor(engine.stage, engine.engineId))],
      decode: (value) => decodeMessage(checkTaskMessage, value),
      handler: (m) => this.#onTask(m),
      deadLetter: options.deadLetter,
      log: this.#log,
      partitionsConsumedConcurrently: this.#concurrency,
      sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
      ...(options.rebalanceTimeoutMs !== undefined ? { rebalanceTimeoutMs: options.rebalanceTimeoutMs } : {}),
      maxWaitTimeMs: 100,
      // Taking a task only publishes task.started; a failure there is Kafka being unavailable: wait, never drop it.
      retry: { maxAttempts: Number.POSITIVE_INFINITY, maxBackoffMs: 5000 },
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
      // The topic keeps an hour of cancels; every instance reads them all and commits nothing (no group left behind).
      fromBeginning: true,
      commitOffsets: false,
      maxWaitTimeMs: 100,
    });
  }

  get inFlight(): number {
    return this.#running.size;
  }

  async start(): Promise<void> {
    await this.#o.engine.start?.();
    // The queue is this engine's own: an engine started before any actor host (or not in its catalogue) still has it.
    const queue = engineTaskTopic(this.#o.engine.stage, this.#o.engine.engineId);
    await ensureTopics(this.#o.kafka, [{ ...queue, name: prefixed(this.#o.topicPrefix, queue.name) }], this.#log);
    await this.#control.start();
    // Know every cancel already sent before taking any task.
    await this.#control.waitCaughtUp(this.#o.admin, 60_000);
    await this.#tasks.start();
    this.#log.info({ stage: this.#o.engine.stage }, 'engine runner started');
  }

  /**
   * Stops taking tasks, lets running ones finish within the drain time, then aborts the rest and gives them back
   * (task.released) so another instance runs them; finally closes the engine.
   */
  async close(): Promise<void> {
    this.#closing = true;
    await this.#tasks.close();
    const drainMs = this.#o.drainMs ?? 30_000;
    const all = () => Promise.allSettled([...this.#running.values()].map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all(), new Promise((r) => (timer = setTimeout(r, drainMs)))]);
    clearTimeout(timer);
    for (const r of this.#running.values()) r.controller.abort(new ShutdownError('the engine is shutting down'));
    await all();
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

  /** Best effort: a lost progress record only makes a streamed answer coarser; the outcome carries the transcript. */
  #progress(task: TaskDispatch, seq: number, segments: readonly { start: number; end: number; text: string }[], requestId: string | undefined, tenantId: string | undefined): void {
    segments.forEach((segment, i) => {
      const message: TranscriptProgress = {
        v: SCHEMA_VERSION, type: 'transcript.progress', jobId: task.jobId, taskId: task.taskId, stage: task.stage, seq: seq + i,
        start: segment.start, end: segment.end, text: segment.text,
      };
      void this.#o.producer.send(prefixed(this.#o.topicPrefix, JOB_PROGRESS.name), {
        key: task.jobId, value: encodeMessage(message),
        headers: newMessageHeaders({ ...(requestId ? { requestId } : {}), ...(tenantId ? { tenantId } : {}), clock: this.#o.clock }),
      }).catch(() => undefined);
    });
  }

  /**
   * Admission: takes the dispatch if a slot is free (else requeues it and pauses the topic), and resolves once
   * task.started is acknowledged, which commits the dispatch. The task itself goes on after this returns.
   */
  async #onTask(m: ConsumedMessage<TaskDispatch>): Promise<void> {
    const task = m.value;
    const { engine } = this.#o;
    // Only this engine's work is routed to its queue; a misaddressed dispatch is another engine's to run, not ours.
    if (task.engineId !== engine.engineId) {
      this.#log.warn({ [LOG.jobId]: task.jobId, [LOG.taskId]: task.taskId, addressed_to: task.engineId }, 'dispatch for another engine skipped');
      return;
    }
    if (this.#closing) {
      m.requeue();
      return;
    }
    if (this.#cancelled.delete(`${task.taskId}#${task.attempt}`)) {
      this.#log.info({ [LOG.jobId]: task.jobId, [LOG.taskId]: task.taskId, attempt: task.attempt }, 'task was cancelled before pick-up; skipped');
      return;
    }
    // A re-sent dispatch (an actor's outbox sent again after a takeover) of an attempt this instance already took.
    if (this.#taken.has(`${task.taskId}#${task.attempt}`)) {
      this.#log.debug({ [LOG.jobId]: task.jobId, [LOG.taskId]: task.taskId, attempt: task.attempt }, 'duplicate dispatch skipped');
      return;
    }
    if (this.#running.size >= this.#concurrency) {
      m.requeue();
      this.#tasks.pause();
      return;
    }
    let admitted: (err?: Error) => void = () => undefined;
    const admission = new Promise<void>((resolve, reject) => {
      admitted = (err) => (err === undefined ? resolve() : reject(err));
    });
    const running: Running = { controller: new AbortController(), attempt: task.attempt, jobId: task.jobId, done: Promise.resolve() };
    this.#running.set(task.taskId, running);
    if (this.#running.size >= this.#concurrency) this.#tasks.pause();
    running.done = this.#run(m, running, admitted).finally(() => {
      if (this.#running.get(task.taskId) === running) this.#running.delete(task.taskId);
      if (!this.#closing && this.#running.size < this.#concurrency) this.#tasks.resume();
    });
    await admission;
  }

  async #run(m: ConsumedMessage<TaskDispatch>, running: Running, admitted: (err?: Error) => void): Promise<void> {
    const task = m.value;
    const { engine, tracer, metrics, clock } = this.#o;
    const { requestId, tenantId } = m.headers;
    const log = this.#log.child({
      [LOG.jobId]: task.jobId, [LOG.taskId]: task.taskId,
      ...(requestId ? { [LOG.requestId]: requestId } : {}),
      ...(tenantId ? { [LOG.tenantId]: tenantId } : {}),
    });
    const pickedUp = clock.now();
    const queueWaitMs = Math.max(0, pickedUp - task.enqueuedAt);
    const labels = { engine_id: engine.engineId, stage: baseStage(task.stage) };
    const { controller } = running;
    const publishBase = { v: SCHEMA_VERSION, jobId: task.jobId, taskId: task.taskId, attempt: task.attempt, instanceId: this.instanceId } as const;
    let started = false;
    let heartbeat: { cancel(): void } | undefined;
    let deadline: NodeJS.Timeout | undefined;
    let workDir: string | undefined;
    let modelLoadMs = 0;
    /** Windows reported on jobs.progress by this attempt so far. */
    let progressSeq = 0;
    // queue_wait is a sibling of the task's span (both under the dispatch's Kafka hop), as the contract draws it.
    metrics.queueWait.observe(labels, queueWaitMs / 1000);
    tracer.recordSpan(SPAN.queueWait, { [ATTR.jobId]: task.jobId, [ATTR.taskId]: task.taskId, [ATTR.stage]: task.stage, [ATTR.engineId]: engine.engineId }, task.enqueuedAt, pickedUp);
    try {
      await tracer.startSpan(SPAN.engineProcessRoot(engine.engineId), {
        [ATTR.jobId]: task.jobId, [ATTR.taskId]: task.taskId, [ATTR.stage]: task.stage, [ATTR.engineId]: engine.engineId,
        [ATTR.retries]: task.attempt - 1, [ATTR.requestId]: requestId, [ATTR.tenantId]: tenantId,
        [ATTR.language]: task.config.language, [ATTR.model]: task.config.model, [ATTR.audioDurationSeconds]: task.audioDurationSeconds,
      }, async (span) => {
        // engine.model_load hangs directly under this span (the contract's tree), not under engine.process.
        const taskSpan = tracer.inject({});
        try {
          await this.#publish({ ...publishBase, type: 'task.started', engineId: engine.engineId, at: pickedUp, queueWaitMs }, requestId, tenantId);
        } catch (err) {
          admitted(err instanceof Error ? err : new DependencyUnavailableError('task.started could not be published'));
          throw err;
        }
        started = true;
        this.#taken.add(`${task.taskId}#${task.attempt}`);
        admitted();
        log.info({ stage: task.stage, attempt: task.attempt, queue_wait_ms: queueWaitMs }, 'task started');
        // The deadline bounds processing, not queueing: time spent waiting in the topic under load must not eat it.
        const timeoutMs = Math.max(1, task.deadlineAt - task.enqueuedAt);
        deadline = setTimeout(() => controller.abort(new TimeoutError(`task exceeded its deadline of ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
        heartbeat = (this.#o.heartbeatTimer ?? everyInterval)(() => {
          void this.#publish({ ...publishBase, type: 'task.heartbeat', at: clock.now() }, requestId, tenantId).catch(() => undefined);
        }, this.#o.heartbeatIntervalMs ?? 5000);
        workDir = await mkdtemp(join(tmpdir(), `dalston-${engine.stage}-`));
        const dir = workDir;

        const inputs = await tracer.startSpan(SPAN.engineDownloadInput, { [ATTR.storageBackend]: this.#o.store.backend }, () => this.#download(task, dir));
        await this.#o.store.put(artifactKeys.taskInput(task.jobId, task.taskId), Buffer.from(JSON.stringify({ task, inputs: inputs.keys }, null, 2)), 'application/json');

        const result: EngineResult = await tracer.startSpan(SPAN.engineProcess, {}, () =>
          engine.process({
            jobId: task.jobId, taskId: task.taskId, stage: task.stage, attempt: task.attempt, config: task.config,
            inputs: inputs.paths, workDir: dir, signal: controller.signal, log,
            progress: (segments) => {
              this.#progress(task, progressSeq, segments, requestId, tenantId);
              progressSeq += segments.length;
            },
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
        // A result that raced a shutdown abort is still a result: report it.
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
        }, requestId, tenantId);
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
      if (!started) return; // not taken: the consumer retries the dispatch
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : err;
      const processingMs = clock.now() - pickedUp;
      if (reason instanceof ShutdownError) {
        // Stopped by our own shutdown, whatever the engine threw as it stopped: give it back, never fail the stage.
        this.released++;
        log.warn({ attempt: task.attempt }, 'task given back: the engine is shutting down');
        await this.#publish({ ...publishBase, type: 'task.released', engineId: engine.engineId, at: clock.now(), reason: 'engine shutting down' }, requestId, tenantId)
          .catch((e: unknown) => log.warn({ err: String(e) }, 'task.released not published; the actor will find the task by its missing heartbeats'));
        return;
      }
      const failure = toFailureRecord(reason instanceof CancelledError || reason instanceof TimeoutError ? reason : err);
      metrics.taskDuration.observe({ ...labels, status: 'failure' }, processingMs / 1000);
      metrics.tasksProcessed.inc({ ...labels, status: 'failure' });
      const cause = reason instanceof Error && reason.cause instanceof Error ? reason.cause.message : undefined;
      // The cause (e.g. ffmpeg's raw output) is for operators only: clients see the failure's cleaned message.
      log.warn({ code: failure.code, retryable: failure.retryable, err: failure.message, ...(cause ? { cause } : {}) }, 'task failed');
      await this.#publish({ ...publishBase, type: 'task.failed', engineId: engine.engineId, at: clock.now(), error: failure, processingMs }, requestId, tenantId)
        .catch((e: unknown) => log.warn({ err: String(e) }, 'task.failed not published; the actor will find the task by its missing heartbeats'));
    } finally {
      clearTimeout(deadline);
      heartbeat?.cancel();
      if (workDir) await rm(workDir, { recursive: true, force: true });
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

function everyInterval(fn: () => void, ms: number): { cancel(): void } {
  const timer = setInterval(fn, ms);
  return { cancel: () => clearInterval(timer) };
}

function extOf(key: string): string {
  const m = /\.[A-Za-z0-9]{1,5}$/.exec(key);
  return m ? m[0] : '';
}
