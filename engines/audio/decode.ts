/**
 * Decoding any input ffmpeg understands to the pipeline's working format: 16 kHz mono 16-bit PCM WAV, either a
 * downmix of all channels or one chosen channel. The ffmpeg process dies with the task's AbortSignal.
 */
import { InvalidInputError } from '../../core/errors.js';
import { clientReason, scrubPath } from './probe.js';
import { runProcess } from './run-process.js';

/** The sample rate every engine after `prepare` works at. */
export const PIPELINE_SAMPLE_RATE = 16000;

export interface DecodeOptions {
  readonly signal?: AbortSignal;
  /** Take only this channel (from 0) instead of downmixing all channels. */
  readonly channel?: number;
  /** @default PIPELINE_SAMPLE_RATE */
  readonly sampleRate?: number;
  /** Stop after this many seconds of output: a bound on disk use for hostile or endless inputs. */
  readonly maxDurationSeconds?: number;
}

/** ffmpeg arguments for one decode; exported for tests and for the operator's curiosity. */
export function decodeArgs(input: string, output: string, options: DecodeOptions = {}): string[] {
  const rate = options.sampleRate ?? PIPELINE_SAMPLE_RATE;
  const mix = options.channel === undefined ? ['-ac', '1'] : ['-af', `pan=mono|c0=c${options.channel}`];
  const limit = options.maxDurationSeconds === undefined ? [] : ['-t', String(options.maxDurationSeconds)];
  return [
    '-nostdin', '-hide_banner', '-v', 'error', '-i', input,
    '-map', '0:a:0', '-vn', '-sn', '-dn', ...mix, '-ar', String(rate), '-c:a', 'pcm_s16le',
    '-map_metadata', '-1', '-bitexact', ...limit, '-f', 'wav', '-y', output,
  ];
}

/**
 * Decodes `input` to a 16-bit mono PCM WAV at `output`. Throws InvalidInputError when ffmpeg cannot decode the
 * file, CancelledError when the signal fires (ffmpeg is killed), DependencyUnavailableError when ffmpeg is absent.
 * Returns ffmpeg's stderr (warnings about damaged frames), which callers may use to explain a short result.
 */
export async function decodeToWav(input: string, output: string, options: DecodeOptions = {}): Promise<{ warnings: string }> {
  const out = await runProcess('ffmpeg', decodeArgs(input, output, options), options.signal ? { signal: options.signal } : {});
  if (out.code !== 0) {
    const reason = clientReason(out.stderr, [input, output]) || `ffmpeg exit code ${out.code ?? 'signal'}`;
    throw new InvalidInputError(`the uploaded file is not audio that can be decoded: ${reason}`, { cause: new Error(`ffmpeg: ${out.stderr.trim()}`) });
  }
  return { warnings: scrubPath(out.stderr.trim(), input) };
}
