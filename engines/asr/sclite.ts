/**
 * Scores hypotheses with NIST `sctk sclite` (Debian sctk): writes reference and hypothesis trn files of the
 * normalised text and parses the Sum/Avg line of the summary. The independent check of wer.ts, and the
 * scorer of the benchmark.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { normalizeTranscript } from './wer.js';

const run = promisify(execFile);

export interface ScoredUtterance {
  readonly id: string;
  readonly reference: string;
  readonly hypothesis: string;
}

export interface ScliteSummary {
  readonly sentences: number;
  readonly words: number;
  /** Percentages as sclite prints them (one decimal). */
  readonly correct: number;
  readonly substitutions: number;
  readonly deletions: number;
  readonly insertions: number;
  readonly wer: number;
  readonly sentenceErrors: number;
}

function trn(utts: readonly ScoredUtterance[], pick: (u: ScoredUtterance) => string): string {
  // rm-style ids "(speaker_utterance)": one speaker per utterance keeps sclite from merging them.
  return utts.map((u, i) => `${normalizeTranscript(pick(u))} (u${String(i).padStart(4, '0')}_${u.id.replace(/[^A-Za-z0-9]/g, '')})\n`).join('');
}

export async function scoreWithSclite(utts: readonly ScoredUtterance[]): Promise<ScliteSummary> {
  const dir = await mkdtemp(join(tmpdir(), 'dalston-sclite-'));
  try {
    await writeFile(join(dir, 'ref.trn'), trn(utts, (u) => u.reference));
    await writeFile(join(dir, 'hyp.trn'), trn(utts, (u) => u.hypothesis));
    const { stdout } = await run('sctk', ['sclite', '-r', join(dir, 'ref.trn'), 'trn', '-h', join(dir, 'hyp.trn'), 'trn', '-i', 'rm', '-o', 'sum', 'stdout'], { maxBuffer: 16 * 1024 * 1024 });
    const line = stdout.split('\n').find((l) => l.includes('Sum/Avg'));
    if (line === undefined) throw new Error(`sclite printed no Sum/Avg line:\n${stdout.slice(0, 2000)}`);
    const nums = (line.match(/-?\d+(\.\d+)?/g) ?? []).map(Number);
    const [sentences, words, correct, substitutions, deletions, insertions, wer, sentenceErrors] = nums;
    if (sentenceErrors === undefined || sentences === undefined || words === undefined || correct === undefined || substitutions === undefined || deletions === undefined || insertions === undefined || wer === undefined) {
      throw new Error(`unexpected sclite Sum/Avg line: ${line}`);
    }
    return { sentences, words, correct, substitutions, deletions, insertions, wer, sentenceErrors };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
