/**
 * Whisper word timestamps by cross-attention alignment, as openai-whisper's timing.py does it: the
 * pre-softmax cross-attention scores of the model's alignment heads, for the teacher-forced sequence
 * [sot, notimestamps, text…, eot], are softmaxed over the audio frames actually spoken, standardised per
 * frame column, median-filtered (width 7) along time and averaged over heads; dynamic time warping of the
 * negated matrix then maps each token to the frame where it starts. 50 audio frames per second.
 */

export const FRAMES_PER_SECOND = 50;
const MEDIAN_WIDTH = 7;

/** scores[head][row][frame] → matrix[row][frame] (rows = query positions after the prompt's first token). */
export function alignmentMatrix(scores: readonly Float32Array[][], frames: number): Float32Array[] {
  const heads = scores.length;
  const rows = scores[0]?.length ?? 0;
  const out = Array.from({ length: rows }, () => new Float32Array(frames));
  for (const head of scores) {
    // Softmax over the spoken frames only, per row.
    const w = head.map((row) => {
      let max = -Infinity;
      for (let f = 0; f < frames; f++) max = Math.max(max, row[f] ?? -Infinity);
      const e = new Float32Array(frames);
      let sum = 0;
      for (let f = 0; f < frames; f++) {
        e[f] = Math.exp((row[f] ?? -Infinity) - max);
        sum += e[f] ?? 0;
      }
      for (let f = 0; f < frames; f++) e[f] = (e[f] ?? 0) / sum;
      return e;
    });
    // Standardise each frame column over the rows (population std).
    for (let f = 0; f < frames; f++) {
      let mean = 0;
      for (const r of w) mean += r[f] ?? 0;
      mean /= rows;
      let v = 0;
      for (const r of w) v += ((r[f] ?? 0) - mean) ** 2;
      const std = Math.sqrt(v / rows) || 1;
      for (const r of w) r[f] = ((r[f] ?? 0) - mean) / std;
    }
    for (const [i, r] of w.entries()) {
      const filtered = medianFilter(r, MEDIAN_WIDTH);
      const o = out[i];
      if (o) for (let f = 0; f < frames; f++) o[f] = (o[f] ?? 0) + (filtered[f] ?? 0) / heads;
    }
  }
  return out;
}

/** Median filter along one row with reflect padding (as scipy's median_filter in whisper). */
export function medianFilter(x: Float32Array, width: number): Float32Array {
  const half = Math.floor(width / 2);
  const n = x.length;
  if (n <= half) return x.slice();
  const out = new Float32Array(n);
  const win = new Float64Array(width);
  for (let i = 0; i < n; i++) {
    for (let k = -half; k <= half; k++) {
      let j = i + k;
      if (j < 0) j = -j - 1;
      if (j >= n) j = 2 * n - j - 1;
      win[k + half] = x[j] ?? 0;
    }
    const sorted = Array.from(win).sort((a, b) => a - b);
    out[i] = sorted[half] ?? 0;
  }
  return out;
}

/** Monotonic alignment minimising the summed cost; returns, per path step, the row and frame indices. */
export function dtw(cost: readonly Float32Array[]): { rows: number[]; frames: number[] } {
  const n = cost.length;
  const m = cost[0]?.length ?? 0;
  const acc = new Float64Array((n + 1) * (m + 1)).fill(Infinity);
  const trace = new Int8Array((n + 1) * (m + 1)).fill(-1);
  const W = m + 1;
  acc[0] = 0;
  for (let j = 1; j <= m; j++) {
    for (let i = 1; i <= n; i++) {
      const c0 = acc[(i - 1) * W + j - 1] ?? Infinity;
      const c1 = acc[(i - 1) * W + j] ?? Infinity;
      const c2 = acc[i * W + j - 1] ?? Infinity;
      let c: number;
      let t: number;
      if (c0 < c1 && c0 < c2) [c, t] = [c0, 0];
      else if (c1 < c0 && c1 < c2) [c, t] = [c1, 1];
      else [c, t] = [c2, 2];
      acc[i * W + j] = (cost[i - 1]?.[j - 1] ?? 0) + c;
      trace[i * W + j] = t;
    }
  }
  // Edges as whisper: first row moves only left, first column only up.
  for (let j = 0; j <= m; j++) trace[j] = 2;
  for (let i = 0; i <= n; i++) trace[i * W] = 1;
  let i = n;
  let j = m;
  const rows: number[] = [];
  const frames: number[] = [];
  while (i > 0 || j > 0) {
    rows.push(i - 1);
    frames.push(j - 1);
    const t = trace[i * W + j];
    if (t === 0) {
      i--;
      j--;
    } else if (t === 1) i--;
    else j--;
  }
  rows.reverse();
  frames.reverse();
  return { rows, frames };
}

export interface AlignedWord<T> {
  readonly word: T;
  /** Seconds from the start of the window. */
  readonly start: number;
  readonly end: number;
}

/**
 * `matrix` has one row per text token plus a final row for end-of-text; `wordTokenCounts` says how many
 * tokens each word has (summing to rows - 1). Returns each word's start and end in seconds.
 */
export function alignWords<T>(matrix: readonly Float32Array[], words: readonly T[], wordTokenCounts: readonly number[]): AlignedWord<T>[] {
  if (matrix.length === 0 || words.length === 0) return [];
  const negated = matrix.map((r) => r.map((v) => -v));
  const path = dtw(negated);
  // The time at which the path first reaches each row.
  const jumpTimes: number[] = [];
  let last = -1;
  path.rows.forEach((r, k) => {
    if (r !== last && r >= 0) {
      jumpTimes[r] = Math.max(0, path.frames[k] ?? 0) / FRAMES_PER_SECOND;
      last = r;
    }
  });
  const out: AlignedWord<T>[] = [];
  let boundary = 0;
  for (const [i, word] of words.entries()) {
    const next = boundary + (wordTokenCounts[i] ?? 0);
    const start = jumpTimes[boundary] ?? 0;
    const end = jumpTimes[next] ?? jumpTimes[jumpTimes.length - 1] ?? start;
    out.push({ word, start, end: Math.max(start, end) });
    boundary = next;
  }
  return out;
}
