/** Public face of voice activity detection: Silero VAD (batch + per-frame) and the pure end-pointer. */
export { SileroVad, SileroVadStream, VAD_FRAME_SAMPLES, VAD_FRAME_SECONDS, VAD_SAMPLE_RATE, type SpeechAnalysis } from './silero-vad.js';
export { Endpointer, speechRegions, resolveVadOptions, type EndpointEvent, type SpeechRegion, type VadOptions } from './speech-regions.js';
