/** The transcribe stage: any Recognizer as an engine. */
export {
  TranscribeEngine, type TranscribeEngineOptions, type TranscribeOutput, type TranscriptSegment, type TranscriptWord,
} from './transcribe-engine.js';
