/**
 * The Moonshine tiny ONNX pair: an encoder fed raw 16 kHz audio and a merged decoder (HF optimum export)
 * with a KV cache. Step 0 runs the no-cache branch with empty past tensors and returns self- and
 * cross-attention keys/values; later steps run the cache branch feeding one token and the accumulated
 * self-attention cache, while the cross-attention cache from step 0 is reused unchanged.
 */
import ort from 'onnxruntime-node';
import { MoonshineTokenizer } from './moonshine-tokenizer.js';

const LAYERS = 6;
const HEADS = 8;
const HEAD_DIM = 36;
/** Moonshine's guidance: at most ~6.5 tokens per second of audio; beyond that the decoder is looping. */
const TOKENS_PER_SECOND = 6.5;
const MIN_TOKENS = 10;

export interface DecodedTokens {
  readonly ids: readonly number[];
  /** Probability of each chosen token under the (temperature-1) softmax. */
  readonly probs: readonly number[];
  /** True when decoding stopped at the length limit instead of end-of-text. */
  readonly truncated: boolean;
}

export interface DecodeOptions {
  /** 0 = greedy; >0 samples from softmax(logits / temperature) with `random`. */
  readonly temperature: number;
  readonly random?: () => number;
}

type Feeds = Record<string, ort.Tensor>;

export interface Encoded {
  readonly hidden: ort.Tensor;
  /** Audio length in samples, needed for the decoder's cross-attention mask. */
  readonly samples: number;
}

export class MoonshineModel {
  constructor(
    private readonly encoder: ort.InferenceSession,
    private readonly decoder: ort.InferenceSession,
  ) {}

  static async create(encoderPath: string, decoderPath: string, threads: number): Promise<MoonshineModel> {
    const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
    const [encoder, decoder] = await Promise.all([ort.InferenceSession.create(encoderPath, opts), ort.InferenceSession.create(decoderPath, opts)]);
    return new MoonshineModel(encoder, decoder);
  }

  async encode(audio: Float32Array): Promise<Encoded> {
    const out = await this.encoder.run({
      input_values: new ort.Tensor('float32', audio, [1, audio.length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(audio.length).fill(1n), [1, audio.length]),
    });
    const hidden = out['last_hidden_state'];
    if (hidden === undefined) throw new Error('Moonshine encoder returned no last_hidden_state');
    return { hidden, samples: audio.length };
  }

  static maxTokens(seconds: number): number {
    return Math.max(MIN_TOKENS, Math.ceil(seconds * TOKENS_PER_SECOND));
  }

  async decode(encoded: Encoded, maxTokens: number, options: DecodeOptions): Promise<DecodedTokens> {
    const { hidden, samples } = encoded;
    // The decoder's cross-attention mask is the audio-resolution mask (the graph downsamples it to encoder
    // frames itself); a frame-resolution mask fails to broadcast for inputs of 10 s and more.
    const mask = new ort.Tensor('int64', new BigInt64Array(samples).fill(1n), [1, samples]);
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, HEADS, 0, HEAD_DIM]);
    const past: Feeds = {};
    for (let l = 0; l < LAYERS; l++) {
      for (const part of ['decoder', 'encoder']) {
        for (const kv of ['key', 'value']) past[`past_key_values.${l}.${part}.${kv}`] = empty;
      }
    }
    const ids: number[] = [];
    const probs: number[] = [];
    let token = MoonshineTokenizer.BOS;
    for (let step = 0; step < maxTokens; step++) {
      const out = await this.decoder.run({
        encoder_attention_mask: mask,
        input_ids: new ort.Tensor('int64', BigInt64Array.of(BigInt(token)), [1, 1]),
        encoder_hidden_states: hidden,
        use_cache_branch: new ort.Tensor('bool', [step > 0], [1]),
        ...past,
      });
      for (let l = 0; l < LAYERS; l++) {
        for (const kv of ['key', 'value']) {
          past[`past_key_values.${l}.decoder.${kv}`] = required(out, `present.${l}.decoder.${kv}`);
          // The cache branch passes cross-attention K/V through; keep the step-0 tensors.
          if (step === 0) past[`past_key_values.${l}.encoder.${kv}`] = required(out, `present.${l}.encoder.${kv}`);
        }
      }
      const logits = required(out, 'logits').data as Float32Array;
      const { id, prob } = pick(logits, options);
      if (id === MoonshineTokenizer.EOS) return { ids, probs, truncated: false };
      ids.push(id);
      probs.push(prob);
      token = id;
    }
    return { ids, probs, truncated: true };
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.release(), this.decoder.release()]);
  }
}

function required(out: ort.InferenceSession.OnnxValueMapType, name: string): ort.Tensor {
  const t = out[name];
  if (t === undefined) throw new Error(`Moonshine decoder returned no ${name}`);
  return t;
}

/** Chooses the next token (argmax or temperature sample) and reports its softmax probability. */
function pick(logits: Float32Array, options: DecodeOptions): { id: number; prob: number } {
  let best = 0;
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] ?? -Infinity;
    if (v > max) {
      max = v;
      best = i;
    }
  }
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp((logits[i] ?? -Infinity) - max);
  if (options.temperature <= 0) return { id: best, prob: 1 / sum };
  const t = options.temperature;
  let tsum = 0;
  for (let i = 0; i < logits.length; i++) tsum += Math.exp(((logits[i] ?? -Infinity) - max) / t);
  let r = (options.random ?? Math.random)() * tsum;
  for (let i = 0; i < logits.length; i++) {
    r -= Math.exp(((logits[i] ?? -Infinity) - max) / t);
    if (r <= 0) return { id: i, prob: Math.exp((logits[i] ?? -Infinity) - max) / sum };
  }
  return { id: best, prob: 1 / sum };
}
