/**
 * ASR accuracy and speed benchmark (not a test): `node dist/load-tests/asr/asr-bench.js [--engines a,b] [--quick]
 * [--window-target S --window-max S --window-gap S]` (the window flags override every model's decode-window packing).
 *
 * For every installed recogniser (catalogue ∩ implemented), in a fresh child process per engine so load time
 * and peak memory are its own: WER scored by `sctk sclite` after wer.ts's normalisation on
 *   (a) pocketsphinx-testdata LibriVox (5 utterances) and cards (5 commands),
 *   (b) espeak-ng sentences in several voices and speeds, clean and with pink noise mixed by sox at 10 dB SNR;
 *   (c) twelve espeak-ng passages: four sentences with 1.2–3.5 s pauses between them (about 25 s), clean and at 10 dB,
 *       where the way decode windows are packed across pauses shows;
 * real-time factor (processing seconds / audio seconds, model already loaded), model load time, peak RSS.
 * Prints a table and writes JSON (with every hypothesis) under load-tests/results/.
 *
 * WER%(ts) is wer.ts on the same text: a unit-cost minimum edit distance. sclite aligns with weighted costs
 * (substitution 4, insertion/deletion 3), so on very poor hypotheses it can count a few more errors.
 * Peak RSS is the worker process's; recognisers that run child processes (pocketsphinx) do not include them.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { loadConfig } from '../../core/config.js';
import { findModel } from '../../engines/models/catalogue.js';
import { availableRecognizerIds, createRecognizer } from '../../engines/asr/recognizers.js';
import type { WindowOptions } from '../../engines/asr/windows.js';
import { SAMPLE_RATE } from '../../engines/asr/recognizer.js';
import { scoreWithSclite, type ScliteSummary } from '../../engines/asr/sclite.js';
import { corpusWer, wordErrors } from '../../engines/asr/wer.js';
import { ESPEAK_SENTENCES, TESTDATA, parseSphinxTranscription, passageFile, synthesizeFile, withNoiseFile } from '../../harness/speech-fixtures.js';
import { readWav } from '../../harness/wav.js';

const run = promisify(execFile);

interface Utterance {
  readonly set: string;
  readonly id: string;
  readonly path: string;
  readonly reference: string;
}

interface WorkerOutput {
  readonly engine: string;
  readonly loadSeconds: number;
  readonly peakRssMb: number;
  readonly results: readonly { readonly set: string; readonly id: string; readonly hypothesis: string; readonly seconds: number; readonly audioSeconds: number }[];
}

interface SetReport {
  readonly set: string;
  /** Per utterance, for looking at the errors behind a figure. */
  readonly hypotheses: readonly { readonly id: string; readonly reference: string; readonly hypothesis: string }[];
  readonly utterances: number;
  readonly audioSeconds: number;
  readonly sclite: ScliteSummary;
  /** wer.ts on the same text, as a check of the scorer (percent). */
  readonly werTs: number;
  readonly rtf: number;
}

const VOICES = ['en-us', 'en-gb-x-rp', 'en-us+f3'];
const SPEEDS = [130, 175, 220];
const SNR_DB = 10;

async function sphinxUtterances(set: string, dir: string, transcription: string): Promise<Utterance[]> {
  const refs = parseSphinxTranscription(await readFile(join(dir, transcription), 'utf8'));
  return [...refs].map(([id, reference]) => ({ set, id, path: join(dir, `${id}.wav`), reference }));
}

