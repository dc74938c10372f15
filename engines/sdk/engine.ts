/** The interface every engine implements; the runner (engines/runtime) calls it once per task. */
import type { Logger } from '../../core/logger.js';

export interface EngineTaskContext {
  readonly jobId: string;
  readonly taskId: string;
  readonly stage: string;
  readonly attempt: number;
  readonly config: { language?: string; model?: string; channel?: number; timestampsGranularity?: string };
  /** Local paths of the downloaded inputs, by name: 'audio' (the original upload or prepared wav), or an upstream stage name → its output.json path. */
  readonly inputs: Readonly<Record<string, string>>;
  /** Scratch directory for this task, removed by the runner afterwards. */
  readonly workDir: string;
  /** Aborted when the task is cancelled or its deadline passes: check it between chunks. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** Call around a model load that happens inside this task, so the runner records an engine.model_load span/metric. */
  readonly measureModelLoad: <T>(model: string, load: () => Promise<T>) => Promise<T>;
}

export interface EngineResult {
  /** JSON output, stored as the task's output.json. */
  readonly data: unknown;
  /** Files to upload beside output.json (name → local path), e.g. the prepared audio. */
  readonly blobs?: Readonly<Record<string, string>>;
  readonly audioDurationSeconds?: number;
  readonly language?: string;
  readonly model?: string;
}

export interface Engine {
  readonly engineId: string;
  readonly stage: string;
  start?(): Promise<void>;
  process(ctx: EngineTaskContext): Promise<EngineResult>;
  close?(): Promise<void>;
}
