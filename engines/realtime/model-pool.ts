/**
 * Recognisers loaded once per process and shared by every session (decoding is stateless per call). A model is
 * loaded on first use without holding up other sessions: only sessions waiting for that model wait. A model that is
 * unknown or not installed rejects with a ModelError (not retryable), and is tried again on a later request.
 */
import type { Logger } from '../../core/logger.js';
import { createRecognizer, type Recognizer } from '../asr/index.js';

export class ModelPool {
  readonly #loading = new Map<string, Promise<Recognizer>>();

  constructor(private readonly options: {
    readonly homeDir: string;
    readonly log: Logger;
    readonly onLoaded?: (modelId: string, seconds: number) => void;
    /** onnxruntime intra-op threads per model (DALSTON_ONNX_THREADS). @default 1 */
    readonly threads?: number;
  }) {}

  /** Model ids loaded or loading. */
  get models(): string[] {
    return [...this.#loading.keys()];
  }

  get(modelId: string): Promise<Recognizer> {
    let p = this.#loading.get(modelId);
    if (p === undefined) {
      p = this.#load(modelId);
      this.#loading.set(modelId, p);
      // A failed load is forgotten so an operator can install the model without restarting the engine.
      p.catch(() => {
        if (this.#loading.get(modelId) === p) this.#loading.delete(modelId);
      });
    }
    return p;
  }

  async #load(modelId: string): Promise<Recognizer> {
    const started = performance.now();
    const recognizer = await createRecognizer(modelId, { homeDir: this.options.homeDir, log: this.options.log, ...(this.options.threads !== undefined ? { threads: this.options.threads } : {}) });
    await recognizer.load();
    const seconds = (performance.now() - started) / 1000;
    this.options.log.info({ model: modelId, load_seconds: seconds }, 'real-time model loaded');
    this.options.onLoaded?.(modelId, seconds);
    return recognizer;
  }

  async close(): Promise<void> {
    const all = [...this.#loading.values()];
    this.#loading.clear();
    for (const r of await Promise.allSettled(all)) if (r.status === 'fulfilled') await r.value.close().catch(() => undefined);
  }
}
