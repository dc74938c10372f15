/**
 * Which engine serves each stage. A job's `model` picks the transcribe engine (`stt-batch-transcribe-<backend>-<model>`);
 * other stages have one engine each today.
 */
import type { EngineSelection } from './dag.js';

export interface EngineSelectionOptions {
  /** Transcribe engine when a job names no model. */
  readonly defaultTranscribeEngine: string;
  /** Model id → transcribe engine id, for every installed recogniser. */
  readonly transcribeEngines: Readonly<Record<string, string>>;
}

export const STAGE_ENGINES: Readonly<Record<string, string>> = {
  prepare: 'audio-prepare',
  vad: 'silero-vad-v5',
  merge: 'merge',
};

export function createEngineSelection(options: EngineSelectionOptions): EngineSelection & { readonly engineIds: readonly { stage: string; engineId: string }[] } {
  return {
    engineFor(stage, model) {
      if (stage === 'transcribe') {
        return (model && options.transcribeEngines[model]) || options.defaultTranscribeEngine;
      }
      const engine = STAGE_ENGINES[stage];
      if (!engine) throw new Error(`no engine serves stage ${stage}`);
      return engine;
    },
    engineIds: [
      ...Object.entries(STAGE_ENGINES).map(([stage, engineId]) => ({ stage, engineId })),
      ...[...new Set([options.defaultTranscribeEngine, ...Object.values(options.transcribeEngines)])].map((engineId) => ({ stage: 'transcribe', engineId })),
    ],
  };
}
