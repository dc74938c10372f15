/** Public face of the speech recognisers: the interface, the factory by catalogue id, and the WER scorers. */
export type { Recognizer, RecognitionRequest, RecognitionResult, Segment, Word } from './recognizer.js';
export { SAMPLE_RATE } from './recognizer.js';
export { createRecognizer, availableRecognizerIds, implementedRecognizerIds, type RecognizerOptions } from './recognizers.js';
export { MoonshineRecognizer, type MoonshineRecognizerOptions } from './moonshine/moonshine-recognizer.js';
export { WhisperRecognizer, type WhisperRecognizerOptions } from './whisper/whisper-recognizer.js';
export { normalizeTranscript, wordErrors, corpusWer, type WerResult, type WerCounts } from './wer.js';
export { scoreWithSclite, type ScliteSummary, type ScoredUtterance } from './sclite.js';
