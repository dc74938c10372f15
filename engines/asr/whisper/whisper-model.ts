/**
 * The converted Whisper pair in onnxruntime-node (see convert_ct2_whisper.py): the encoder turns a log-mel
 * window into audio features plus every decoder layer's cross-attention keys/values; the decoder takes one
 * token per call with its position and the self-attention cache, so the prompt is fed token by token too.
 */
import ort from 'onnxruntime-node';
import { N_FRAMES, N_MELS } from './log-mel.js';
import { applyTimestampRules, type RuleOptions } from './timestamp-rules.js';
import type { WhisperSpecialTokens } from './whisper-tokenizer.js';

export interface WhisperDims {
  readonly layers: number;
  readonly heads: number;
  readonly headDim: number;
}

export interface WhisperDecoded {
  /** Sampled tokens after the prompt, timestamps included, eot excluded. */
  readonly ids: readonly number[];
  /** Probability of each sampled token under the unfiltered softmax. */
  readonly probs: readonly number[];
  readonly truncated: boolean;
  /** P(<|nospeech|>) at the start-of-transcript position. */
  readonly noSpeechProb: number;
  /**
   * With `alignmentHeads`: per head, the pre-softmax cross-attention row of the query that chose each sampled
   * token (ids.length rows), then the row of the query that chose end-of-text (absent when truncated).
   */
  readonly attention?: readonly Float32Array[][];
}

export interface WhisperDecodeOptions {
  /** [sot] or [sot, <|lang|>, <|transcribe|>]. */
  readonly prompt: readonly number[];
  readonly temperature: number;
  readonly random?: () => number;
  readonly rules: RuleOptions;
  /** Whisper's n_text_ctx / 2. @default 224 */
  readonly maxTokens?: number;
  /** [layer, head] pairs whose cross-attention is kept for word alignment. */
  readonly alignmentHeads?: readonly (readonly [number, number])[];
}

type Cross = Record<string, ort.Tensor>;

export class WhisperModel {
  constructor(
    private readonly encoder: ort.InferenceSession,
    private readonly decoder: ort.InferenceSession,
    readonly dims: WhisperDims,
  ) {}

  static async create(encoderPath: string, decoderPath: string, threads: number): Promise<WhisperModel> {
    const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
    const [encoder, decoder] = await Promise.all([ort.InferenceSession.create(encoderPath, opts), ort.InferenceSession.create(decoderPath, opts)]);
    const layers = encoder.outputNames.filter((n) => n.startsWith('cross_k_')).length;
    // Cache shapes [1, heads, past, headDim] are declared by the converter on the decoder's inputs.
    const meta = decoder.inputMetadata.find((m) => m.name === 'self_k_0');
    const shape = meta !== undefined && meta.isTensor ? meta.shape : [];
    const heads = typeof shape[1] === 'number' ? shape[1] : 6;
    const headDim = typeof shape[3] === 'number' ? shape[3] : 64;
    return new WhisperModel(encoder, decoder, { layers, heads, headDim });
  }

  async encode(mel: Float32Array): Promise<Cross> {
    const out = await this.encoder.run({ mel: new ort.Tensor('float32', mel, [1, N_MELS, N_FRAMES]) });
    const cross: Cross = {};
    for (let l = 0; l < this.dims.layers; l++) {
      for (const kv of ['k', 'v']) {
        const t = out[`cross_${kv}_${l}`];
        if (t === undefined) throw new Error(`Whisper encoder returned no cross_${kv}_${l}`);
        cross[`cross_${kv}_${l}`] = t;
      }
    }
    return cross;
  }

