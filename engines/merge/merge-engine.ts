/**
 * The `merge` stage: the prepare output and the transcribe output(s) (`transcribe`, or `transcribe_ch0…N` for a
 * per-channel job) become the final transcript document, plus `transcript.txt`, `.srt` and `.vtt` renders
 * uploaded beside it. Upstream outputs are checked field by field: a malformed one fails the task (not retryable)
 * with the stage and field named.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IllegalStateError } from '../../core/errors.js';
import { baseStage } from '../../streams/index.js';
import type { PrepareOutput } from '../audio-prepare/index.js';
import type { Engine, EngineResult, EngineTaskContext } from '../sdk/engine.js';
import type { TranscribeOutput, TranscriptSegment } from '../transcribe/index.js';
import { renderSrt, renderTxt, renderVtt } from './render.js';

export const MERGE_ENGINE_ID = 'merge';

export interface MergedWord {
  readonly text: string;
  readonly start: number;
  readonly end: number;
  readonly confidence?: number;
  /** Id of the segment holding the word. */
  readonly segment_id: number;
  readonly channel?: number;
}

export interface MergedSegment {
  readonly id: number;
  readonly start: number;
  readonly end: number;
  readonly text: string;
  readonly channel?: number;
  readonly words: readonly Omit<MergedWord, 'segment_id' | 'channel'>[];
}

/** The final transcript (merge's output.json). */
export interface TranscriptDocument {
  readonly job_id: string;
  readonly text: string;
  /** ISO 639-1 code, or 'und'. */
  readonly language: string;
  readonly audio_duration_seconds: number;
  readonly segments: readonly MergedSegment[];
  /** Every word of every segment, in time order. Empty when word timestamps were not asked for. */
  readonly words: readonly MergedWord[];
  readonly metadata: {
    /** Stages that fed this transcript, in pipeline order, ending with merge. */
    readonly pipeline_stages: readonly string[];
    /** Channels of the uploaded audio. */
    readonly channels: number;
    /** Sample rate of the uploaded audio. */
    readonly sample_rate: number;
    /** ISO 8601 time the transcript was built. */
    readonly created_at: string;
    /** Model of each transcribe stage, by stage name. */
    readonly models: Readonly<Record<string, string>>;
    readonly timestamps_granularity: 'none' | 'segment' | 'word';
    /** Silero speech regions (seconds) when the job ran the vad stage. */
    readonly speech_regions?: readonly { readonly start: number; readonly end: number }[];
  };
}

export interface MergeRequest {
  readonly jobId: string;
  readonly prepare?: PrepareOutput;
  /** Transcribe outputs by stage name: transcribe, or transcribe_ch<N>. */
  readonly transcripts: Readonly<Record<string, TranscribeOutput>>;
  /** 'none' | 'segment' | 'word' (default word): words are dropped unless 'word'. */
  readonly timestampsGranularity?: string;
  readonly createdAt: Date;
  /** The vad stage's speech regions, when the job ran it. */
  readonly speechRegions?: readonly { readonly start: number; readonly end: number }[];
}

/** The regions of a vad output (engines/vad/vad-engine.ts), checked field by field like every upstream output. */
export function checkVadRegions(raw: unknown): { start: number; end: number }[] {
  const regions = typeof raw === 'object' && raw !== null ? (raw as { regions?: unknown }).regions : undefined;
  if (!Array.isArray(regions)) throw malformed('vad', 'regions', 'an array');
  return regions.map((r: unknown, i) => {
    const o = (typeof r === 'object' && r !== null ? r : {}) as { start?: unknown; end?: unknown };
    if (typeof o.start !== 'number' || typeof o.end !== 'number') throw malformed('vad', `regions[${i}]`, '{start, end} in seconds');
    return { start: o.start, end: o.end };
  });
}

const STAGE_ORDER = ['prepare', 'vad', 'transcribe', 'align', 'diarize', 'pii_detect', 'audio_redact', 'merge'];

function stageRank(stage: string): number {
  const base = baseStage(stage);
  const i = STAGE_ORDER.indexOf(base);
  return i === -1 ? STAGE_ORDER.length - 1 : i;
}

