/** Probing a media file with ffprobe: container, declared duration and the first audio stream's codec and layout. */
import { InvalidInputError } from '../../core/errors.js';
import { runProcess, stderrTail } from './run-process.js';

export interface AudioStreamInfo {
  /** Index of the stream inside the container. */
  readonly index: number;
  /** ffmpeg codec name: mp3, aac, opus, vorbis, flac, pcm_s16le, … */
  readonly codec: string;
  readonly sampleRate: number;
  readonly channels: number;
  /** Duration the stream header declares, when it declares one. */
  readonly durationSeconds?: number;
}

export interface MediaProbe {
  /** ffmpeg's demuxer name(s), e.g. 'wav', 'mp3', 'mov,mp4,m4a,3gp,3g2,mj2', 'matroska,webm'. */
  readonly container: string;
  /** Duration the container declares (or ffprobe estimates), when known. */
  readonly durationSeconds?: number;
  /** The first audio stream, or undefined when the file has none. */
  readonly audio?: AudioStreamInfo;
  /** codec_type of every stream, e.g. ['video', 'audio']. */
  readonly streamTypes: readonly string[];
}

export interface ProbeOptions {
  readonly signal?: AbortSignal;
}

interface FfprobeJson {
  streams?: Array<{
    index?: number; codec_type?: string; codec_name?: string; sample_rate?: string; channels?: number; duration?: string;
  }>;
  format?: { format_name?: string; duration?: string };
}

function positive(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** Removes the file path from ffmpeg's messages, so errors shown to users do not leak server paths. */
export function scrubPath(message: string, path: string): string {
  return message.split(path).join('input');
}

/** Longest ffmpeg reason shown to a client. */
const MAX_REASON = 200;

/**
 * ffmpeg's reason as a client may see it: without the server's paths, without the `[wav @ 0x55d9…]` context
 * prefixes (heap addresses), one line, at most 200 characters. The raw text stays in the engine's log (the error's cause).
 */
export function clientReason(stderr: string, paths: readonly string[]): string {
  let text = stderrTail(stderr, 2);
  for (const p of paths) text = scrubPath(text, p);
  text = text.replace(/\[[^\]@]*@ 0x[0-9a-f]+\]\s*/gi, '').replace(/0x[0-9a-f]{6,}/gi, '…').replace(/\s+/g, ' ').trim();
  return text.length > MAX_REASON ? `${text.slice(0, MAX_REASON - 1)}…` : text;
}

/**
 * Probes `path`. Throws InvalidInputError (not retryable) when ffprobe cannot read it as media at all, with
 * ffprobe's own reason; a readable file without audio is returned with `audio` undefined.
 */
export async function probeMedia(path: string, options: ProbeOptions = {}): Promise<MediaProbe> {
  const out = await runProcess(
    'ffprobe',
    ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', path],
    options.signal ? { signal: options.signal } : {},
  );
  if (out.code !== 0) {
    const reason = clientReason(out.stderr, [path]) || `ffprobe exit code ${out.code ?? 'signal'}`;
    throw new InvalidInputError(`the uploaded file is not audio that can be decoded: ${reason}`, { cause: new Error(`ffprobe: ${out.stderr.trim()}`) });
  }
  let parsed: FfprobeJson;
  try {
    parsed = JSON.parse(out.stdout) as FfprobeJson;
  } catch (err) {
    throw new InvalidInputError('the uploaded file is not audio that can be decoded: ffprobe gave no readable description', { cause: err });
  }
  const streams = parsed.streams ?? [];
  const audioStream = streams.find((s) => s.codec_type === 'audio');
  let audio: AudioStreamInfo | undefined;
  if (audioStream) {
    const streamDuration = positive(audioStream.duration);
    audio = {
      index: audioStream.index ?? 0,
      codec: audioStream.codec_name ?? 'unknown',
      sampleRate: Number(audioStream.sample_rate ?? 0) || 0,
      channels: audioStream.channels ?? 0,
      ...(streamDuration !== undefined ? { durationSeconds: streamDuration } : {}),
    };
  }
  const duration = positive(parsed.format?.duration);
  return {
    container: parsed.format?.format_name ?? 'unknown',
    ...(duration !== undefined ? { durationSeconds: duration } : {}),
    ...(audio ? { audio } : {}),
    streamTypes: streams.map((s) => s.codec_type ?? 'unknown'),
  };
}
