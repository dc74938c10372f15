/**
 * Whisper's English-only vocabulary: the GPT-2 BPE ranks of js-tiktoken (identical to Whisper's gpt2.tiktoken,
 * checked rank for rank in the research notes) for ids below 50256, then the special tokens in
 * openai-whisper's order. Timestamp tokens step by 20 ms from <|0.00|> = 50363.
 */
import { Tiktoken } from 'js-tiktoken/lite';
import gpt2 from 'js-tiktoken/ranks/gpt2';

export const WHISPER_EN_TOKENS = {
  eot: 50256,
  sot: 50257,
  translate: 50357,
  transcribe: 50358,
  startOfLm: 50359,
  startOfPrev: 50360,
  noSpeech: 50361,
  noTimestamps: 50362,
  timestampBegin: 50363,
  vocabularySize: 51864,
} as const;

export const TIMESTAMP_STEP_SECONDS = 0.02;

export class WhisperTokenizer {
  private readonly bpe = new Tiktoken(gpt2);
  readonly tokens = WHISPER_EN_TOKENS;

  isTimestamp(id: number): boolean {
    return id >= WHISPER_EN_TOKENS.timestampBegin;
  }

  isText(id: number): boolean {
    return id < WHISPER_EN_TOKENS.eot;
  }

  timestampSeconds(id: number): number {
    return (id - WHISPER_EN_TOKENS.timestampBegin) * TIMESTAMP_STEP_SECONDS;
  }

  /** Text of the text tokens among `ids` (specials and timestamps dropped). */
  decode(ids: readonly number[]): string {
    return this.bpe.decode(ids.filter((id) => this.isText(id)));
  }

  /** GPT-2 pieces carry their leading space: a token that starts with one begins a word. */
  startsWord(id: number): boolean {
    return this.isText(id) && this.bpe.decode([id]).startsWith(' ');
  }

  encode(text: string): number[] {
    return this.bpe.encode(text);
  }
}
