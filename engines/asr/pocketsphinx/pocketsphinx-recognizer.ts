/**
 * The pocketsphinx recogniser: Debian's `pocketsphinx_continuous` (5prealpha) with the `pocketsphinx-en-us`
 * acoustic model, 3-gram LM and CMU dictionary. Each request writes its samples to a temporary 16 kHz WAV and
 * runs one process over it; the task's AbortSignal kills that process. A plumbing baseline (about 37 % WER on
 * LibriVox read speech), English only.
 */
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { DependencyUnavailableError, InvalidInputError } from '../../../core/errors.js';
import { silentLogger, type Logger } from '../../../core/logger.js';
import { runProcess, throwIfAborted, writeWav } from '../../audio/index.js';
import { POCKETSPHINX_EN_US, ModelError, modelDir as catalogueModelDir } from '../../models/index.js';
import { SAMPLE_RATE, type RecognitionRequest, type RecognitionResult, type Recognizer } from '../recognizer.js';
import { parsePocketsphinxOutput } from './pocketsphinx-output.js';

export const POCKETSPHINX_MODEL_ID = POCKETSPHINX_EN_US.id;

export interface PocketsphinxRecognizerOptions {
  /** Dalston home (for the catalogue's model directory); unused for the system model but accepted for the factory. */
  readonly homeDir?: string;
  /** @default the catalogue's directory, /usr/share/pocketsphinx/model/en-us */
  readonly modelDir?: string;
  /** Program name or absolute path. @default 'pocketsphinx_continuous' */
  readonly binary?: string;
  /** A pause between words longer than this starts a new segment. @default 0.5 */
  readonly segmentGapSeconds?: number;
  /** No segment is longer than this. @default 30 */
  readonly maxSegmentSeconds?: number;
  /** Where request WAVs are written (each in its own directory, removed afterwards). @default os.tmpdir() */
  readonly tmpDir?: string;
  /** @default silentLogger */
  readonly log?: Logger;
  /** Wraps the load (see MoonshineRecognizerOptions.measureModelLoad). @default no wrapping */
  readonly measureModelLoad?: <T>(model: string, load: () => Promise<T>) => Promise<T>;
}

/** The model files pocketsphinx reads, relative to the model directory (from the catalogue). */
const MODEL_FILES = POCKETSPHINX_EN_US.files;

async function findOnPath(binary: string): Promise<string | undefined> {
  const candidates = isAbsolute(binary) ? [binary] : (process.env['PATH'] ?? '').split(delimiter).filter((d) => d).map((d) => join(d, binary));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {
      // try the next directory
    }
  }
  return undefined;
}

/** True for a language this model can transcribe: English, or unspecified/auto. */
function speaks(language: string | undefined): boolean {
  if (language === undefined || language === '' || language === 'auto') return true;
  return /^en(?:[-_].*)?$/i.test(language);
}

export class PocketsphinxRecognizer implements Recognizer {
  readonly modelId = POCKETSPHINX_MODEL_ID;
  readonly #modelDir: string;
  readonly #binary: string;
  readonly #options: PocketsphinxRecognizerOptions;
  readonly #log: Logger;
  #binaryPath: string | undefined;
  #loaded = false;
  /** The load in flight, shared by concurrent callers so the model is verified once. */
  #loading: Promise<void> | undefined;