async function buildCorpus(quick: boolean): Promise<Utterance[]> {
  const out: Utterance[] = [
    ...(await sphinxUtterances('librivox', join(TESTDATA, 'librivox'), 'transcription')),
    ...(await sphinxUtterances('cards', join(TESTDATA, 'cards'), 'cards.transcription')),
  ];
  const voices = quick ? VOICES.slice(0, 1) : VOICES;
  const speeds = quick ? SPEEDS.slice(1, 2) : SPEEDS;
  for (const voice of voices) {
    for (const speed of speeds) {
      for (const [i, text] of ESPEAK_SENTENCES.entries()) {
        // Half a second of silence around each sentence, as a recording would have.
        const clean = await synthesizeFile(text, { voice, speed, padBefore: 0.5, padAfter: 0.5 });
        out.push({ set: 'espeak-clean', id: `${voice}-${speed}-${i}`, path: clean, reference: text });
        out.push({ set: `espeak-noise-${SNR_DB}dB`, id: `${voice}-${speed}-${i}`, path: await withNoiseFile(clean, SNR_DB), reference: text });
      }
    }
  }
  // Twelve passages of four sentences each: every voice at every speed (and three more), pauses of 1.2 to 3.5 s.
  for (let p = 0; p < 12; p++) {
    const sentences = [0, 1, 2, 3].map((k) => ESPEAK_SENTENCES[(p + k) % ESPEAK_SENTENCES.length] ?? '');
    const pauses = p % 2 === 0 ? [1.5, 2.5, 3.5] : [3, 1.2, 2];
    const voice = VOICES[p % VOICES.length] ?? 'en-us';
    const speed = SPEEDS[Math.floor(p / VOICES.length) % SPEEDS.length] ?? 175;
    const clean = await passageFile(sentences, pauses, { voice, speed });
    const reference = sentences.join(' ');
    out.push({ set: 'passage-clean', id: `passage-${p}`, path: clean, reference });
    out.push({ set: `passage-noise-${SNR_DB}dB`, id: `passage-${p}`, path: await withNoiseFile(clean, SNR_DB), reference });
  }
  return out;
}

