/**
 * The `vad` pipeline stage: Silero VAD v5 over the prepared 16 kHz audio, producing speech regions (seconds) that
 * the merged transcript carries as `speech_regions` and that operators can read in the task's artifacts. The
 * model loads once per engine process, lazily, inside the runner's engine.model_load span.
 */
import { readWav } from '../audio/index.js';
import { LazyModel } from '../asr/lazy-model.js';
import { SILERO_VAD_V5 } from '../models/catalogue.js';
import type { Engine, EngineResult, EngineTaskContext } from '../sdk/engine.js';
import { IllegalStateError } from '../../core/errors.js';
import { SileroVad } from './silero-vad.js';
import type { SpeechRegion } from './speech-regions.js';

export const VAD_ENGINE_ID = SILERO_VAD_V5.id;

export interface VadOutput {
  readonly model: string;
  readonly audio_duration_seconds: number;
  readonly speech_seconds: number;
  readonly regions: readonly SpeechRegion[];
}

export class VadEngine implements Engine {
  readonly engineId = VAD_ENGINE_ID;
  readonly stage = 'vad';
  #vad: LazyModel<SileroVad> | undefined;

  constructor(private readonly homeDir: string) {}

  async process(ctx: EngineTaskContext): Promise<EngineResult> {
    const input = ctx.inputs['audio'];
    if (input === undefined) throw new IllegalStateError('vad task has no "audio" input');
    this.#vad ??= new LazyModel(() => SileroVad.load(this.homeDir));
    const lazy = this.#vad;
    const vad = lazy.loaded ? await lazy.get() : await ctx.measureModelLoad(SILERO_VAD_V5.id, () => lazy.get());
    const audio = await readWav(input);
    if (audio.channels !== 1) throw new IllegalStateError(`vad expects the prepared mono audio, got ${audio.channels} channels`);
    const regions = await vad.detectSpeech(audio.samples, {}, ctx.signal);
    const data: VadOutput = {
      model: SILERO_VAD_V5.id,
      audio_duration_seconds: audio.durationSeconds,
      speech_seconds: regions.reduce((s, r) => s + (r.end - r.start), 0),
      regions,
    };
    ctx.log.info({ regions: regions.length, speech_seconds: data.speech_seconds }, 'speech detected');
    return { data, audioDurationSeconds: audio.durationSeconds, model: SILERO_VAD_V5.id };
  }

  async close(): Promise<void> {
    const vad = await this.#vad?.close();
    await vad?.close();
  }
}
