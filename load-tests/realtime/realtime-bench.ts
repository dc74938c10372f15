/**
 * Real-time recognition benchmark (not a test): `node dist/load-tests/realtime/realtime-bench.js [--model id]
 * [--speeds 1,4,max] [--chunk-ms 100] [--repeat 1]`.
 *
 * Streams the LibriVox clips of pocketsphinx-testdata (joined with 1 s pauses) through one StreamingTranscriber
 * in chunks, paced at `speed` × real time ('max' = all audio available at once), and reports:
 *  - partial decode cost (ms per decode, and as a share of the audio it covered), partials emitted/skipped;
 *  - end of speech → final: the compute latency (wall ms of the push that closed the utterance and returned its
 *    final) p50/p95, the same from that chunk's arrival (adds queueing when behind), the final decode alone,
 *    and the end-pointing delay in audio (the pause the end-pointer waits for);
 *  - the partial cadence achieved (audio ms between consecutive partial decodes of one utterance), and how much
 *    audio after the speech onset the first partial covers;
 *  - WER of the finals against the references, and the real-time factor.
 * "Behind real time" is what a session host would report: how long the chunk being processed has waited since
 * it arrived. Prints a table and writes JSON under load-tests/results/.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../core/config.js';
import { createRecognizer, wordErrors } from '../../engines/asr/index.js';
import { readWav } from '../../engines/audio/index.js';
import { SileroVad } from '../../engines/vad/index.js';
import { createStreamingTranscriber, ENDPOINTER_DEFAULTS, STREAM_SAMPLE_RATE, type DecodeMeasurement, type TranscriptEvent } from '../../engines/streaming/index.js';
import { TESTDATA, parseSphinxTranscription } from '../../harness/speech-fixtures.js';
import { percentiles, type Percentiles } from '../stats.js';

const RATE = STREAM_SAMPLE_RATE;

async function corpus(repeat: number): Promise<{ audio: Float32Array; reference: string }> {
  const dir = join(TESTDATA, 'librivox');
  const refs = [...parseSphinxTranscription(await readFile(join(dir, 'transcription'), 'utf8'))].sort(([a], [b]) => a.localeCompare(b));
  const parts: Float32Array[] = [];
  const texts: string[] = [];
  for (let r = 0; r < repeat; r++) {
    for (const [id, text] of refs) {
      const wav = await readWav(join(dir, `${id}.wav`));
      if (wav.sampleRate !== RATE) throw new Error(`${id}: ${wav.sampleRate} Hz`);
      parts.push(wav.samples, new Float32Array(RATE));
      texts.push(text);
    }
  }
  const audio = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    audio.set(p, o);
    o += p.length;
  }
  return { audio, reference: texts.join(' ') };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface ScenarioReport {
  readonly speed: number | 'max';
  readonly audioSeconds: number;
  readonly wallSeconds: number;
  readonly realTimeFactor: number;
  readonly finals: number;
  readonly werPercent: number;
  readonly partialsEmitted: number;
  readonly partialDecodes: number;
  readonly partialsSkipped: number;
  readonly partialDecodeMs: Percentiles;
  /** Partial decode wall time / audio decoded. */
  readonly partialDecodeShare: Percentiles;
  readonly finalDecodeMs: Percentiles;
  /** Wall time of the push that closed the utterance and returned its final (VAD + final decode): compute only. */
  readonly endOfSpeechToFinalComputeMs: Percentiles;
  /** From the arrival of that chunk to the final: adds any wait behind earlier work (queueing when behind). */
  readonly endOfSpeechToFinalFromArrivalMs: Percentiles;
  /** Audio the end-pointer waits after the speech stops (minSilence + frame rounding). */
  readonly endpointingDelayAudioMs: Percentiles;
  readonly partialCadenceAudioMs: Percentiles;
  /** Audio from the speech onset (utterance start + pre-padding) to the end of the audio the first partial covers. */
  readonly firstPartialAfterOnsetAudioMs: Percentiles;
  readonly behindMsAtPartials: Percentiles;
}