/** Child-process mode: load one engine, transcribe the manifest, print JSON. */
async function worker(engine: string, manifestPath: string, windows: WindowOptions | undefined): Promise<void> {
  const corpus = JSON.parse(await readFile(manifestPath, 'utf8')) as Utterance[];
  const config = loadConfig();
  // DALSTON_ONNX_THREADS as the engines read it, so a run measures the setting a deployment would use.
  const r = await createRecognizer(engine, { homeDir: config.homeDir, threads: config.onnxThreads, ...(windows ? { windows } : {}) });
  const t0 = performance.now();
  await r.load();
  const loadSeconds = (performance.now() - t0) / 1000;
  const results: WorkerOutput['results'][number][] = [];
  for (const u of corpus) {
    const wav = await readWav(u.path);
    if (wav.sampleRate !== SAMPLE_RATE) throw new Error(`${u.path}: ${wav.sampleRate} Hz`);
    const t = performance.now();
    const res = await r.recognize({ audio: wav.samples });
    results.push({ set: u.set, id: u.id, hypothesis: res.text, seconds: (performance.now() - t) / 1000, audioSeconds: wav.samples.length / SAMPLE_RATE });
  }
  await r.close();
  const out: WorkerOutput = { engine, loadSeconds, peakRssMb: process.resourceUsage().maxRSS / 1024, results };
  process.stdout.write(JSON.stringify(out));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      worker: { type: 'string' }, manifest: { type: 'string' }, engines: { type: 'string' }, quick: { type: 'boolean' },
      'window-target': { type: 'string' }, 'window-max': { type: 'string' }, 'window-gap': { type: 'string' },
    },
  });
  const seconds = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!(n > 0)) throw new Error(`--${name} must be a positive number of seconds`);
    return n;
  };
  const target = seconds(values['window-target'], 'window-target');
  const max = seconds(values['window-max'], 'window-max');
  const gap = seconds(values['window-gap'], 'window-gap');
  const windows: WindowOptions | undefined = target ?? max ?? gap
    ? { ...(target !== undefined ? { targetSeconds: target } : {}), ...(max !== undefined ? { maxSeconds: max } : {}), ...(gap !== undefined ? { maxGapSeconds: gap } : {}) }
    : undefined;
  if (values.worker !== undefined && values.manifest !== undefined) return worker(values.worker, values.manifest, windows);

  const config = loadConfig();
  const installed = await availableRecognizerIds(config.homeDir);
  const engines = values.engines !== undefined ? values.engines.split(',').filter((e) => installed.includes(e)) : installed;
  if (engines.length === 0) throw new Error(`no installed recogniser to benchmark (installed: ${installed.join(', ') || 'none'}); run node dist/engines/models/install-main.js`);
  const corpus = await buildCorpus(values.quick === true);
  const resultsDir = join(config.repoRoot, 'load-tests', 'results');
  await mkdir(resultsDir, { recursive: true });
  const manifest = join(resultsDir, 'asr-bench-manifest.json');
  await writeFile(manifest, JSON.stringify(corpus));

  const report: { engine: string; model: string; publishedWer: string | undefined; loadSeconds: number; peakRssMb: number; sets: SetReport[] }[] = [];
  for (const engine of engines) {
    process.stderr.write(`benchmarking ${engine} on ${corpus.length} utterances…\n`);
    const windowArgs = Object.entries({ 'window-target': target, 'window-max': max, 'window-gap': gap }).flatMap(([k, v]) => (v === undefined ? [] : [`--${k}`, String(v)]));
    const { stdout } = await run(process.execPath, [fileURLToPath(import.meta.url), '--worker', engine, '--manifest', manifest, ...windowArgs], { maxBuffer: 256 * 1024 * 1024 });
    const out = JSON.parse(stdout) as WorkerOutput;
    const sets: SetReport[] = [];
    for (const set of [...new Set(corpus.map((u) => u.set))]) {
      const rows = out.results.filter((x) => x.set === set);
      const refs = new Map(corpus.filter((u) => u.set === set).map((u) => [u.id, u.reference]));
      const utts = rows.map((x) => ({ id: x.id, reference: refs.get(x.id) ?? '', hypothesis: x.hypothesis }));
      const sclite = await scoreWithSclite(utts);
      const werTs = corpusWer(utts.map((u) => wordErrors(u.reference, u.hypothesis))).wer * 100;
      const audioSeconds = rows.reduce((s, x) => s + x.audioSeconds, 0);
      const rtf = rows.reduce((s, x) => s + x.seconds, 0) / audioSeconds;
      sets.push({ set, hypotheses: utts, utterances: rows.length, audioSeconds, sclite, werTs, rtf });
    }
    report.push({ engine, model: engine, publishedWer: findModel(engine)?.publishedWer, loadSeconds: out.loadSeconds, peakRssMb: out.peakRssMb, sets });
  }

  const lines = ['engine              set                 utts  audio_s  WER%(sclite)  sub/del/ins %      WER%(ts)  RTF     load_s  peakRSS_MB'];
  for (const e of report) {
    for (const s of e.sets) {
      lines.push(
        `${e.engine.padEnd(20)}${s.set.padEnd(20)}${String(s.utterances).padStart(4)}  ${s.audioSeconds.toFixed(1).padStart(7)}  ${s.sclite.wer.toFixed(1).padStart(12)}  ${`${s.sclite.substitutions}/${s.sclite.deletions}/${s.sclite.insertions}`.padEnd(17)}  ${s.werTs.toFixed(1).padStart(8)}  ${s.rtf.toFixed(3).padStart(6)}  ${e.loadSeconds.toFixed(2).padStart(6)}  ${e.peakRssMb.toFixed(0).padStart(10)}`,
      );
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  const file = join(resultsDir, `asr-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify({ date: new Date().toISOString(), cpus: (await import('node:os')).cpus().length, windows: windows ?? 'model defaults', snrDb: SNR_DB, voices: VOICES, speeds: SPEEDS, engines: report }, null, 2));
  process.stdout.write(`results: ${file}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`asr-bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
