/**
 * Audio as real-time clients send it → the 16 kHz mono float32 the transcriber works on. Supported: 16-bit
 * little-endian PCM at any rate from 8 to 48 kHz, and G.711 μ-law / A-law at their native 8 kHz; mono or
 * interleaved stereo (averaged to mono). Each chunk must hold whole sample frames: a chunk that splits a
 * sample is refused rather than silently re-aligned, because every later sample would be garbage.
 */
import { InvalidInputError } from '../../core/errors.js';
import { ALAW_TABLE, MULAW_TABLE } from './g711.js';
import { StreamingResampler } from './resampler.js';

/** The working rate of the VAD and the recognisers. */
export const STREAM_SAMPLE_RATE = 16000;

export const AUDIO_ENCODINGS = ['pcm_s16le', 'mulaw', 'alaw'] as const;
export type AudioEncoding = (typeof AUDIO_ENCODINGS)[number];

export const MIN_PCM_RATE = 8000;
export const MAX_PCM_RATE = 48000;
/** G.711 is defined at 8 kHz only. */
export const G711_RATE = 8000;

export interface AudioInputFormat {
  readonly encoding: AudioEncoding;
  /** Samples per second per channel: 8000–48000 for pcm_s16le, 8000 for mulaw/alaw. */
  readonly sampleRate: number;
  /** Interleaved channels; stereo is averaged to mono. @default 1 */
  readonly channels?: number;
}

export interface CompiledAudioInputFormat {
  readonly encoding: AudioEncoding;
  readonly sampleRate: number;
  readonly channels: 1 | 2;
  /** Bytes per sample of one channel. */
  readonly bytesPerSample: 1 | 2;
  /** Bytes per sample frame (all channels); every chunk must be a multiple of it. */
  readonly frameBytes: number;
}

function isEncoding(x: unknown): x is AudioEncoding {
  return typeof x === 'string' && (AUDIO_ENCODINGS as readonly string[]).includes(x);
}

/** Validates a client's declared format; InvalidInputError names what is wrong. */
export function compileAudioInputFormat(format: AudioInputFormat): CompiledAudioInputFormat {
  const encoding: unknown = format.encoding;
  if (!isEncoding(encoding)) throw new InvalidInputError(`unsupported audio encoding "${String(encoding)}"; supported: ${AUDIO_ENCODINGS.join(', ')}`);
  const channels = format.channels ?? 1;
  if (channels !== 1 && channels !== 2) throw new InvalidInputError(`unsupported channel count ${channels}; supported: 1 (mono) or 2 (interleaved stereo)`);
  const rate = format.sampleRate;
  if (encoding === 'pcm_s16le') {
    if (!Number.isInteger(rate) || rate < MIN_PCM_RATE || rate > MAX_PCM_RATE) {
      throw new InvalidInputError(`unsupported sample rate ${rate} Hz for pcm_s16le; supported: integer rates from ${MIN_PCM_RATE} to ${MAX_PCM_RATE} Hz`);
    }
  } else if (rate !== G711_RATE) {
    throw new InvalidInputError(`unsupported sample rate ${rate} Hz for ${encoding}; G.711 is ${G711_RATE} Hz only`);
  }
  const bytesPerSample = encoding === 'pcm_s16le' ? 2 : 1;
  return { encoding, sampleRate: rate, channels, bytesPerSample, frameBytes: bytesPerSample * channels };
}

/** Decodes whole sample frames to mono float32 at the input rate (stereo averaged). Pure. */
export function decodeToMono(bytes: Uint8Array, format: CompiledAudioInputFormat): Float32Array {
  if (bytes.length % format.frameBytes !== 0) {
    throw new InvalidInputError(
      `audio chunk of ${bytes.length} bytes is not a whole number of ${format.encoding} ${format.channels === 2 ? 'stereo ' : ''}sample frames (${format.frameBytes} bytes each)`,
    );
  }
  const frames = bytes.length / format.frameBytes;
  const out = new Float32Array(frames);
  const ch = format.channels;
  if (format.encoding === 'pcm_s16le') {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < frames; i++) {
      let sum = 0;
      for (let c = 0; c < ch; c++) sum += view.getInt16((i * ch + c) * 2, true);
      out[i] = sum / ch / 32768;
    }
    return out;
  }
  const table = format.encoding === 'mulaw' ? MULAW_TABLE : ALAW_TABLE;
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < ch; c++) sum += table[bytes[i * ch + c] ?? 0] ?? 0;
    out[i] = sum / ch;
  }
  return out;
}

/**
 * One session's input path: bytes in the declared format → 16 kHz mono float32. Stateful only through the
 * resampler, so chunk boundaries never click.
 */
export class AudioInputDecoder {
  readonly format: CompiledAudioInputFormat;
  private readonly resampler: StreamingResampler;

  constructor(format: AudioInputFormat) {
    this.format = compileAudioInputFormat(format);
    this.resampler = new StreamingResampler(this.format.sampleRate, STREAM_SAMPLE_RATE);
  }

  /** Decodes one chunk; the output may lag the input by about a millisecond (resampler look-ahead). */
  decode(bytes: Uint8Array): Float32Array {
    return this.resampler.push(decodeToMono(bytes, this.format));
  }

  /** End of stream: the samples held back for the look-ahead. */
  flush(): Float32Array {
    return this.resampler.flush();
  }
}
