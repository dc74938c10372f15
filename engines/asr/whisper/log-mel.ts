/**
 * Whisper's audio front end, as openai-whisper computes it: the window is padded/trimmed to 30 s, a 400-point
 * STFT (periodic Hann, hop 160, centred with reflect padding) gives power spectra, 80 Slaney-normalised mel
 * filters (librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)), then log10, clamped to 8 below the peak, and
 * scaled (x + 4) / 4. Output is [80, 3000] row-major. Frames past the audio are all-zero and skipped.
 */
import { MixedRadixFft } from './fft.js';

export const N_FFT = 400;
export const HOP = 160;
export const N_MELS = 80;
export const WINDOW_SAMPLES = 480_000;
export const N_FRAMES = 3000;
const N_BINS = N_FFT / 2 + 1;
const SAMPLE_RATE = 16000;

function hzToMel(f: number): number {
  const fSp = 200 / 3;
  const minLogHz = 1000;
  const minLogMel = minLogHz / fSp;
  const logstep = Math.log(6.4) / 27;
  return f >= minLogHz ? minLogMel + Math.log(f / minLogHz) / logstep : f / fSp;
}

function melToHz(m: number): number {
  const fSp = 200 / 3;
  const minLogHz = 1000;
  const minLogMel = minLogHz / fSp;
  const logstep = Math.log(6.4) / 27;
  return m >= minLogMel ? minLogHz * Math.exp(logstep * (m - minLogMel)) : fSp * m;
}

/** librosa.filters.mel with Slaney scale and Slaney area normalisation: [nMels][N_BINS]. */
export function melFilters(nMels = N_MELS): Float32Array[] {
  const fft = Array.from({ length: N_BINS }, (_, i) => (i * SAMPLE_RATE) / N_FFT);
  const maxMel = hzToMel(SAMPLE_RATE / 2);
  const melF = Array.from({ length: nMels + 2 }, (_, i) => melToHz((i * maxMel) / (nMels + 1)));
  const filters: Float32Array[] = [];
  for (let i = 0; i < nMels; i++) {
    const lo = melF[i] ?? 0;
    const mid = melF[i + 1] ?? 0;
    const hi = melF[i + 2] ?? 0;
    const enorm = 2 / (hi - lo);
    const row = new Float32Array(N_BINS);
    for (let k = 0; k < N_BINS; k++) {
      const f = fft[k] ?? 0;
      const lower = (f - lo) / (mid - lo);
      const upper = (hi - f) / (hi - mid);
      row[k] = Math.max(0, Math.min(lower, upper)) * enorm;
    }
    filters.push(row);
  }
  return filters;
}

/** A filter's non-zero bins only: the triangles are narrow, so this is most of the mel cost saved. */
interface SparseFilter {
  readonly from: number;
  readonly weights: Float32Array;
}

let tables: { fft: MixedRadixFft; window: Float64Array; filters: SparseFilter[] } | undefined;

function sparse(row: Float32Array): SparseFilter {
  let from = row.findIndex((v) => v > 0);
  if (from < 0) from = 0;
  let to = row.length;
  while (to > from && (row[to - 1] ?? 0) <= 0) to--;
  return { from, weights: row.slice(from, to) };
}

function getTables(): NonNullable<typeof tables> {
  if (tables) return tables;
  const window = new Float64Array(N_FFT);
  for (let n = 0; n < N_FFT; n++) window[n] = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / N_FFT);
  tables = { fft: new MixedRadixFft(N_FFT), window, filters: melFilters().map(sparse) };
  return tables;
}

/** Log-mel features [N_MELS * N_FRAMES] of up to 30 s of 16 kHz audio. */
export function logMelSpectrogram(audio: Float32Array): Float32Array {
  const { fft, window, filters } = getTables();
  const re = new Float64Array(N_FFT);
  const im = new Float64Array(N_FFT);
  const x = new Float32Array(WINDOW_SAMPLES);
  x.set(audio.subarray(0, WINDOW_SAMPLES));
  const pad = N_FFT / 2;
  // Reflect padding as torch.stft(center=True): x[-i] = x[i].
  const at = (i: number): number => {
    if (i < 0) return x[-i] ?? 0;
    if (i >= WINDOW_SAMPLES) return x[2 * (WINDOW_SAMPLES - 1) - i] ?? 0;
    return x[i] ?? 0;
  };
  const mel = new Float32Array(N_MELS * N_FRAMES);
  const frame = new Float64Array(N_FFT);
  const power = new Float64Array(N_BINS);
  const liveFrames = Math.min(N_FRAMES, Math.ceil((Math.min(audio.length, WINDOW_SAMPLES) + pad) / HOP) + 1);
  let maxLog = -Infinity;
  for (let t = 0; t < N_FRAMES; t++) {
    if (t < liveFrames) {
      const start = t * HOP - pad;
      for (let n = 0; n < N_FFT; n++) frame[n] = at(start + n) * (window[n] ?? 0);
      fft.transformReal(frame, re, im);
      for (let k = 0; k < N_BINS; k++) power[k] = (re[k] ?? 0) ** 2 + (im[k] ?? 0) ** 2;
    }
    for (let m = 0; m < N_MELS; m++) {
      const f = filters[m];
      let s = 0;
      if (f && t < liveFrames) for (let k = 0; k < f.weights.length; k++) s += (f.weights[k] ?? 0) * (power[f.from + k] ?? 0);
      const v = Math.log10(Math.max(s, 1e-10));
      mel[m * N_FRAMES + t] = v;
      if (v > maxLog) maxLog = v;
    }
  }
  const floor = maxLog - 8;
  for (let i = 0; i < mel.length; i++) mel[i] = (Math.max(mel[i] ?? 0, floor) + 4) / 4;
  return mel;
}
