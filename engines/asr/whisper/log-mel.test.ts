import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MixedRadixFft } from './fft.js';
import { N_FRAMES, N_MELS, logMelSpectrogram, melFilters } from './log-mel.js';

void test('the mixed-radix FFT equals the direct DFT for n = 400', () => {
  const n = 400;
  const x = Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) + 0.5 * Math.cos(i * 1.91) + ((i * 7919) % 13) / 13);
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  new MixedRadixFft(n).transformReal(x, re, im);
  for (const k of [0, 1, 7, 50, 123, 200, 399]) {
    let dr = 0;
    let di = 0;
    for (let t = 0; t < n; t++) {
      dr += (x[t] ?? 0) * Math.cos((2 * Math.PI * k * t) / n);
      di -= (x[t] ?? 0) * Math.sin((2 * Math.PI * k * t) / n);
    }
    assert.ok(Math.abs((re[k] ?? 0) - dr) < 1e-9 && Math.abs((im[k] ?? 0) - di) < 1e-9, `bin ${k}`);
  }
});

void test('Slaney mel filters: 80 triangles over 201 bins, rising in centre frequency', () => {
  const f = melFilters();
  assert.equal(f.length, 80);
  const peaks = f.map((row) => row.indexOf(Math.max(...row)));
  for (let i = 1; i < peaks.length; i++) assert.ok((peaks[i] ?? 0) >= (peaks[i - 1] ?? 0));
  // Slaney normalisation: each filter's area is about 2 / bandwidth, so low filters are taller.
  assert.ok(Math.max(...(f[0] ?? [])) > Math.max(...(f[79] ?? [])));
});

void test('a 1 kHz tone lights the mel band around 1 kHz; features are in Whisper\'s range', () => {
  const audio = new Float32Array(16000);
  for (let i = 0; i < audio.length; i++) audio[i] = 0.5 * Math.sin((2 * Math.PI * 1000 * i) / 16000);
  const mel = logMelSpectrogram(audio);
  assert.equal(mel.length, N_MELS * N_FRAMES);
  const frame = 50;
  let best = 0;
  for (let m = 0; m < N_MELS; m++) if ((mel[m * N_FRAMES + frame] ?? 0) > (mel[best * N_FRAMES + frame] ?? 0)) best = m;
  // 1 kHz is mel 15 on the Slaney scale; with 80 bands up to 8 kHz (45.2 mel) that is band ~25.
  assert.ok(best >= 23 && best <= 28, `peak band ${best}`);
  const max = mel.reduce((a, b) => Math.max(a, b), -Infinity);
  const min = mel.reduce((a, b) => Math.min(a, b), Infinity);
  assert.ok(max - min <= 2 + 1e-6, 'clamped to 8 decades below the peak, scaled by 1/4');
});
