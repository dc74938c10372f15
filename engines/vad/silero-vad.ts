/**
 * Silero VAD v5 in onnxruntime-node. The model sees 512-sample (32 ms) frames at 16 kHz with the previous 64
 * samples prepended (the official wrapper's context; v6 needs it, v5 is cleaner with it) and carries an LSTM
 * state [2,1,128] from frame to frame. `detectSpeech` is the batch API used for chunking; `createStream`
 * gives the per-frame API for real-time end-pointing (pair it with Endpointer).
 */
import ort from 'onnxruntime-node';
import { CancelledError } from '../../core/errors.js';
import { SILERO_VAD_V5 } from '../models/catalogue.js';
import { ModelError } from '../models/model-error.js';
import { modelPath, verifyModel } from '../models/verify.js';
import { speechRegions, type SpeechRegion, type VadOptions } from './speech-regions.js';

export const VAD_SAMPLE_RATE = 16000;
export const VAD_FRAME_SAMPLES = 512;
export const VAD_FRAME_SECONDS = VAD_FRAME_SAMPLES / VAD_SAMPLE_RATE;
const CONTEXT_SAMPLES = 64;
const STATE_SIZE = 2 * 1 * 128;

export interface SpeechAnalysis {
  /** Speech probability of each 32 ms frame. */
  readonly probabilities: Float32Array;
  readonly regions: SpeechRegion[];
}

/** Per-stream recurrent state: one per audio stream, never shared between streams. */
export class SileroVadStream {
  private state = new Float32Array(STATE_SIZE);
  private readonly input = new Float32Array(CONTEXT_SAMPLES + VAD_FRAME_SAMPLES);
  private readonly sr = new ort.Tensor('int64', BigInt64Array.of(BigInt(VAD_SAMPLE_RATE)), []);

  constructor(private readonly session: ort.InferenceSession) {}

  /** Speech probability of one frame of exactly 512 samples (pad the last frame with zeros). */
  async process(frame: Float32Array): Promise<number> {
    if (frame.length !== VAD_FRAME_SAMPLES) throw new RangeError(`VAD frame must be ${VAD_FRAME_SAMPLES} samples, got ${frame.length}`);
    this.input.copyWithin(0, VAD_FRAME_SAMPLES); // last 64 samples of the previous frame become the context
    this.input.set(frame, CONTEXT_SAMPLES);
    const out = await this.session.run({
      input: new ort.Tensor('float32', this.input, [1, this.input.length]),
      state: new ort.Tensor('float32', this.state, [2, 1, 128]),
      sr: this.sr,
    });
    const stateN = out['stateN'];
    const output = out['output'];
    if (stateN === undefined || output === undefined) throw new Error('Silero VAD returned no output/stateN');
    this.state = new Float32Array(stateN.data as Float32Array);
    return (output.data as Float32Array)[0] ?? 0;
  }

  reset(): void {
    this.state = new Float32Array(STATE_SIZE);
    this.input.fill(0);
  }
}

export class SileroVad {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** Seconds spent creating the session. */
    readonly loadSeconds: number,
  ) {}

  /** Verifies the installed model and creates the session; ModelError when missing or unloadable. */
  static async load(homeDir: string): Promise<SileroVad> {
    const model = await verifyModel(SILERO_VAD_V5.id, homeDir);
    const path = modelPath(model, 'silero_vad_v5.onnx');
    const started = performance.now();
    try {
      // One thread: a VAD frame is ~0.1 ms, thread hand-off would cost more than it saves.
      const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1, interOpNumThreads: 1 });
      return new SileroVad(session, (performance.now() - started) / 1000);
    } catch (err) {
      throw new ModelError(`model ${SILERO_VAD_V5.id}: file silero_vad_v5.onnx could not be loaded by onnxruntime`, { modelId: SILERO_VAD_V5.id, file: 'silero_vad_v5.onnx' }, { cause: err });
    }
  }

  createStream(): SileroVadStream {
    return new SileroVadStream(this.session);
  }

  /** Probabilities for every 32 ms frame of 16 kHz audio; checks `signal` every few seconds of audio. */
  async frameProbabilities(audio: Float32Array, signal?: AbortSignal): Promise<Float32Array> {
    const stream = this.createStream();
    const n = Math.ceil(audio.length / VAD_FRAME_SAMPLES);
    const probs = new Float32Array(n);
    const frame = new Float32Array(VAD_FRAME_SAMPLES);
    for (let i = 0; i < n; i++) {
      if (i % 128 === 0 && signal?.aborted === true) throw new CancelledError('speech detection cancelled');
      const from = i * VAD_FRAME_SAMPLES;
      const chunk = audio.subarray(from, Math.min(audio.length, from + VAD_FRAME_SAMPLES));
      frame.fill(0);
      frame.set(chunk);
      probs[i] = await stream.process(frame);
    }
    return probs;
  }

  async analyse(audio: Float32Array, options: VadOptions = {}, signal?: AbortSignal): Promise<SpeechAnalysis> {
    const probabilities = await this.frameProbabilities(audio, signal);
    const regions = speechRegions(probabilities, VAD_FRAME_SECONDS, audio.length / VAD_SAMPLE_RATE, options);
    return { probabilities, regions };
  }

  /** Speech regions in seconds, padded and clipped to the audio. */
  async detectSpeech(audio: Float32Array, options: VadOptions = {}, signal?: AbortSignal): Promise<SpeechRegion[]> {
    return (await this.analyse(audio, options, signal)).regions;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
