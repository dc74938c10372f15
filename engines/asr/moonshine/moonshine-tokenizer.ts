/**
 * Moonshine's `tokenizer.bin`: the SentencePiece vocabulary as length-prefixed byte strings, one per token id
 * in order (1 length byte, then the piece's UTF-8 bytes; 32,768 entries for tiny-en). Ids 0-2 are
 * <unk>/<s>/</s>, ids 3-258 are the byte-fallback tokens for bytes 0x00-0xFF, `▁` (U+2581) marks a word
 * start, and `<<ST_n>>` entries are reserved specials that never reach the text.
 */
const WORD_START = Buffer.from('\u2581', 'utf8');
const BYTE_TOKENS_FROM = 3;
const BYTE_TOKENS_TO = 259;

export class MoonshineTokenizer {
  static readonly BOS = 1;
  static readonly EOS = 2;

  private constructor(private readonly pieces: readonly Buffer[]) {}

  static parse(bin: Buffer): MoonshineTokenizer {
    const pieces: Buffer[] = [];
    let i = 0;
    while (i < bin.length) {
      const n = bin[i] ?? 0;
      // Lengths ≥ 128 would need another encoding; the shipped vocabulary's longest piece is 48 bytes.
      if (n >= 128) throw new Error(`tokenizer.bin: unsupported piece length byte ${n} at offset ${i}`);
      if (i + 1 + n > bin.length) throw new Error(`tokenizer.bin: truncated piece at offset ${i}`);
      pieces.push(bin.subarray(i + 1, i + 1 + n));
      i += 1 + n;
    }
    if (pieces.length < BYTE_TOKENS_TO) throw new Error(`tokenizer.bin: only ${pieces.length} pieces`);
    return new MoonshineTokenizer(pieces);
  }

  get vocabularySize(): number {
    return this.pieces.length;
  }

  isSpecial(id: number): boolean {
    if (id < BYTE_TOKENS_FROM) return true;
    const p = this.pieces[id];
    return p === undefined || p.length === 0 || (p[0] === 0x3c && p[1] === 0x3c && p[p.length - 1] === 0x3e);
  }

  /** Raw bytes of one token, `▁` kept (byte-fallback ids give their byte). */
  pieceBytes(id: number): Buffer {
    if (id >= BYTE_TOKENS_FROM && id < BYTE_TOKENS_TO) return Buffer.of(id - BYTE_TOKENS_FROM);
    if (this.isSpecial(id)) return Buffer.alloc(0);
    return this.pieces[id] ?? Buffer.alloc(0);
  }

  /** Whether the token begins a new word (its piece starts with ▁). */
  startsWord(id: number): boolean {
    const p = this.pieceBytes(id);
    return p.length >= 3 && p.subarray(0, 3).equals(WORD_START);
  }

  /** Text of a token sequence: bytes joined before UTF-8 decoding (byte-fallback runs form one character). */
  decode(ids: readonly number[]): string {
    const text = Buffer.concat(ids.map((id) => this.pieceBytes(id))).toString('utf8');
    return text.replaceAll('\u2581', ' ').replace(/\s+/g, ' ').trim();
  }
}
