/**
 * Builds an engine from its id: `audio-prepare`, `merge`, or `stt-batch-transcribe-<backend>-<model>` for every
 * recogniser of the model catalogue. A transcribe engine verifies its model files at start, so a missing or corrupt
 * model stops the process with one error naming model and file instead of accepting work it cannot do.
 */
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { AudioPrepareEngine } from './audio-prepare/index.js';
import { createRecognizer } from './asr/recognizers.js';
import { MergeEngine } from './merge/index.js';
import { CATALOGUE, batchEngineId } from './models/catalogue.js';
import { verifyModel } from './models/verify.js';
import type { Engine } from './sdk/engine.js';
import { TranscribeEngine } from './transcribe/index.js';
import { VAD_ENGINE_ID, VadEngine } from './vad/vad-engine.js';

export interface EngineFactoryOptions {
  readonly homeDir: string;
  readonly log: Logger;
  /** onnxruntime intra-op threads of a neural model (DALSTON_ONNX_THREADS). @default 1 */
  readonly onnxThreads?: number;
}

export function knownEngineIds(): string[] {
  return ['audio-prepare', 'merge', VAD_ENGINE_ID, ...CATALOGUE.filter((m) => m.task === 'asr').map(batchEngineId)];
}

export async function createEngine(engineId: string, options: EngineFactoryOptions): Promise<Engine> {
  if (engineId === 'audio-prepare') return new AudioPrepareEngine();
  if (engineId === 'merge') return new MergeEngine();
  if (engineId === VAD_ENGINE_ID) {
    await verifyModel(VAD_ENGINE_ID, options.homeDir);
    return new VadEngine(options.homeDir);
  }
  const model = CATALOGUE.find((m) => m.task === 'asr' && batchEngineId(m) === engineId);
  if (!model) throw new ConfigError(`DALSTON_ENGINE_ID "${engineId}" is not an engine this build has; known: ${knownEngineIds().join(', ')}`);
  await verifyModel(model.id, options.homeDir);
  const recognizer = await createRecognizer(model.id, { homeDir: options.homeDir, log: options.log, ...(options.onnxThreads !== undefined ? { threads: options.onnxThreads } : {}) });
  return new TranscribeEngine({ engineId, recognizer });
}