  constructor(options: PocketsphinxRecognizerOptions = {}) {
    this.#options = options;
    this.#modelDir = options.modelDir ?? catalogueModelDir(POCKETSPHINX_EN_US, options.homeDir ?? '');
    this.#binary = options.binary ?? 'pocketsphinx_continuous';
    this.#log = options.log ?? silentLogger;
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  /**
   * Checks that the program and every model file are present (sizes as the catalogue lists them). pocketsphinx
   * itself loads the model in each request's process, so there is nothing to keep in memory here.
   */
  async load(): Promise<void> {
    if (this.#loaded) return;
    const measure = this.#options.measureModelLoad ?? (<T>(_model: string, load: () => Promise<T>): Promise<T> => load());
    this.#loading ??= measure(this.modelId, () => this.#verify()).finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  async #verify(): Promise<void> {
    const binaryPath = await findOnPath(this.#binary);
    if (binaryPath === undefined) {
      throw new ModelError(`model ${this.modelId}: program ${this.#binary} is not installed; install the Debian package pocketsphinx`, { modelId: this.modelId, file: this.#binary });
    }
    for (const file of MODEL_FILES) {
      const path = join(this.#modelDir, file.name);
      let problem: string | undefined;
      try {
        const s = await stat(path);
        if (!s.isFile()) problem = 'not a file';
        else if (s.size !== file.bytes) problem = `${s.size} bytes, expected ${file.bytes}`;
      } catch {
        problem = 'missing';
      }
      if (problem !== undefined) {
        throw new ModelError(
          `model ${this.modelId}: file ${file.name} is ${problem} (${path}); install the Debian package pocketsphinx-en-us`,
          { modelId: this.modelId, file: file.name },
        );
      }
    }
    this.#binaryPath = binaryPath;
    this.#loaded = true;
    this.#log.debug({ model: this.modelId, dir: this.#modelDir }, 'pocketsphinx model verified');
  }

  async recognize(request: RecognitionRequest): Promise<RecognitionResult> {
    if (request.task === 'translate') throw new InvalidInputError(`${this.modelId} transcribes English only and cannot translate; a multilingual Whisper model (whisper-base) can`);
    const { signal } = request;
    throwIfAborted(signal, 'recognition');
    if (!speaks(request.language)) {
      throw new InvalidInputError(`model ${this.modelId} transcribes English only; language "${request.language ?? ''}" was requested`);
    }
    await this.load();
    const durationSeconds = request.audio.length / SAMPLE_RATE;
    if (request.audio.length === 0) return { language: 'en', text: '', segments: [] };

    const dir = await mkdtemp(join(this.#options.tmpDir ?? tmpdir(), 'dalston-pocketsphinx-'));
    try {
      const wav = join(dir, 'input.wav');
      const logFile = join(dir, 'pocketsphinx.log');
      await writeWav(wav, request.audio, SAMPLE_RATE);
      throwIfAborted(signal, 'recognition');
      const m = this.#modelDir;
      const out = await runProcess(this.#binaryPath ?? this.#binary, [
        '-hmm', join(m, 'en-us'), '-lm', join(m, 'en-us.lm.bin'), '-dict', join(m, 'cmudict-en-us.dict'),
        '-samprate', String(SAMPLE_RATE), '-infile', wav, '-time', 'yes', '-logfn', logFile,
      ], signal ? { signal } : {});
      if (out.code !== 0) {
        const log = await readFile(logFile, 'utf8').catch(() => '');
        const tail = log.split('\n').filter((l) => /ERROR|FATAL/.test(l)).slice(-3).join('; ');
        throw new DependencyUnavailableError(`pocketsphinx_continuous failed (exit ${out.code ?? 'signal'})${tail ? `: ${tail}` : ''}`);
      }
      const segments = parsePocketsphinxOutput(out.stdout, {
        durationSeconds,
        ...(this.#options.segmentGapSeconds !== undefined ? { segmentGapSeconds: this.#options.segmentGapSeconds } : {}),
        ...(this.#options.maxSegmentSeconds !== undefined ? { maxSegmentSeconds: this.#options.maxSegmentSeconds } : {}),
      });
      return { language: 'en', text: segments.map((s) => s.text).join(' '), segments };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async close(): Promise<void> {
    this.#loaded = false;
  }
}

/** The factory engines/asr/recognizers.ts looks for. */
export function createPocketsphinxRecognizer(options: PocketsphinxRecognizerOptions = {}): PocketsphinxRecognizer {
  return new PocketsphinxRecognizer(options);
}
