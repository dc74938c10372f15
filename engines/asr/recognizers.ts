/**
 * Which recognisers this machine can run, and how to build one by catalogue id. The list comes from the
 * catalogue: an ASR model counts when its files verify and its implementation is present (pocketsphinx's
 * lives in engines/asr/pocketsphinx/, written separately, and is picked up when it exists).
 */
import type { WindowOptions } from './windows.js';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../core/logger.js';
import { silentLogger } from '../../core/logger.js';
import { CATALOGUE, findModel, type ModelSpec } from '../models/catalogue.js';
import { ModelError } from '../models/model-error.js';
import { verifyModel } from '../models/verify.js';
import { MoonshineRecognizer } from './moonshine/moonshine-recognizer.js';
import type { Recognizer } from './recognizer.js';
import { WhisperRecognizer } from './whisper/whisper-recognizer.js';

export interface RecognizerOptions {
  readonly homeDir: string;
  /** @default silentLogger */
  readonly log?: Logger;
  /** Wraps the model load (see MoonshineRecognizerOptions.measureModelLoad); called once per actual load. */
  readonly measureModelLoad?: <T>(model: string, load: () => Promise<T>) => Promise<T>;
  /** onnxruntime intra-op threads of neural models (DALSTON_ONNX_THREADS). @default 1 */
  readonly threads?: number;
  /** Overrides of how neural models pack speech into decode windows (the ASR benchmark compares settings). */
  readonly windows?: WindowOptions;
}

const POCKETSPHINX_MODULE = new URL('./pocketsphinx/pocketsphinx-recognizer.js', import.meta.url);

function implemented(spec: ModelSpec): boolean {
  switch (spec.family) {
    case 'moonshine':
    case 'whisper':
      return true;
    case 'pocketsphinx':
      return existsSync(fileURLToPath(POCKETSPHINX_MODULE));
    case 'silero-vad':
      return false;
  }
}

function isRecognizer(x: unknown): x is Recognizer {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  return typeof r['modelId'] === 'string' && typeof r['load'] === 'function' && typeof r['recognize'] === 'function' && typeof r['close'] === 'function';
}

/** The pocketsphinx module is found at run time (it may not exist yet); its recogniser is checked structurally. */
async function createPocketsphinx(options: RecognizerOptions): Promise<Recognizer> {
  const mod = (await import(POCKETSPHINX_MODULE.href)) as Record<string, unknown>;
  const factory = mod['createPocketsphinxRecognizer'];
  const Ctor = mod['PocketsphinxRecognizer'];
  let instance: unknown;
  if (typeof factory === 'function') instance = await (factory as (o: RecognizerOptions) => unknown)(options);
  else if (typeof Ctor === 'function') instance = new (Ctor as new (o: RecognizerOptions) => unknown)(options);
  if (!isRecognizer(instance)) throw new ModelError('engines/asr/pocketsphinx/pocketsphinx-recognizer.js exports no PocketsphinxRecognizer implementing Recognizer', { modelId: 'pocketsphinx-en-us' });
  return instance;
}

function measure(options: RecognizerOptions): Pick<RecognizerOptions, 'measureModelLoad' | 'threads' | 'windows'> {
  return {
    ...(options.windows !== undefined ? { windows: options.windows } : {}),
    ...(options.measureModelLoad !== undefined ? { measureModelLoad: options.measureModelLoad } : {}),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
  };
}

/** Builds (does not load) the recogniser for a catalogue ASR model. */
export async function createRecognizer(modelId: string, options: RecognizerOptions): Promise<Recognizer> {
  const spec = findModel(modelId);
  if (spec === undefined || spec.task !== 'asr') throw new ModelError(`"${modelId}" is not an ASR model of the catalogue`, { modelId });
  switch (spec.family) {
    case 'moonshine':
      return new MoonshineRecognizer({ homeDir: options.homeDir, log: options.log ?? silentLogger, ...measure(options) });
    case 'whisper':
      return new WhisperRecognizer({ homeDir: options.homeDir, model: spec, log: options.log ?? silentLogger, ...measure(options) });
    case 'pocketsphinx':
      return createPocketsphinx(options);
    case 'silero-vad':
      throw new ModelError(`"${modelId}" is a VAD model, not a recogniser`, { modelId });
  }
}

/** ASR model ids that are installed (files verify) and implemented here, in catalogue order. */
export async function availableRecognizerIds(homeDir: string): Promise<string[]> {
  const ids: string[] = [];
  for (const spec of CATALOGUE.filter((m) => m.task === 'asr' && implemented(m))) {
    try {
      await verifyModel(spec.id, homeDir);
      ids.push(spec.id);
    } catch (err) {
      if (!(err instanceof ModelError)) throw err;
    }
  }
  return ids;
}

/** Catalogue ASR models with an implementation here, installed or not (the suite fails on missing ones). */
export function implementedRecognizerIds(): string[] {
  return CATALOGUE.filter((m) => m.task === 'asr' && implemented(m)).map((m) => m.id);
}