function channelOfStage(stage: string): number | undefined {
  const m = /_ch(\d+)$/.exec(stage);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

function mostCommon(values: readonly string[]): string | undefined {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: string | undefined;
  for (const [v, n] of counts) if (best === undefined || n > (counts.get(best) ?? 0)) best = v;
  return best;
}

function granularity(raw: string | undefined): 'none' | 'segment' | 'word' {
  return raw === 'none' || raw === 'segment' ? raw : 'word';
}

/** Builds the transcript document from checked upstream outputs (pure, for the engine and for tests). */
export function mergeTranscript(request: MergeRequest): TranscriptDocument {
  const stages = Object.keys(request.transcripts).sort((a, b) => stageRank(a) - stageRank(b) || a.localeCompare(b, 'en', { numeric: true }));
  if (stages.length === 0) throw new IllegalStateError('merge task has no transcribe input');
  const withWords = granularity(request.timestampsGranularity) === 'word';
  // Several transcribe stages are channels (transcribe_ch<N>) or parts of one long file (transcribe, transcribe_part<i>),
  // whose word times are already on the file's clock: parts pool into one transcript with no channel.
  const perChannel = stages.some((s) => channelOfStage(s) !== undefined);

  const pooled: Array<{ segment: TranscriptSegment; channel: number | undefined }> = [];
  for (const stage of stages) {
    const out = request.transcripts[stage];
    if (!out) continue;
    const channel = perChannel ? (out.channel ?? channelOfStage(stage)) : undefined;
    for (const segment of out.segments) pooled.push({ segment, channel });
  }
  pooled.sort((a, b) => a.segment.start - b.segment.start || (a.channel ?? 0) - (b.channel ?? 0));

  const segments: MergedSegment[] = [];
  const words: MergedWord[] = [];
  for (const { segment, channel } of pooled) {
    const text = segment.text.trim();
    if (text === '') continue;
    const id = segments.length;
    const segWords = withWords
      ? segment.words.map((w) => ({ text: w.text, start: w.start, end: w.end, ...(w.confidence !== undefined ? { confidence: w.confidence } : {}) }))
      : [];
    segments.push({ id, start: segment.start, end: segment.end, text, ...(channel !== undefined ? { channel } : {}), words: segWords });
    for (const w of segWords) words.push({ ...w, segment_id: id, ...(channel !== undefined ? { channel } : {}) });
  }
  words.sort((a, b) => a.start - b.start || a.segment_id - b.segment_id);

  const outputs = stages.map((s) => request.transcripts[s]).filter((o): o is TranscribeOutput => o !== undefined);
  const languages = outputs.map((o) => o.language).filter((l) => l !== 'und' && l !== '');
  const duration = request.prepare?.duration_seconds ?? Math.max(0, ...outputs.map((o) => o.audio_duration_seconds));
  return {
    job_id: request.jobId,
    text: segments.map((s) => s.text).join(' '),
    language: mostCommon(languages) ?? 'und',
    audio_duration_seconds: duration,
    segments,
    words,
    metadata: {
      pipeline_stages: [...(request.prepare ? ['prepare'] : []), ...(request.speechRegions ? ['vad'] : []), ...stages, 'merge'],
      channels: request.prepare?.original.channels ?? Math.max(1, stages.filter((s) => channelOfStage(s) !== undefined).length),
      sample_rate: request.prepare?.original.sample_rate ?? request.prepare?.sample_rate ?? 16000,
      created_at: request.createdAt.toISOString(),
      models: Object.fromEntries(stages.map((s) => [s, request.transcripts[s]?.model ?? 'unknown'])),
      timestamps_granularity: granularity(request.timestampsGranularity),
      ...(request.speechRegions ? { speech_regions: request.speechRegions } : {}),
    },
  };
}

// ---- checking upstream outputs (they crossed a process and a store) ----

function malformed(stage: string, path: string, expected: string): IllegalStateError {
  return new IllegalStateError(`upstream output of ${stage} is malformed: ${path} should be ${expected}`);
}

function field(stage: string, obj: unknown, path: string): Record<string, unknown> {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw malformed(stage, path, 'an object');
  return obj as Record<string, unknown>;
}

function num(stage: string, v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw malformed(stage, path, 'a number');
  return v;
}

function str(stage: string, v: unknown, path: string): string {
  if (typeof v !== 'string') throw malformed(stage, path, 'a string');
  return v;
}

function arr(stage: string, v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw malformed(stage, path, 'an array');
  return v;
}

/** Checks a transcribe output read from JSON. */
export function checkTranscribeOutput(stage: string, value: unknown): TranscribeOutput {
  const o = field(stage, value, '$');
  const segments = arr(stage, o['segments'], 'segments').map((raw, i) => {
    const s = field(stage, raw, `segments[${i}]`);
    const words = arr(stage, s['words'] ?? [], `segments[${i}].words`).map((rw, j) => {
      const w = field(stage, rw, `segments[${i}].words[${j}]`);
      const p = `segments[${i}].words[${j}]`;
      const confidence = w['confidence'] === undefined ? undefined : num(stage, w['confidence'], `${p}.confidence`);
      return { text: str(stage, w['text'], `${p}.text`), start: num(stage, w['start'], `${p}.start`), end: num(stage, w['end'], `${p}.end`), ...(confidence !== undefined ? { confidence } : {}) };
    });
    return { start: num(stage, s['start'], `segments[${i}].start`), end: num(stage, s['end'], `segments[${i}].end`), text: str(stage, s['text'], `segments[${i}].text`), words };
  });
  const channel = o['channel'] === undefined ? undefined : num(stage, o['channel'], 'channel');
  return {
    language: str(stage, o['language'], 'language'),
    text: str(stage, o['text'], 'text'),
    segments,
    model: typeof o['model'] === 'string' ? o['model'] : 'unknown',
    audio_duration_seconds: typeof o['audio_duration_seconds'] === 'number' ? o['audio_duration_seconds'] : 0,
    ...(channel !== undefined ? { channel } : {}),
  };
}

/** Checks the fields of a prepare output that merge uses. */
export function checkPrepareOutput(value: unknown): PrepareOutput {
  const o = field('prepare', value, '$');
  const original = field('prepare', o['original'], 'original');
  num('prepare', o['duration_seconds'], 'duration_seconds');
  num('prepare', original['channels'], 'original.channels');
  num('prepare', original['sample_rate'], 'original.sample_rate');
  return o as unknown as PrepareOutput;
}

export interface MergeEngineOptions {
  /** @default () => new Date() */
  readonly now?: () => Date;
}

export class MergeEngine implements Engine {
  readonly engineId = MERGE_ENGINE_ID;
  readonly stage = 'merge';
  readonly #now: () => Date;

  constructor(options: MergeEngineOptions = {}) {
    this.#now = options.now ?? (() => new Date());
  }

  async process(ctx: EngineTaskContext): Promise<EngineResult> {
    const readJson = async (stage: string, path: string): Promise<unknown> => {
      try {
        return JSON.parse(await readFile(path, 'utf8')) as unknown;
      } catch (err) {
        throw new IllegalStateError(`upstream output of ${stage} is not readable JSON`, { cause: err });
      }
    };
    let prepare: PrepareOutput | undefined;
    let speechRegions: { start: number; end: number }[] | undefined;
    const transcripts: Record<string, TranscribeOutput> = {};
    for (const [name, path] of Object.entries(ctx.inputs)) {
      if (name === 'prepare') prepare = checkPrepareOutput(await readJson(name, path));
      else if (name === 'vad') speechRegions = checkVadRegions(await readJson(name, path));
      else if (/^transcribe(_ch\d+|_part\d+)?$/.test(name)) transcripts[name] = checkTranscribeOutput(name, await readJson(name, path));
    }
    const doc = mergeTranscript({
      jobId: ctx.jobId, transcripts, createdAt: this.#now(),
      ...(prepare ? { prepare } : {}),
      ...(speechRegions ? { speechRegions } : {}),
      ...(ctx.config.timestampsGranularity !== undefined ? { timestampsGranularity: ctx.config.timestampsGranularity } : {}),
    });
    const blobs: Record<string, string> = {
      'transcript.txt': join(ctx.workDir, 'transcript.txt'),
      'transcript.srt': join(ctx.workDir, 'transcript.srt'),
      'transcript.vtt': join(ctx.workDir, 'transcript.vtt'),
    };
    await writeFile(blobs['transcript.txt'] ?? '', renderTxt(doc));
    await writeFile(blobs['transcript.srt'] ?? '', renderSrt(doc));
    await writeFile(blobs['transcript.vtt'] ?? '', renderVtt(doc));
    ctx.log.info({ segments: doc.segments.length, words: doc.words.length, channels: doc.metadata.channels }, 'transcript merged');
    return { data: doc, blobs, audioDurationSeconds: doc.audio_duration_seconds, language: doc.language };
  }
}
