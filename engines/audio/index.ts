/** Shared audio helpers for engines: ffprobe, ffmpeg decoding to the 16 kHz mono working format, WAV I/O. */
export { runProcess, throwIfAborted, stderrTail, type ProcessOutput, type RunProcessOptions } from './run-process.js';
export { probeMedia, scrubPath, type MediaProbe, type AudioStreamInfo, type ProbeOptions } from './probe.js';
export { decodeToWav, decodeArgs, PIPELINE_SAMPLE_RATE, type DecodeOptions } from './decode.js';
export {
  readWav, writeWav, decodeWav, encodeWav, readWavFormat, parseWavHeader, isPcm16Mono, readPcm16MonoRange, type WavAudio, type WavFormat,
} from './wav.js';
export { quietestPointInFile, quietestSample, type QuietPointOptions } from './quietest-point.js';
export { concatSamples } from './concat-samples.js';
