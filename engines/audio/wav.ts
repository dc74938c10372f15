/**
 * Reading and writing RIFF/WAVE files of 16-bit PCM, the format every engine after `prepare` works on. The
 * parser walks the chunks (ffmpeg may add LIST chunks) and accepts the 0xFFFFFFFF sizes a streamed ffmpeg writes.
 */
import { open, readFile, writeFile } from 'node:fs/promises';
import { InvalidInputError } from '../../core/errors.js';

export interface WavFormat {
  readonly sampleRate: number;
  readonly channels: number;
  readonly bitsPerSample: number;
  /** 1 = PCM integer, 3 = IEEE float (WAVE_FORMAT_EXTENSIBLE is resolved to its sub-format). */
  readonly audioFormat: number;
  /** Byte offset of the sample data. */
  readonly dataOffset: number;
  /** Bytes of sample data actually present in the file. */
  readonly dataBytes: number;
}

export interface WavAudio {
  readonly sampleRate: number;
  readonly channels: number;
  /** Interleaved samples in [-1, 1). */
  readonly samples: Float32Array;
  readonly durationSeconds: number;
}

const PCM = 1;
const IEEE_FLOAT = 3;
const EXTENSIBLE = 0xfffe;

function notWav(name: string, why: string): InvalidInputError {
  return new InvalidInputError(`${name} is not a readable WAV file: ${why}`);
}

/** Parses the header of a WAV held in `buf` (the whole file, or at least its header) of total size `fileBytes`. */
export function parseWavHeader(buf: Buffer, fileBytes: number, name = 'audio'): WavFormat {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw notWav(name, 'no RIFF/WAVE header');
  }
  let pos = 12;
  let fmt: Omit<WavFormat, 'dataOffset' | 'dataBytes'> | undefined;
  while (pos + 8 <= buf.length) {
    const id = buf.toString('ascii', pos, pos + 4);
    const size = buf.readUInt32LE(pos + 4);
    const body = pos + 8;
    if (id === 'fmt ') {
      if (body + 16 > buf.length) throw notWav(name, 'short fmt chunk');
      let audioFormat = buf.readUInt16LE(body);
      if (audioFormat === EXTENSIBLE && size >= 40 && body + 26 <= buf.length) audioFormat = buf.readUInt16LE(body + 24);
      fmt = {
        audioFormat,
        channels: buf.readUInt16LE(body + 2),
        sampleRate: buf.readUInt32LE(body + 4),
        bitsPerSample: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!fmt) throw notWav(name, 'data chunk before fmt chunk');
      const present = Math.max(0, fileBytes - body);
      const dataBytes = size === 0xffffffff || size > present ? present : size;
      return { ...fmt, dataOffset: body, dataBytes };
    }
    pos = body + size + (size % 2);
  }
  throw notWav(name, 'no data chunk');
}

/** Reads only the header of a WAV file (first 64 KiB). */
export async function readWavFormat(path: string): Promise<WavFormat> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const buf = Buffer.alloc(Math.min(size, 65536));
    await fh.read(buf, 0, buf.length, 0);
    return parseWavHeader(buf, size, 'audio');
  } finally {
    await fh.close();
  }
}

/** True when the file is the pipeline's working format: PCM 16-bit mono at `sampleRate`. */
export async function isPcm16Mono(path: string, sampleRate: number): Promise<boolean> {
  try {
    const f = await readWavFormat(path);
    return f.audioFormat === PCM && f.bitsPerSample === 16 && f.channels === 1 && f.sampleRate === sampleRate;
  } catch {
    return false;
  }
}

/** Decodes a WAV held in memory into interleaved float samples (16-bit PCM, 32-bit PCM or 32-bit float). */
export function decodeWav(buf: Buffer, name = 'audio'): WavAudio {
  const f = parseWavHeader(buf, buf.length, name);
  const bytesPerSample = f.bitsPerSample / 8;
  const frameBytes = bytesPerSample * f.channels;
  if (f.channels < 1 || f.sampleRate < 1) throw notWav(name, `invalid layout (${f.channels} channels at ${f.sampleRate} Hz)`);
  const count = Math.floor(f.dataBytes / frameBytes) * f.channels;
  const samples = new Float32Array(count);
  const base = f.dataOffset;
  if (f.audioFormat === PCM && f.bitsPerSample === 16) {
    for (let i = 0; i < count; i++) samples[i] = buf.readInt16LE(base + 2 * i) / 32768;
  } else if (f.audioFormat === PCM && f.bitsPerSample === 32) {
    for (let i = 0; i < count; i++) samples[i] = buf.readInt32LE(base + 4 * i) / 2147483648;
  } else if (f.audioFormat === IEEE_FLOAT && f.bitsPerSample === 32) {
    for (let i = 0; i < count; i++) samples[i] = buf.readFloatLE(base + 4 * i);
  } else {
    throw notWav(name, `unsupported sample format ${f.audioFormat}/${f.bitsPerSample}-bit`);
  }
  return { sampleRate: f.sampleRate, channels: f.channels, samples, durationSeconds: count / f.channels / f.sampleRate };
}

/** Reads a WAV file into interleaved float samples. */
export async function readWav(path: string): Promise<WavAudio> {
  return decodeWav(await readFile(path), 'audio');
}

/**
 * Samples [from, to) of a 16-bit PCM mono WAV file, read from disk without loading the rest: a part of a long file
 * costs memory for that part only. Bounds are clamped to the file.
 */
export async function readPcm16MonoRange(path: string, from: number, to: number): Promise<Float32Array> {
  const f = await readWavFormat(path);
  if (f.audioFormat !== PCM || f.bitsPerSample !== 16 || f.channels !== 1) throw notWav('audio', 'a range read needs 16-bit PCM mono');
  const total = Math.floor(f.dataBytes / 2);
  const a = Math.max(0, Math.min(total, Math.floor(from)));
  const b = Math.max(a, Math.min(total, Math.floor(to)));
  const buf = Buffer.alloc((b - a) * 2);
  const fh = await open(path, 'r');
  try {
    let read = 0;
    while (read < buf.length) {
      const { bytesRead } = await fh.read(buf, read, buf.length - read, f.dataOffset + a * 2 + read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
  } finally {
    await fh.close();
  }
  const samples = new Float32Array(b - a);
  for (let i = 0; i < samples.length; i++) samples[i] = buf.readInt16LE(2 * i) / 32768;
  return samples;
}

/** Encodes mono float samples in [-1, 1] as a 16-bit PCM WAV (values outside are clipped). */
export function encodeWav(samples: Float32Array, sampleRate: number): Buffer {
  const dataBytes = samples.length * 2;
  const buf = Buffer.alloc(44 + dataBytes);
  buf.write('RIFF', 0, 'ascii');
  buf.writeUInt32LE(36 + dataBytes, 4);
  buf.write('WAVE', 8, 'ascii');
  buf.write('fmt ', 12, 'ascii');
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(PCM, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(sampleRate, 24);
  buf.writeUInt32LE(sampleRate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36, 'ascii');
  buf.writeUInt32LE(dataBytes, 40);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i] ?? 0));
    buf.writeInt16LE(Math.round(s < 0 ? s * 32768 : s * 32767), 44 + 2 * i);
  }
  return buf;
}

/** Writes mono float samples as a 16-bit PCM WAV file. */
export async function writeWav(path: string, samples: Float32Array, sampleRate: number): Promise<void> {
  await writeFile(path, encodeWav(samples, sampleRate));
}
