/**
 * Model and language as vendors name them → Dalston's session options. A vendor's own model names (nova-3,
 * scribe_v2_realtime, gpt-4o-transcribe…) run the server's default real-time model; a Dalston catalogue id picks
 * that model; anything else is refused. Languages come as ISO 639-1, ISO 639-3 (ElevenLabs) or BCP-47 (Deepgram).
 */
import { ASR_MODEL_IDS } from '../../models.js';
import { LANGUAGE_CODES } from '../../languages.js';

export type ModelChoice = { readonly ok: true; readonly model?: string } | { readonly ok: false; readonly message: string };

export function chooseModel(requested: string | undefined, isVendorModel: (id: string) => boolean): ModelChoice {
  if (requested === undefined || requested === '' || requested === 'auto') return { ok: true };
  if (ASR_MODEL_IDS.has(requested)) return { ok: true, model: requested };
  if (isVendorModel(requested)) return { ok: true };
  return { ok: false, message: `model "${requested}" is not a model of this server; GET /v1/models lists them (vendor model names run the default model)` };
}

/** ISO 639-3 codes of languages that also have a 639-1 code, for the ones clients commonly send. */
const ISO_639_3: Readonly<Record<string, string>> = {
  afr: 'af', ara: 'ar', bel: 'be', ben: 'bn', bul: 'bg', cat: 'ca', ces: 'cs', cym: 'cy', dan: 'da', deu: 'de',
  ell: 'el', eng: 'en', est: 'et', eus: 'eu', fas: 'fa', fin: 'fi', fra: 'fr', gle: 'ga', glg: 'gl', guj: 'gu',
  heb: 'he', hin: 'hi', hrv: 'hr', hun: 'hu', hye: 'hy', ind: 'id', isl: 'is', ita: 'it', jpn: 'ja', kan: 'kn',
  kat: 'ka', kaz: 'kk', kor: 'ko', lav: 'lv', lit: 'lt', mal: 'ml', mar: 'mr', mkd: 'mk', msa: 'ms', mlt: 'mt',
  nld: 'nl', nor: 'no', pan: 'pa', pol: 'pl', por: 'pt', ron: 'ro', rus: 'ru', slk: 'sk', slv: 'sl', spa: 'es',
  srp: 'sr', swa: 'sw', swe: 'sv', tam: 'ta', tel: 'te', tha: 'th', tur: 'tr', ukr: 'uk', urd: 'ur', vie: 'vi',
  zho: 'zh', cmn: 'zh', yue: 'zh',
};

export type LanguageChoice = { readonly ok: true; readonly language?: string } | { readonly ok: false; readonly message: string };

/** `en`, `eng`, `en-US`, `pt_BR` → ISO 639-1; `auto`/`multi` → detection (undefined). */
export function chooseLanguage(raw: string | undefined): LanguageChoice {
  if (raw === undefined || raw === '') return { ok: true };
  const v = raw.trim().toLowerCase();
  if (v === 'auto' || v === 'multi') return { ok: true };
  const base = v.split(/[-_]/)[0] ?? '';
  const code = base.length === 3 ? ISO_639_3[base] : base;
  if (code !== undefined && LANGUAGE_CODES.has(code)) return { ok: true, language: code };
  return { ok: false, message: `language "${raw}" is not a supported language code (ISO 639-1, ISO 639-3 or BCP-47)` };
}
