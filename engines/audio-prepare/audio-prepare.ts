/**
 * The `prepare` stage: any container and codec ffmpeg decodes (wav, mp3, m4a, flac, ogg, opus, webm, mp4 audio)
 * becomes `audio.wav`, 16 kHz mono 16-bit PCM, plus `audio_ch<N>.wav` per input channel when the job asks for
 * per-channel transcription. Input that is empty, not media, has no audio track, holds no samples, or decodes to
 * much less than its header declares (a truncated upload) fails with a non-retryable InvalidInputError whose
 * message says what is wrong with the file.
 */
import { mkdir, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { IllegalStateError, InvalidInputError } from '../../core/errors.js';
import { PIPELINE_SAMPLE_RATE, decodeToWav, probeMedia, readWavFormat, throwIfAborted, type MediaProbe } from '../audio/index.js';
import type { Engine, EngineResult, EngineTaskContext } from '../sdk/engine.js';

export const AUDIO_PREPARE_ENGINE_ID = 'audio-prepare';

/** One file written by the prepare stage, uploaded beside output.json under `name`. */
export interface PreparedFile {
  /** audio.wav (all channels mixed down) or audio_ch<N>.wav. */
  readonly name: string;
  /** The input channel this file holds, from 0; absent for the mixdown. */
  readonly channel?: number;
  readonly duration_seconds: number;
  readonly bytes: number;
}

/** output.json of the prepare stage. */
export interface PrepareOutput {
  /** Duration of the prepared audio, from its sample count. */
  readonly duration_seconds: number;
  /** Of the prepared files: always 16000. */
  readonly sample_rate: number;
  /** Of the prepared files: always 1 (mono). */
  readonly channels: number;
  /** What was uploaded. */
  readonly original: {
    readonly codec: string;
    /** ffmpeg's demuxer name, e.g. mp3, wav, ogg, 'mov,mp4,m4a,3gp,3g2,mj2', 'matroska,webm'. */
    readonly container: string;
    readonly sample_rate: number;
    readonly channels: number;
    /** Duration the file's header declares, when it declares one. */
    readonly duration_seconds?: number;
    readonly bytes: number;
  };
  readonly files: readonly PreparedFile[];
}

export interface AudioPrepareOptions {
  /** Longer uploads are refused (bounds disk and time for hostile or endless inputs). @default 14400 (4 h) */
  readonly maxDurationSeconds?: number;
  /** Per-channel split is refused above this many channels. @default 8 */
  readonly maxChannels?: number;
  /**
   * A file decoding to less than its declared duration by more than this share (and by more than 0.5 s) is
   * treated as truncated. @default 0.1
   */
  readonly truncationTolerance?: number;
}

export interface PrepareRequest {
  readonly input: string;
  readonly outDir: string;
  readonly perChannel?: boolean;
  readonly signal?: AbortSignal;
}

export interface PreparedAudio {
  readonly output: PrepareOutput;
  /** name → local path of each prepared file. */
  readonly blobs: Record<string, string>;
}

function bad(reason: string): InvalidInputError {
  return new InvalidInputError(`the uploaded file ${reason}`);
}

/** Why a file ffprobe could open is still not audio, in words a user understands. */
function describeNonAudio(probe: MediaProbe): string {
  // ffmpeg's tty demuxer opens any text file as an ANSI-art "video".
  if (probe.container === 'tty') return 'it looks like a text file';
  const kinds = [...new Set(probe.streamTypes)];
  return kinds.length === 0
    ? `it has no audio track (format ${probe.container}, no streams)`
    : `it has no audio track (format ${probe.container}, only ${kinds.join(' and ')})`;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * The upload's format when it already is the working format (a 16 kHz mono 16-bit PCM WAV whose data chunk is whole):
 * then it is used as it is, without starting ffprobe and ffmpeg, which cost more than the rest of a short job.
 * Anything else (another format, a streamed header without sizes, a data chunk shorter than declared) goes through
 * ffmpeg and its checks.
 */
async function alreadyPrepared(input: string, size: number): Promise<{ dataBytes: number } | undefined> {
  let f;
  try {
    f = await readWavFormat(input);
  } catch {
    return undefined;
  }
  if (f.audioFormat !== 1 || f.bitsPerSample !== 16 || f.channels !== 1 || f.sampleRate !== PIPELINE_SAMPLE_RATE) return undefined;
  if (f.dataOffset < 8 || f.dataOffset + f.dataBytes > size || f.dataBytes % 2 !== 0) return undefined;
  const fh = await open(input, 'r');
  try {
    const field = Buffer.alloc(4);
    await fh.read(field, 0, 4, f.dataOffset - 4);
    // The data chunk's own size field must be what is there: 0xFFFFFFFF (streamed) or more (truncated) is for ffmpeg.
    return field.readUInt32LE(0) === f.dataBytes ? { dataBytes: f.dataBytes } : undefined;
  } finally {
    await fh.close();
  }
}

/** The prepare work as a plain function, for the engine and for tests. */
export async function prepareAudio(request: PrepareRequest, options: AudioPrepareOptions = {}): Promise<PreparedAudio> {
  const { input, outDir, signal } = request;
  const maxDuration = options.maxDurationSeconds ?? 4 * 3600;
  const maxChannels = options.maxChannels ?? 8;
  const tolerance = options.truncationTolerance ?? 0.1;

  const size = (await stat(input)).size;
  if (size === 0) throw bad('is empty (0 bytes)');
  const ready = request.perChannel ? undefined : await alreadyPrepared(input, size);
  if (ready) {
    const duration = ready.dataBytes / 2 / PIPELINE_SAMPLE_RATE;
    if (duration < 0.001) throw bad('contains no audio samples (zero duration)');
    if (duration > maxDuration) throw bad(`is too long: ${Math.round(duration)} s of audio, the limit is ${maxDuration} s`);
    const file: PreparedFile = { name: 'audio.wav', duration_seconds: round3(duration), bytes: size };
    return {
      output: {
        duration_seconds: file.duration_seconds, sample_rate: PIPELINE_SAMPLE_RATE, channels: 1,
        original: { codec: 'pcm_s16le', container: 'wav', sample_rate: PIPELINE_SAMPLE_RATE, channels: 1, duration_seconds: file.duration_seconds, bytes: size },
        files: [file],
      },
      // The upload itself is the prepared file: nothing to decode or copy.
      blobs: { 'audio.wav': input },
    };
  }
  const probe = await probeMedia(input, signal ? { signal } : {});
  const audio = probe.audio;
  if (!audio) throw bad(`is not audio that can be decoded: ${describeNonAudio(probe)}`);
  if (audio.channels < 1) throw bad(`has an audio track (${audio.codec}) without channels`);
  const declared = audio.durationSeconds ?? probe.durationSeconds;
  if (declared !== undefined && declared > maxDuration) {
    throw bad(`is too long: ${Math.round(declared)} s of audio, the limit is ${maxDuration} s`);
  }
  if (request.perChannel && audio.channels > maxChannels) {
    throw bad(`has ${audio.channels} channels; per-channel transcription supports at most ${maxChannels}`);
  }

  const decode = async (name: string, channel?: number): Promise<PreparedFile> => {
    throwIfAborted(signal, 'prepare');
    const path = join(outDir, name);
    await decodeToWav(input, path, {
      ...(signal ? { signal } : {}), ...(channel !== undefined ? { channel } : {}), maxDurationSeconds: maxDuration + 1,
    });
    const f = await readWavFormat(path);
    const duration = f.dataBytes / 2 / f.sampleRate;
    return { name, ...(channel !== undefined ? { channel } : {}), duration_seconds: round3(duration), bytes: (await stat(path)).size };
  };

  const mix = await decode('audio.wav');
  if (mix.duration_seconds < 0.001) throw bad('contains no audio samples (zero duration)');
  if (mix.duration_seconds > maxDuration) throw bad(`is too long: more than ${maxDuration} s of audio`);
  if (declared !== undefined && declared - mix.duration_seconds > Math.max(0.5, tolerance * declared)) {
    throw bad(
      `appears truncated or corrupt: its header declares ${declared.toFixed(2)} s of audio but only ` +
      `${mix.duration_seconds.toFixed(2)} s could be decoded`,
    );
  }
  const files: PreparedFile[] = [mix];
  if (request.perChannel) {
    for (let ch = 0; ch < audio.channels; ch++) files.push(await decode(`audio_ch${ch}.wav`, ch));
  }
  const output: PrepareOutput = {
    duration_seconds: mix.duration_seconds,
    sample_rate: PIPELINE_SAMPLE_RATE,
    channels: 1,
    original: {
      codec: audio.codec,
      container: probe.container,
      sample_rate: audio.sampleRate,
      channels: audio.channels,
      ...(declared !== undefined ? { duration_seconds: round3(declared) } : {}),
      bytes: size,
    },
    files,
  };
  return { output, blobs: Object.fromEntries(files.map((f) => [f.name, join(outDir, f.name)])) };
}

export class AudioPrepareEngine implements Engine {
  readonly engineId = AUDIO_PREPARE_ENGINE_ID;
  readonly stage = 'prepare';
  readonly #options: AudioPrepareOptions;

  constructor(options: AudioPrepareOptions = {}) {
    this.#options = options;
  }

  async process(ctx: EngineTaskContext): Promise<EngineResult> {
    const input = ctx.inputs['audio'];
    if (input === undefined) throw new IllegalStateError('prepare task has no "audio" input');
    // A subdirectory, so no prepared name can collide with the downloaded input.
    const outDir = join(ctx.workDir, 'prepared');
    await mkdir(outDir, { recursive: true });
    const { output, blobs } = await prepareAudio(
      { input, outDir, perChannel: ctx.config.perChannel === true, signal: ctx.signal },
      this.#options,
    );
    ctx.log.info({ duration_seconds: output.duration_seconds, codec: output.original.codec, channels: output.original.channels }, 'audio prepared');
    return { data: output, blobs, audioDurationSeconds: output.duration_seconds };
  }
}
