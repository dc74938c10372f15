/**
 * The contract between the engine runner (Kafka, artifact store, spans, metrics) and an engine (the stage work).
 * The runner downloads a task's inputs to local files, calls `process`, uploads `data` as output.json plus any
 * `blobs` beside it, and publishes the result. An engine never sees Kafka or the store; it sees files and a signal.
 */
import type { Logger } from '../../core/logger.js';

/** Per-task options, copied from the task dispatch message. */
export interface EngineTaskConfig {
  /** ISO 639-1 code or 'auto'. */
  readonly language?: string;
  /** Catalogue model id or 'auto'. */
  readonly model?: string;
  /** For a per-channel task (transcribe_ch<N>): the channel of the original audio to use, from 0. */
  readonly channel?: number;
  /** 'none' | 'segment' | 'word'. */
  readonly timestampsGranularity?: string;
  /** For the prepare stage: also write one mono file per input channel (audio_ch<N>.wav). */
  readonly perChannel?: boolean;
  /** transcribe: `translate` asks for English text whatever was spoken (multilingual Whisper models). */
  readonly task?: 'transcribe' | 'translate';
  /** transcribe parts of a long file: the part's nominal span in seconds (see streams TaskConfig). */
  readonly chunkStart?: number;
  readonly chunkEnd?: number;
}

export interface EngineTaskContext {
  readonly jobId: string;
  readonly taskId: string;
  readonly stage: string;
  readonly attempt: number;
  readonly config: EngineTaskConfig;
  /**
   * Local paths of the downloaded inputs, by name: 'audio' (the original upload or a prepared wav), or an
   * upstream stage name (prepare, transcribe, transcribe_ch0, …) → its output.json path.
   */
  readonly inputs: Readonly<Record<string, string>>;
  /** Scratch directory for this task, removed by the runner afterwards. */
  readonly workDir: string;
  /** Aborted when the task is cancelled or its deadline passes: check it between chunks. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /**
   * Reports transcript text as it is produced (a window decoded), before the task ends: published best effort on
   * jobs.progress for gateways streaming the answer. Optional; never awaited.
   */
  readonly progress?: (segments: readonly { readonly start: number; readonly end: number; readonly text: string }[]) => void;
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
  /** Names the implementation and model, e.g. stt-batch-transcribe-pocketsphinx-en-us. */
  readonly engineId: string;
  /** The stage whose topic this engine consumes: prepare, transcribe, merge, … */
  readonly stage: string;
  /** Optional warm-up before the first task (e.g. load a model eagerly). */
  start?(): Promise<void>;
  /**
   * Does one task. Throws a DalstonError: InvalidInputError (bad input, never retried), CancelledError (the signal
   * fired), DependencyUnavailableError (retryable), or a ModelError (model missing, not retryable).
   */
  process(ctx: EngineTaskContext): Promise<EngineResult>;
  /** Releases models and child processes. */
  close?(): Promise<void>;
}
