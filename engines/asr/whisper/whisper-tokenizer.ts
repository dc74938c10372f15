/**
 * Whisper's vocabulary, read from the model package's HF `tokenizer.json` (byte-level BPE): the piece strings
 * of `model.vocab` map back to bytes through GPT-2's bytes-to-unicode table, and the special tokens are found
 * by their text among `added_tokens`, so English-only (eot 50256) and multilingual (eot 50257, 99 language
 * tokens) models share one class. Timestamp tokens follow <|notimestamps|>, stepping 20 ms from <|0.00|>.
 * Only decoding is needed: prompts are made of special tokens.
 */

export interface WhisperSpecialTokens {
  readonly eot: number;
  readonly sot: number;
  readonly translate: number;
  readonly transcribe: number;
  readonly noSpeech: number;
  readonly noTimestamps: number;
  readonly timestampBegin: number;
  /** Language code → token id; empty for English-only models. */
  readonly languages: ReadonlyMap<string, number>;
}

export const TIMESTAMP_STEP_SECONDS = 0.02;

interface HfTokenizerJson {
  readonly model?: { readonly vocab?: Readonly<Record<string, number>> };
  readonly added_tokens?: readonly { readonly id: number; readonly content: string }[];
}

/** GPT-2's reversible map from bytes to printable characters, inverted: character → byte. */
function unicodeToByte(): Map<string, number> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  return new Map(bs.map((b, i) => [String.fromCharCode(cs[i] ?? 0), b]));
}

export class WhisperTokenizer {
  private constructor(
    private readonly pieces: readonly (Buffer | undefined)[],
    readonly tokens: WhisperSpecialTokens,
  ) {}

  /**
   * `multilingual` comes from the model, not the file: English-only packages carry the language tokens in
   * their vocabulary too, but their models were never trained to use them.
   */
  static fromTokenizerJson(text: string, multilingual: boolean): WhisperTokenizer {
    const json = JSON.parse(text) as HfTokenizerJson;
    const vocab = json.model?.vocab ?? {};
    const decoder = unicodeToByte();
    const pieces: (Buffer | undefined)[] = [];
    for (const [piece, id] of Object.entries(vocab)) {
      const bytes: number[] = [];
      for (const ch of piece) {
        const b = decoder.get(ch);
        if (b === undefined) throw new Error(`tokenizer.json: piece ${JSON.stringify(piece)} is not byte-level`);
        bytes.push(b);
      }
      pieces[id] = Buffer.from(bytes);
    }
    const added = new Map((json.added_tokens ?? []).map((t) => [t.content, t.id]));
    const need = (content: string): number => {
      const id = added.get(content);
      if (id === undefined) throw new Error(`tokenizer.json has no ${content}`);
      return id;
    };
    const noTimestamps = need('<|notimestamps|>');
    const sot = need('<|startoftranscript|>');
    const translate = need('<|translate|>');
    const languages = new Map<string, number>();
    for (const [content, id] of added) {
      const m = /^<\|([a-z]{2,3})\|>$/.exec(content);
      if (multilingual && m?.[1] !== undefined && id > sot && id < translate) languages.set(m[1], id);
    }
    const tokens: WhisperSpecialTokens = {
      eot: need('<|endoftext|>'),
      sot,
      translate,
      transcribe: need('<|transcribe|>'),
      noSpeech: added.get('<|nospeech|>') ?? need('<|nocaptions|>'),
      noTimestamps,
      timestampBegin: noTimestamps + 1,
      languages,
    };
    return new WhisperTokenizer(pieces, tokens);
  }

  get multilingual(): boolean {
    return this.tokens.languages.size > 0;
  }

  isTimestamp(id: number): boolean {
    return id >= this.tokens.timestampBegin;
  }

  isText(id: number): boolean {
    return id < this.tokens.eot;
  }

  timestampSeconds(id: number): number {
    return (id - this.tokens.timestampBegin) * TIMESTAMP_STEP_SECONDS;
  }

  /** Text of the text tokens among `ids` (specials and timestamps dropped), bytes joined before UTF-8. */
  decode(ids: readonly number[]): string {
    return Buffer.concat(ids.filter((id) => this.isText(id)).map((id) => this.pieces[id] ?? Buffer.alloc(0))).toString('utf8');
  }

  /** Byte-level pieces carry their leading space: a token that starts with one begins a word. */
  startsWord(id: number): boolean {
    return this.isText(id) && this.pieces[id]?.[0] === 0x20;
  }

  /**
   * The prompt Whisper expects: [sot] for English-only models, [sot, <|lang|>, <|transcribe|>] otherwise, or
   * <|translate|> for English text from speech in `language`.
   */
  prompt(language: string | undefined, task: 'transcribe' | 'translate' = 'transcribe'): number[] {
    if (!this.multilingual) {
      if (task === 'translate') throw new Error('an English-only Whisper model cannot translate');
      return [this.tokens.sot];
    }
    const lang = this.tokens.languages.get(language ?? 'en');
    if (lang === undefined) throw new Error(`no language token for "${language}"`);
    return [this.tokens.sot, lang, task === 'translate' ? this.tokens.translate : this.tokens.transcribe];
  }
}
