/**
 * The one interface every speech recogniser implements (pocketsphinx, ONNX Whisper, ONNX Moonshine, …), so the
 * transcribe engine, the conformance suite and the benchmark treat them alike.
 */

export interface Word {
  readonly text: string;
  /** Seconds from the start of the audio. */
  readonly start: number;
  readonly end: number;
  /** 0..1 where the recogniser gives one. */
  readonly confidence?: number;
}

export interface Segment {
  readonly start: number;
  readonly end: number;
  readonly text: string;
  /** Empty when the recogniser gives no word times. */
  readonly words: readonly Word[];
}

export interface RecognitionResult {
  /** ISO 639-1 code, or 'und' when unknown. */
  readonly language: string;
  readonly text: string;
  readonly segments: readonly Segment[];
  /**
   * How the word times were obtained: 'native' (the model or decoder times each word), 'estimated' (spread over
   * the VAD speech inside each segment; see engines/asr/word-timing.ts), 'none'. Absent when unspecified.
   */
  readonly wordTiming?: 'native' | 'estimated' | 'none';
}

export interface RecognitionRequest {
  /** 16 kHz mono samples in [-1, 1]. */
  readonly audio: Float32Array;
  /** Requested language, or undefined/'auto' to detect where the model can. */
  readonly language?: string;
  /** Cancellation between chunks, not only before start. */
  readonly signal?: AbortSignal;
  /** `translate`: English text whatever was spoken; a recogniser that cannot refuses with InvalidInputError. */
  readonly task?: 'transcribe' | 'translate';
  /**
   * Called with each window's segments as the window is decoded, before the whole recording is done (for streamed
   * answers). A recogniser that decodes in one pass may never call it.
   */
  readonly onWindow?: (segments: readonly Segment[]) => void;
}

export interface Recognizer {
  /** Model id from the catalogue, e.g. whisper-tiny.en, moonshine-tiny, pocketsphinx-en-us. */
  readonly modelId: string;
  readonly loaded: boolean;
  /** Loads weights once; later calls return at once. Throws a ModelError naming the model and file when they are missing or corrupt. */
  load(): Promise<void>;
  recognize(request: RecognitionRequest): Promise<RecognitionResult>;
  close(): Promise<void>;
}

export const SAMPLE_RATE = 16000;
