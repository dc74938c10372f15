/**
 * Word error rate with one documented text normalisation, used by the conformance suite and cross-checked
 * against `sctk sclite` (which scores the same normalised text in the benchmark).
 *
 * Normalisation (applied to reference and hypothesis alike):
 *  1. Unicode NFKC, lower case; curly quotes → straight.
 *  2. Spoken forms of the abbreviations read aloud differently than written: mr → mister, mrs → missus,
 *     dr → doctor, st → saint, & → and.
 *  3. Hyphens and dashes join nothing: "cold-hearted" → "cold hearted".
 *  4. Whole numbers 0-999,999 → English words ("10" → "ten", "1,200" → "one thousand two hundred");
 *     a percent sign → "percent".
 *  5. Every character other than a-z, 0-9 and an apostrophe inside a word becomes a space; leading and
 *     trailing apostrophes are dropped; whitespace is collapsed.
 * No spelling variants, contractions or filler words are merged: those count as errors.
 */

const ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

export function numberToWords(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 999_999) return String(n);
  if (n < 20) return ONES[n] ?? String(n);
  if (n < 100) return `${TENS[Math.floor(n / 10)] ?? ''}${n % 10 === 0 ? '' : ` ${ONES[n % 10] ?? ''}`}`;
  if (n < 1000) return `${ONES[Math.floor(n / 100)] ?? ''} hundred${n % 100 === 0 ? '' : ` ${numberToWords(n % 100)}`}`;
  return `${numberToWords(Math.floor(n / 1000))} thousand${n % 1000 === 0 ? '' : ` ${numberToWords(n % 1000)}`}`;
}

const SPOKEN: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bmr\b\.?/g, 'mister'],
  [/\bmrs\b\.?/g, 'missus'],
  [/\bdr\b\.?/g, 'doctor'],
  [/\bst\b\.(?=\s+[a-z])/g, 'saint'],
  [/&/g, ' and '],
  [/%/g, ' percent '],
];

export function normalizeTranscript(text: string): string {
  let t = text.normalize('NFKC').toLowerCase().replace(/[\u2018\u2019\u02bc]/g, "'").replace(/[\u201c\u201d]/g, '"');
  for (const [re, spoken] of SPOKEN) t = t.replace(re, spoken);
  t = t.replace(/[-\u2010-\u2015]/g, ' ');
  t = t.replace(/\d{1,3}(,\d{3})+|\d+/g, (m) => ` ${numberToWords(Number(m.replace(/,/g, '')))} `);
  t = t.replace(/[^a-z0-9']+/g, ' ');
  return t
    .split(' ')
    .map((w) => w.replace(/^'+|'+$/g, ''))
    .filter((w) => w.length > 0)
    .join(' ');
}

export interface WerCounts {
  readonly refWords: number;
  readonly substitutions: number;
  readonly deletions: number;
  readonly insertions: number;
}

export interface WerResult extends WerCounts {
  readonly errors: number;
  /** errors / refWords (0 for an empty reference with an empty hypothesis; Infinity-free: 1 per insertion otherwise). */
  readonly wer: number;
}

/**
 * Unit-cost minimum edit alignment of normalised words (ties prefer substitution). sclite weights
 * substitutions 4 and insertions/deletions 3, which gives the same totals on ordinary hypotheses (checked in
 * the tests and conformance suite) but may count a few more errors on very poor ones.
 */
export function wordErrors(reference: string, hypothesis: string): WerResult {
  const r = normalizeTranscript(reference).split(' ').filter((w) => w.length > 0);
  const h = normalizeTranscript(hypothesis).split(' ').filter((w) => w.length > 0);
  const cols = h.length + 1;
  const cost = new Int32Array((r.length + 1) * cols);
  for (let i = 0; i <= r.length; i++) cost[i * cols] = i;
  for (let j = 0; j <= h.length; j++) cost[j] = j;
  for (let i = 1; i <= r.length; i++) {
    for (let j = 1; j <= h.length; j++) {
      const sub = (cost[(i - 1) * cols + j - 1] ?? 0) + (r[i - 1] === h[j - 1] ? 0 : 1);
      const del = (cost[(i - 1) * cols + j] ?? 0) + 1;
      const ins = (cost[i * cols + j - 1] ?? 0) + 1;
      cost[i * cols + j] = Math.min(sub, del, ins);
    }
  }
  let i = r.length;
  let j = h.length;
  let s = 0;
  let d = 0;
  let n = 0;
  while (i > 0 || j > 0) {
    const here = cost[i * cols + j] ?? 0;
    if (i > 0 && j > 0 && here === (cost[(i - 1) * cols + j - 1] ?? 0) + (r[i - 1] === h[j - 1] ? 0 : 1)) {
      if (r[i - 1] !== h[j - 1]) s++;
      i--;
      j--;
    } else if (i > 0 && here === (cost[(i - 1) * cols + j] ?? 0) + 1) {
      d++;
      i--;
    } else {
      n++;
      j--;
    }
  }
  return summarize({ refWords: r.length, substitutions: s, deletions: d, insertions: n });
}

export function summarize(c: WerCounts): WerResult {
  const errors = c.substitutions + c.deletions + c.insertions;
  return { ...c, errors, wer: c.refWords === 0 ? (errors === 0 ? 0 : 1) : errors / c.refWords };
}

/** Corpus WER: errors summed over utterances divided by reference words summed (not a mean of ratios). */
export function corpusWer(results: readonly WerCounts[]): WerResult {
  return summarize(results.reduce<WerCounts>((a, x) => ({
    refWords: a.refWords + x.refWords,
    substitutions: a.substitutions + x.substitutions,
    deletions: a.deletions + x.deletions,
    insertions: a.insertions + x.insertions,
  }), { refWords: 0, substitutions: 0, deletions: 0, insertions: 0 }));
}