  async decode(cross: Cross, options: WhisperDecodeOptions): Promise<WhisperDecoded> {
    const { heads, headDim, layers } = this.dims;
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, headDim]);
    const cache: Cross = {};
    for (let l = 0; l < layers; l++) {
      cache[`self_k_${l}`] = empty;
      cache[`self_v_${l}`] = empty;
    }
    const T = options.rules.tokens;
    const prompt = options.prompt;
    const ids: number[] = [];
    const probs: number[] = [];
    const alignHeads = options.alignmentHeads ?? [];
    const attention: Float32Array[][] | undefined = alignHeads.length > 0 ? alignHeads.map(() => []) : undefined;
    let noSpeechProb = 0;
    const maxTokens = options.maxTokens ?? 224;
    for (let position = 0; position < prompt.length + maxTokens; position++) {
      const token = position < prompt.length ? (prompt[position] ?? T.sot) : (ids[ids.length - 1] ?? T.eot);
      const out = await this.decoder.run({
        ...cross,
        ...cache,
        tokens: new ort.Tensor('int64', BigInt64Array.of(BigInt(token)), [1, 1]),
        position: new ort.Tensor('int64', BigInt64Array.of(BigInt(position)), [1]),
      });
      for (let l = 0; l < layers; l++) {
        const k = out[`new_self_k_${l}`];
        const v = out[`new_self_v_${l}`];
        if (k === undefined || v === undefined) throw new Error(`Whisper decoder returned no cache for layer ${l}`);
        cache[`self_k_${l}`] = k;
        cache[`self_v_${l}`] = v;
      }
      if (position < prompt.length - 1) continue;
      if (attention !== undefined) {
        alignHeads.forEach(([layer, head], i) => {
          const qk = out[`cross_qk_${layer}`];
          if (qk === undefined) throw new Error(`Whisper decoder has no cross_qk_${layer} output (re-run set-up to convert again)`);
          const frames = qk.dims[3] ?? 1500;
          attention[i]?.push((qk.data as Float32Array).slice(head * frames, (head + 1) * frames));
        });
      }
      const logitsT = out['logits'];
      if (logitsT === undefined) throw new Error('Whisper decoder returned no logits');
      const logits = new Float32Array(logitsT.data as Float32Array);
      const probOf = softmaxProbe(logits);
      if (position === prompt.length - 1) noSpeechProb = probOf(T.noSpeech);
      applyTimestampRules(logits, ids, options.rules);
      const id = pick(logits, options.temperature, options.random);
      if (id === T.eot) return attention ? { ids, probs, truncated: false, noSpeechProb, attention } : { ids, probs, truncated: false, noSpeechProb };
      ids.push(id);
      probs.push(probOf(id));
    }
    return { ids, probs, truncated: true, noSpeechProb };
  }

  /** The most likely language token after <|startoftranscript|> (multilingual models), with its probability among languages. */
  async detectLanguage(cross: Cross, tokens: WhisperSpecialTokens): Promise<{ language: string; probability: number }> {
    const { heads, headDim, layers } = this.dims;
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, headDim]);
    const feeds: Cross = { ...cross };
    for (let l = 0; l < layers; l++) {
      feeds[`self_k_${l}`] = empty;
      feeds[`self_v_${l}`] = empty;
    }
    const out = await this.decoder.run({
      ...feeds,
      tokens: new ort.Tensor('int64', BigInt64Array.of(BigInt(tokens.sot)), [1, 1]),
      position: new ort.Tensor('int64', BigInt64Array.of(0n), [1]),
    });
    const logits = out['logits']?.data as Float32Array | undefined;
    if (logits === undefined) throw new Error('Whisper decoder returned no logits');
    let best = { language: 'und', logit: -Infinity };
    let max = -Infinity;
    for (const id of tokens.languages.values()) max = Math.max(max, logits[id] ?? -Infinity);
    let sum = 0;
    for (const [language, id] of tokens.languages) {
      const v = logits[id] ?? -Infinity;
      sum += Math.exp(v - max);
      if (v > best.logit) best = { language, logit: v };
    }
    return { language: best.language, probability: Math.exp(best.logit - max) / sum };
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.release(), this.decoder.release()]);
  }
}

/** Probability lookup under the unfiltered softmax of `logits` (captured before the rules edit them). */
function softmaxProbe(logits: Float32Array): (id: number) => number {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const copy = logits.slice();
  return (id) => Math.exp((copy[id] ?? -Infinity) - max) / sum;
}

function pick(logits: Float32Array, temperature: number, random: (() => number) | undefined): number {
  let best = 0;
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] ?? -Infinity;
    if (v > max) {
      max = v;
      best = i;
    }
  }
  if (temperature <= 0 || max === -Infinity) return best;
  let total = 0;
  for (const v of logits) total += Math.exp((v - max) / temperature);
  let r = (random ?? Math.random)() * total;
  for (let i = 0; i < logits.length; i++) {
    r -= Math.exp(((logits[i] ?? -Infinity) - max) / temperature);
    if (r <= 0) return i;
  }
  return best;
}
