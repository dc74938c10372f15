/**
 * Public face of real-time recognition: decoding what clients send to 16 kHz, end-pointing live audio, and the
 * per-session StreamingTranscriber with its events and failover checkpoint.
 */
export {
  AudioInputDecoder, compileAudioInputFormat, decodeToMono, AUDIO_ENCODINGS, STREAM_SAMPLE_RATE, MIN_PCM_RATE, MAX_PCM_RATE, G711_RATE,
  type AudioEncoding, type AudioInputFormat, type CompiledAudioInputFormat,
} from './audio-input.js';
export { StreamingResampler } from './resampler.js';
export { compileEndpointerOptions, ENDPOINTER_DEFAULTS, type EndpointerOptions, type CompiledEndpointerOptions } from './endpointer-options.js';
export { StreamingEndpointer, type EndpointerEvent, type EndReason } from './endpointer.js';
export { compilePartialCadence, decidePartial, partialInterval, type PartialCadenceOptions, type CompiledPartialCadence, type CadenceDecision } from './partial-cadence.js';
export type { DecodeGate, DecodeKind, DecodeRequest, GateOutcome } from './decode-gate.js';
export { parseCheckpoint, INITIAL_CHECKPOINT, type TranscriberCheckpoint } from './checkpoint.js';
export type { TranscriptEvent, TranscriptEventType } from './transcript-events.js';
export {
  createStreamingTranscriber, VAD_FRAME_SAMPLES,
  type StreamingTranscriber, type StreamingTranscriberOptions, type TranscriberState, type TranscriberStats, type DecodeMeasurement, type VadFrameModel, type VadFrameStream,
} from './streaming-transcriber.js';
