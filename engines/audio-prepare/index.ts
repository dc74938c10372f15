/** The prepare stage: any decodable upload → 16 kHz mono PCM WAV (and per-channel WAVs). */
export {
  AudioPrepareEngine, AUDIO_PREPARE_ENGINE_ID, prepareAudio,
  type PrepareOutput, type PreparedFile, type AudioPrepareOptions, type PrepareRequest, type PreparedAudio,
} from './audio-prepare.js';