async function scenario(speed: number | 'max', chunkMs: number, audio: Float32Array, reference: string, transcriberDeps: { recognizer: Awaited<ReturnType<typeof createRecognizer>>; vad: SileroVad }): Promise<ScenarioReport> {
  const chunk = Math.round((chunkMs * RATE) / 1000);
  const decodes: DecodeMeasurement[] = [];
  let t0 = 0;
  let arrival = 0; // wall ms the chunk being processed arrived
  const behind = (): number => Math.max(0, performance.now() - arrival);
  const behindAtPartials: number[] = [];
  const t = createStreamingTranscriber({
    ...transcriberDeps,
    behindMs: behind,
    onDecode: (m) => {
      decodes.push(m);
      if (m.kind === 'partial') behindAtPartials.push(behind());
    },
  });
  const events: TranscriptEvent[] = [];
  const finalCompute: number[] = [];
  const finalFromArrival: number[] = [];
  const endpointing: number[] = [];
  const partialEnds = new Map<number, number[]>();
  const onsets = new Map<number, number>();
  const record = (evs: readonly TranscriptEvent[], positionSeconds: number, arrivedAt: number, pushStarted: number): void => {
    const now = performance.now();
    for (const e of evs) {
      events.push(e);
      if (e.type === 'final') {
        finalCompute.push(now - pushStarted);
        finalFromArrival.push(now - arrivedAt);
        // The speech stopped speechPad before the utterance's end; it was closed at the current position.
        if (e.reason === 'silence') endpointing.push((positionSeconds - (e.end - ENDPOINTER_DEFAULTS.speechPadMs / 1000)) * 1000);
      }
      if (e.type === 'partial') partialEnds.set(e.utterance, [...(partialEnds.get(e.utterance) ?? []), e.end]);
      // The first utterance of the stream may start at 0 with less than the full padding before its onset.
      if (e.type === 'speech_start') onsets.set(e.utterance, e.start + (e.start === 0 ? 0 : ENDPOINTER_DEFAULTS.speechPadMs / 1000));
    }
  };
  t0 = performance.now();
  for (let i = 0, k = 0; i < audio.length; i += chunk, k++) {
    // The chunk is "sent" by the client once its audio has been spoken, at speed × real time.
    const due = speed === 'max' ? t0 : t0 + ((k + 1) * chunkMs) / speed;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    arrival = due;
    const started = performance.now();
    const evs = await t.push(audio.subarray(i, i + chunk));
    record(evs, t.position, arrival, started);
  }
  arrival = performance.now();
  record(await t.end(), t.position, arrival, arrival);
  const wallSeconds = (performance.now() - t0) / 1000;
  const partials = decodes.filter((d) => d.kind === 'partial');
  // Cadence: audio between consecutive partial decodes of one utterance (decoded audio grows by that much).
  const cadence: number[] = [];
  let prev: DecodeMeasurement | undefined;
  for (const d of decodes) {
    if (d.kind === 'partial' && prev?.kind === 'partial' && prev.utterance === d.utterance) cadence.push(d.audioMs - prev.audioMs);
    prev = d;
  }
  const finals = events.filter((e): e is Extract<TranscriptEvent, { type: 'final' }> => e.type === 'final');
  const stats = t.stats;
  return {
    speed,
    audioSeconds: audio.length / RATE,
    wallSeconds,
    realTimeFactor: wallSeconds / (audio.length / RATE),
    finals: finals.length,
    werPercent: wordErrors(reference, finals.map((f) => f.text).join(' ')).wer * 100,
    partialsEmitted: stats.partialsEmitted,
    partialDecodes: stats.partialDecodes,
    partialsSkipped: stats.partialsSkipped,
    partialDecodeMs: percentiles(partials.map((d) => d.decodeMs)),
    partialDecodeShare: percentiles(partials.map((d) => d.decodeMs / d.audioMs)),
    finalDecodeMs: percentiles(decodes.filter((d) => d.kind === 'final').map((d) => d.decodeMs)),
    endOfSpeechToFinalComputeMs: percentiles(finalCompute),
    endOfSpeechToFinalFromArrivalMs: percentiles(finalFromArrival),
    endpointingDelayAudioMs: percentiles(endpointing),
    partialCadenceAudioMs: percentiles(cadence),
    firstPartialAfterOnsetAudioMs: percentiles([...partialEnds].map(([u, ends]) => ((ends[0] ?? Number.NaN) - (onsets.get(u) ?? Number.NaN)) * 1000)),
    behindMsAtPartials: percentiles(behindAtPartials),
  };
}

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
const row = (p: Percentiles): string => `p50 ${f1(p.p50)}  p95 ${f1(p.p95)}  max ${f1(p.max)}  (n=${p.n})`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { model: { type: 'string' }, speeds: { type: 'string' }, 'chunk-ms': { type: 'string' }, repeat: { type: 'string' } } });
  const config = loadConfig();
  const model = values.model ?? 'moonshine-tiny';
  const chunkMs = Number(values['chunk-ms'] ?? 100);
  const repeat = Number(values.repeat ?? 1);
  const speeds = (values.speeds ?? '1,4,max').split(',').map((s) => (s === 'max' ? 'max' : Number(s)));
  if (!(chunkMs > 0) || !(repeat >= 1) || speeds.some((s) => s !== 'max' && !(s > 0))) throw new Error('bad --chunk-ms, --repeat or --speeds');

  const recognizer = await createRecognizer(model, { homeDir: config.homeDir });
  await recognizer.load();
  const vad = await SileroVad.load(config.homeDir);
  const { audio, reference } = await corpus(repeat);
  // Warm-up: the first decodes of a fresh onnxruntime session are slower and would skew the percentiles.
  await recognizer.recognize({ audio: audio.subarray(0, 3 * RATE) });

  const reports: ScenarioReport[] = [];
  for (const speed of speeds) {
    process.stderr.write(`streaming ${(audio.length / RATE).toFixed(1)} s of LibriVox at ${speed === 'max' ? 'max speed' : `${speed}x real time`}…\n`);
    reports.push(await scenario(speed, chunkMs, audio, reference, { recognizer, vad }));
  }
  await recognizer.close();
  await vad.close();

  const lines: string[] = [`model ${model}, ${chunkMs} ms chunks, ${cpus().length} CPUs; times in ms`];
  for (const r of reports) {
    lines.push(
      `\n== speed ${r.speed === 'max' ? 'max' : `${r.speed}x`}: ${f1(r.audioSeconds)} s audio in ${f1(r.wallSeconds)} s (RTF ${r.realTimeFactor.toFixed(3)}), ${r.finals} finals, WER ${f1(r.werPercent)} %`,
      `partials: ${r.partialsEmitted} emitted, ${r.partialDecodes} decoded, ${r.partialsSkipped} skipped (host behind)`,
      `partial decode cost ms        ${row(r.partialDecodeMs)}`,
      `partial decode / audio        p50 ${r.partialDecodeShare.p50.toFixed(3)}  p95 ${r.partialDecodeShare.p95.toFixed(3)}`,
      `partial cadence (audio ms)    ${row(r.partialCadenceAudioMs)}`,
      `first partial after onset     ${row(r.firstPartialAfterOnsetAudioMs)}  (audio ms; + decode)`,
      `behind real time at partials  ${row(r.behindMsAtPartials)}`,
      `final decode ms               ${row(r.finalDecodeMs)}`,
      `end of speech -> final compute ${row(r.endOfSpeechToFinalComputeMs)}`,
      `  … from chunk arrival        ${row(r.endOfSpeechToFinalFromArrivalMs)}`,
      `end-pointing wait (audio ms)  ${row(r.endpointingDelayAudioMs)}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  const resultsDir = join(config.repoRoot, 'load-tests', 'results');
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, `realtime-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify({ date: new Date().toISOString(), cpus: cpus().length, model, chunkMs, repeat, scenarios: reports }, null, 2));
  process.stdout.write(`results: ${file}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`realtime-bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
