/**
 * bench:batch's long-file mode: one recording of `seconds` (real LibriVox speech and espeak sentences in several
 * voices, repeated, with its reference) transcribed through the stack in one pass (DALSTON_CHUNK_SECONDS=0, one
 * engine) and in parts with 1 and with 2 transcribe engine instances. Reports wall time and real-time factor of
 * each, WER of each against the reference, whether word times run on across the joins, and peak RSS per process.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { METRIC } from '../../core/observability-names.js';
import { wordErrors } from '../../engines/asr/wer.js';
import { writeWav } from '../../engines/audio/wav.js';
import { ESPEAK_SENTENCES, FIXTURE_RATE, TESTDATA, parseSphinxTranscription, synthesize, withPauses } from '../../harness/speech-fixtures.js';
import { readWav } from '../../harness/wav.js';
import { TERMINAL, startHarness, type JobBody } from '../../harness/pipeline-harness.js';
import { scrape } from '../../harness/metrics-scrape.js';
import { sampleProcesses, type ProcessSample } from '../process-sample.js';

export interface LongFileRun {
  readonly label: string;
  readonly engines: number;
  readonly chunkSeconds: number;
  readonly parts: number;
  readonly wallSeconds: number;
  readonly realTimeFactor: number;
  readonly wer: number;
  readonly errors: number;
  readonly refWords: number;
  readonly wordsInOrder: boolean;
  readonly partsPerInstance: readonly number[];
  readonly processes: readonly ProcessSample[];
}

/** About `seconds` of speech: one block of real and synthetic utterances repeated, 0.5 s pauses between them. */
async function recording(seconds: number): Promise<{ samples: Float32Array; reference: string }> {
  const refs = parseSphinxTranscription(await readFile(join(TESTDATA, 'librivox', 'transcription'), 'utf8'));
  const block: { samples: Float32Array; text: string }[] = [];
  for (const [id, text] of refs) block.push({ samples: (await readWav(join(TESTDATA, 'librivox', `${id}.wav`))).samples, text });
  for (const voice of ['en-us', 'en-gb', 'en-us+f3']) {
    for (const text of ESPEAK_SENTENCES) block.push({ samples: await synthesize(text, { voice }), text });
  }
  const pause = 0.5;
  const blockSeconds = block.reduce((s, p) => s + p.samples.length / FIXTURE_RATE + pause, 0);
  const pieces: typeof block = [];
  for (let i = 0; i < Math.max(1, Math.round(seconds / blockSeconds)); i++) pieces.push(...block);
  return { samples: withPauses(pieces.map((p) => p.samples), pause), reference: pieces.map((p) => p.text).join(' ') };
}

async function once(file: string, reference: string, seconds: number, engines: number, chunkSeconds: number, label: string, engineId: string): Promise<LongFileRun> {
  const h = await startHarness({
    name: `long${engines}`,
    engines: ['audio-prepare', ...Array.from({ length: engines }, (_, i) => ({ engineId, name: `asr-${i}` })), 'merge'],
    env: { DALSTON_LOG_LEVEL: 'warn', DALSTON_CHUNK_SECONDS: String(chunkSeconds), DALSTON_TRANSCRIBE_ENGINE: engineId },
  });
  try {
    // A few short jobs first, so most instances have loaded the model (a load takes a second or two).
    const warm = join(tmpdir(), 'dalston-bench-warm.wav');
    await writeWav(warm, await synthesize('warm up'), FIXTURE_RATE);
    for (let i = 0; i < engines * 3; i++) {
      const w = await h.submit(warm);
      await h.waitFor(w.body.id, (j) => TERMINAL.has(j.status), 300_000);
    }
    const transcribed = async (): Promise<number[]> => {
      const out: number[] = [];
      for (const svc of h.services.filter((x) => x.spec.name.startsWith('asr-'))) {
        const done = (await scrape(svc)).find((x) => x.name === METRIC.engineTasksProcessed && x.labels['stage'] === 'transcribe' && x.labels['status'] === 'success');
        out.push(done?.value ?? 0);
      }
      return out;
    };
    const before = await transcribed();
    const res = await h.submit(file, { language: 'en' });
    if (res.status !== 201) throw new Error(`submit failed: ${res.status} ${JSON.stringify(res.body)}`);
    const job: JobBody = await h.waitFor(res.body.id, (j) => TERMINAL.has(j.status), 3 * 3600_000);
    if (job.status !== 'completed') throw new Error(`${label}: job ${job.status} ${JSON.stringify(job.error)}`);
    const body = job as unknown as { created_at: string; completed_at: string };
    const wallSeconds = (Date.parse(body.completed_at) - Date.parse(body.created_at)) / 1000;
    const wer = wordErrors(reference, job.text ?? '');
    const words = (job.segments ?? []).flatMap((s) => s.words ?? []);
    const wordsInOrder = words.every((w, i) => i === 0 || w.start >= (words[i - 1]?.start ?? 0));
    const after = await transcribed();
    const partsPerInstance = after.map((n, i) => n - (before[i] ?? 0));
    return {
      label, engines, chunkSeconds, parts: job.stages.filter((s) => s.stage.startsWith('transcribe')).length, wallSeconds,
      realTimeFactor: seconds / wallSeconds, wer: wer.wer, errors: wer.errors, refWords: wer.refWords, wordsInOrder, partsPerInstance,
      processes: await sampleProcesses(h.services.map((s) => ({ name: s.spec.name, pid: s.child.pid }))),
    };
  } finally {
    await h.stop();
  }
}

export async function runLongFile(seconds: number, engineId: string, maxEngines: number): Promise<{ seconds: number; runs: LongFileRun[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'dalston-bench-long-'));
  try {
    const { samples, reference } = await recording(seconds);
    const actual = samples.length / FIXTURE_RATE;
    const file = join(dir, 'long.wav');
    await writeWav(file, samples, FIXTURE_RATE);
    const runs: LongFileRun[] = [await once(file, reference, actual, 1, 0, 'one pass, 1 engine', engineId)];
    for (let n = 1; n <= maxEngines; n++) runs.push(await once(file, reference, actual, n, 600, `parts, ${n} engine${n > 1 ? 's' : ''}`, engineId));
    return { seconds: actual, runs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
