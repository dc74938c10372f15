import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { IllegalStateError, InvalidInputError } from '../../core/errors.js';
import { AudioInputDecoder, compileAudioInputFormat, decodeToMono, STREAM_SAMPLE_RATE } from './audio-input.js';
import { StreamingResampler } from './resampler.js';
import { concatSamples } from '../audio/index.js';

const run = promisify(execFile);

function sine(freq: number, rate: number, seconds: number, amplitude = 0.5): Float32Array {
  const out = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = amplitude * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

/** Deterministic pseudo-random generator so a failing chunking can be replayed. */
function lcg(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

function rms(x: Float32Array, from = 0, to = x.length): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += (x[i] ?? 0) ** 2;
  return Math.sqrt(sum / Math.max(1, to - from));
}

function resampleWhole(input: Float32Array, rate: number): Float32Array {
  const r = new StreamingResampler(rate, STREAM_SAMPLE_RATE);
  return concatSamples([r.push(input), r.flush()]);
}

void test('random chunk sizes give the same output as one whole push, at every supported kind of rate', () => {
  for (const rate of [8000, 11025, 22050, 32000, 44100, 48000, 47999]) {
    const rand = lcg(rate);
    const signal = new Float32Array(rate); // one second of noise plus a tone: every frequency is exercised
    for (let i = 0; i < signal.length; i++) signal[i] = 0.3 * (rand() - 0.5) + 0.3 * Math.sin((2 * Math.PI * 440 * i) / rate);
    const whole = resampleWhole(signal, rate);
    const r = new StreamingResampler(rate, STREAM_SAMPLE_RATE);
    const parts: Float32Array[] = [];
    for (let at = 0; at < signal.length; ) {
      const n = Math.min(signal.length - at, Math.floor(rand() * 700)); // includes empty chunks
      parts.push(r.push(signal.subarray(at, at + n)));
      at += n;
    }
    parts.push(r.flush());
    const chunked = concatSamples(parts);
    assert.equal(chunked.length, whole.length, `rate ${rate}`);
    assert.equal(whole.length, Math.floor(((signal.length - 1) * STREAM_SAMPLE_RATE) / rate) + 1, `rate ${rate}: output length`);
    let maxDiff = 0;
    for (let i = 0; i < whole.length; i++) maxDiff = Math.max(maxDiff, Math.abs((whole[i] ?? 0) - (chunked[i] ?? 0)));
    assert.ok(maxDiff <= 1e-4, `rate ${rate}: max difference ${maxDiff}`);
    assert.ok(r.bufferedSamples < 2000, `rate ${rate}: resampler holds ${r.bufferedSamples} samples after flush`);
  }
});

void test('a 1 kHz tone keeps its amplitude and phase; the time base is not shifted', () => {
  for (const rate of [8000, 22050, 44100, 48000]) {
    const out = resampleWhole(sine(1000, rate, 1), rate);
    const expected = sine(1000, STREAM_SAMPLE_RATE, 1);
    let maxErr = 0;
    // Away from the edges, where the kernel sees the signal start and stop.
    for (let i = 200; i < out.length - 200; i++) maxErr = Math.max(maxErr, Math.abs((out[i] ?? 0) - (expected[i] ?? 0)));
    assert.ok(maxErr < 5e-3, `rate ${rate}: max error ${maxErr}`);
  }
});

void test('content above the new Nyquist frequency is filtered out instead of aliasing', () => {
  // 11 kHz at 48 kHz would fold to 5 kHz at 16 kHz without a low-pass.
  const out = resampleWhole(sine(11000, 48000, 1), 48000);
  const level = rms(out, 200, out.length - 200) / (0.5 / Math.SQRT2);
  assert.ok(level < 1e-3, `aliased energy ${(20 * Math.log10(level)).toFixed(1)} dB`);
  // And a tone in the pass-band survives a downsample from 44.1 kHz.
  const pass = resampleWhole(sine(3000, 44100, 1), 44100);
  const passLevel = rms(pass, 200, pass.length - 200) / (0.5 / Math.SQRT2);
  assert.ok(Math.abs(passLevel - 1) < 0.01, `pass-band gain ${passLevel}`);
});

void test('16 kHz input passes through unchanged', () => {
  const signal = sine(300, 16000, 0.1);
  const d = new AudioInputDecoder({ encoding: 'pcm_s16le', sampleRate: 16000 });
  const bytes = Buffer.alloc(signal.length * 2);
  signal.forEach((s, i) => bytes.writeInt16LE(Math.round(s * 32767), i * 2));
  const out = d.decode(bytes);
  assert.equal(out.length, signal.length);
  for (let i = 0; i < out.length; i++) assert.equal(out[i], bytes.readInt16LE(i * 2) / 32768);
  assert.equal(d.flush().length, 0);
});

void test('interleaved stereo is averaged to mono', () => {
  const fmt = compileAudioInputFormat({ encoding: 'pcm_s16le', sampleRate: 16000, channels: 2 });
  const bytes = Buffer.alloc(8);
  bytes.writeInt16LE(1000, 0);
  bytes.writeInt16LE(3000, 2);
  bytes.writeInt16LE(-32768, 4);
  bytes.writeInt16LE(0, 6);
  assert.deepEqual([...decodeToMono(bytes, fmt)], [2000 / 32768, -0.5]);
});

void test('G.711 μ-law and A-law decode exactly as sox decodes them', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dalston-g711-'));
  try {
    // Every byte value once: the whole table is compared, not just a tone's.
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    for (const [encoding, soxType] of [['mulaw', 'ul'], ['alaw', 'al']] as const) {
      const input = join(dir, `all.${soxType}`);
      const output = join(dir, `all-${soxType}.s16`);
      await writeFile(input, all);
      await run('sox', ['-t', soxType, '-r', '8000', '-c', '1', input, '-t', 's16', '-e', 'signed-integer', '-b', '16', '-L', output]);
      const ref = await readFile(output);
      const fmt = compileAudioInputFormat({ encoding, sampleRate: 8000 });
      const ours = decodeToMono(all, fmt);
      assert.equal(ours.length, 256);
      for (let b = 0; b < 256; b++) assert.equal(Math.round((ours[b] ?? 0) * 32768), ref.readInt16LE(b * 2), `${encoding} byte 0x${b.toString(16)}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('8 kHz μ-law speech-band tone comes out at 16 kHz with its level', () => {
  const d = new AudioInputDecoder({ encoding: 'mulaw', sampleRate: 8000 });
  // Encode a tone with the decoder's own table inverted (nearest code), enough to check the path end to end.
  const tone = sine(500, 8000, 0.5, 0.3);
  const fmt = compileAudioInputFormat({ encoding: 'mulaw', sampleRate: 8000 });
  const codes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const levels = decodeToMono(codes, fmt);
  const bytes = Buffer.from(tone.map((s) => {
    let best = 0;
    for (let c = 1; c < 256; c++) if (Math.abs((levels[c] ?? 0) - s) < Math.abs((levels[best] ?? 0) - s)) best = c;
    return best;
  }));
  const out = concatSamples([d.decode(bytes.subarray(0, 1001)), d.decode(bytes.subarray(1001)), d.flush()]);
  assert.equal(out.length, Math.floor(((tone.length - 1) * 16000) / 8000) + 1);
  const level = rms(out, 200, out.length - 200) / (0.3 / Math.SQRT2);
  assert.ok(Math.abs(level - 1) < 0.03, `level ${level}`);
});

void test('bad formats and chunks are refused with InvalidInputError naming the problem', () => {
  const cases: [() => unknown, RegExp][] = [
    [() => new AudioInputDecoder({ encoding: 'pcm_s16le', sampleRate: 16000 }).decode(new Uint8Array(3)), /3 bytes.*pcm_s16le.*2 bytes each/],
    [() => new AudioInputDecoder({ encoding: 'pcm_s16le', sampleRate: 16000, channels: 2 }).decode(new Uint8Array(6)), /6 bytes.*stereo.*4 bytes each/],
    [() => new AudioInputDecoder({ encoding: 'mulaw', sampleRate: 8000, channels: 2 }).decode(new Uint8Array(5)), /5 bytes.*mulaw/],
    [() => new AudioInputDecoder({ encoding: 'pcm_s16le', sampleRate: 7999 }), /7999 Hz.*pcm_s16le/],
    [() => new AudioInputDecoder({ encoding: 'pcm_s16le', sampleRate: 96000 }), /96000 Hz/],
    [() => new AudioInputDecoder({ encoding: 'pcm_s16le', sampleRate: 16000.5 }), /16000.5 Hz/],
    [() => new AudioInputDecoder({ encoding: 'mulaw', sampleRate: 16000 }), /16000 Hz for mulaw/],
    [() => new AudioInputDecoder({ encoding: 'opus' as 'mulaw', sampleRate: 48000 }), /encoding "opus"/],
    [() => new AudioInputDecoder({ encoding: 'alaw', sampleRate: 8000, channels: 6 }), /channel count 6/],
  ];
  for (const [fn, message] of cases) {
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof InvalidInputError, String(err));
      assert.equal(err.code, 'DALSTON_ERR_INVALID_INPUT');
      assert.equal(err.retryable, false);
      assert.match(err.message, message);
      return true;
    });
  }
});

void test('the resampler refuses input after flush (end of stream)', () => {
  const r = new StreamingResampler(8000, STREAM_SAMPLE_RATE);
  r.push(sine(100, 8000, 0.1));
  r.flush();
  assert.throws(() => r.push(new Float32Array(8)), IllegalStateError);
  assert.throws(() => r.flush(), IllegalStateError);
});
