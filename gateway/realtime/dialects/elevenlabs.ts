/**
 * ElevenLabs Scribe real-time dialect, `WS /v1/speech-to-text/realtime`: configuration in the query string,
 * audio as base64 in `input_audio_chunk` JSON messages (`commit: true` finalises the segment now), answers
 * `session_started`, `partial_transcript`, `committed_transcript` (+ `committed_transcript_with_timestamps` with
 * `include_timestamps=true`) and errors as their own `message_type`. ElevenLabs has no end message: the client
 * commits and closes. Its default commit strategy is `manual`, kept here so a client relying on it gets what it
 * expects; `commit_strategy=vad` lets the server's VAD commit at pauses.
 */
import type { AudioInputFormat } from '../../../engines/streaming/index.js';
import type { RealtimeFinal } from '../../../streams/index.js';
import { assertNever } from '../../../core/errors.js';
import { badRequest } from '../../errors.js';
import type { ClientCommand, OpenRequest, RealtimeDialectAdapter, SessionEvent, SessionOptions, UpgradeRequest } from '../dialect.js';
import { decodeBase64, parseJsonObject } from './client-json.js';
import { credentialOf } from './credentials.js';
import { QueryOptions, RESUME_PARAMETERS, readResume } from './query-options.js';
import { chooseLanguage, chooseModel } from './session-choices.js';

export const ELEVENLABS_PATH = '/v1/speech-to-text/realtime';

/** Query parameters ElevenLabs documents (and its SDK sends) that Dalston accepts but does not apply. */
const ACCEPTED_NOT_APPLIED = [
  'include_language_detection', 'keyterms', 'secondary_languages', 'no_verbatim', 'entity_detection', 'transcript_edit',
  'filter_background_audio',
] as const;
const KNOWN = new Set<string>([
  'model_id', 'audio_format', 'language_code', 'commit_strategy', 'vad_silence_threshold_secs', 'vad_threshold',
  'min_speech_duration_ms', 'min_silence_duration_ms', 'include_timestamps', 'enable_logging', 'token',
  ...ACCEPTED_NOT_APPLIED, ...RESUME_PARAMETERS,
]);

export const ELEVENLABS_AUDIO_FORMATS = ['pcm_8000', 'pcm_16000', 'pcm_22050', 'pcm_24000', 'pcm_44100', 'pcm_48000', 'ulaw_8000'] as const;
export type ElevenLabsAudioFormat = (typeof ELEVENLABS_AUDIO_FORMATS)[number];

/** The error `message_type`s of the dialect (each is its own message, with an `error` text). */
export type ElevenLabsErrorType =
  | 'error' | 'auth_error' | 'quota_exceeded' | 'rate_limited' | 'resource_exhausted' | 'commit_throttled' | 'queue_overflow'
  | 'chunk_size_exceeded' | 'input_error' | 'insufficient_audio_activity' | 'session_time_limit_exceeded' | 'transcriber_error'
  | 'invalid_request';
const CLIENT_ERROR_TYPES: ReadonlySet<string> = new Set(['input_error', 'chunk_size_exceeded', 'invalid_request']);

function toFormat(audioFormat: ElevenLabsAudioFormat): AudioInputFormat {
  const rate = Number(audioFormat.slice(audioFormat.indexOf('_') + 1));
  return audioFormat.startsWith('ulaw') ? { encoding: 'mulaw', sampleRate: rate } : { encoding: 'pcm_s16le', sampleRate: rate };
}

function isScribeModel(id: string): boolean {
  return /^scribe_v\d+(_[a-z0-9]+)*$/.test(id);
}

export interface ElevenLabsState {
  readonly audioFormat: ElevenLabsAudioFormat;
  readonly sampleRate: number;
  readonly modelId: string;
  readonly includeTimestamps: boolean;
  readonly enableLogging: boolean;
  /** Echoed in session_started as the client sent them (ElevenLabs echoes its config). */
  readonly echo: Readonly<Record<string, string | number | boolean | null>>;
}

function closeCodeErrorType(closeCode: number, code: string): ElevenLabsErrorType {
  switch (closeCode) {
    case 4401: return 'auth_error';
    case 4429: return 'rate_limited';
    case 4503: return 'resource_exhausted';
    case 4413: return 'session_time_limit_exceeded';
    case 4408: return 'insufficient_audio_activity';
    case 4010: return 'queue_overflow';
    case 1009: return 'chunk_size_exceeded';
    case 4400: return CLIENT_ERROR_TYPES.has(code) ? (code as ElevenLabsErrorType) : 'input_error';
    default: return 'transcriber_error';
  }
}

function wordsOf(final: RealtimeFinal): Record<string, unknown>[] {
  return elevenLabsWordItems(final.words);
}

/**
 * ElevenLabs lists the spacing between words as items of their own (batch and real-time answers alike). A word's
 * logprob comes from its confidence; without one, `unknownLogprob` when given (the batch SDK requires the field).
 */
export function elevenLabsWordItems(
  words: readonly { readonly text: string; readonly start: number; readonly end: number; readonly confidence?: number | undefined }[], unknownLogprob?: number,
): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const logprob = (confidence: number | undefined): Record<string, number> =>
    confidence !== undefined ? { logprob: Math.log(Math.max(confidence, 1e-6)) } : unknownLogprob !== undefined ? { logprob: unknownLogprob } : {};
  words.forEach((w, i) => {
    if (i > 0) {
      const prev = words[i - 1];
      out.push({ text: ' ', start: prev?.end ?? w.start, end: w.start, type: 'spacing', ...logprob(undefined) });
    }
    out.push({ text: w.text, start: w.start, end: w.end, type: 'word', ...logprob(w.confidence) });
  });
  return out;
}

const invalid = (code: string, message: string): ClientCommand => ({ kind: 'invalid', code, message, fatal: false });

export const elevenLabsDialect: RealtimeDialectAdapter<ElevenLabsState> = {
  dialect: 'elevenlabs',
  path: ELEVENLABS_PATH,

  parseOpen(req: UpgradeRequest): OpenRequest {
    const q = new QueryOptions(req.query, 'ElevenLabs');
    q.onlyKnown(KNOWN);
    const modelId = q.str('model_id');
    const model = chooseModel(modelId, isScribeModel);
    if (!model.ok) throw badRequest(model.message);
    const audioFormat = q.oneOf('audio_format', ELEVENLABS_AUDIO_FORMATS) ?? 'pcm_16000';
    const language = chooseLanguage(q.str('language_code'));
    if (!language.ok) throw badRequest(language.message);
    const silenceSecs = q.num('vad_silence_threshold_secs', 0.3, 3.0);
    const vadThreshold = q.num('vad_threshold', 0.1, 0.9);
    const minSpeechMs = q.int('min_speech_duration_ms', 50, 2000);
    const minSilenceDurationMs = q.int('min_silence_duration_ms', 50, 2000); // validated and echoed, not applied: vad_silence_threshold_secs is the pause that commits
    const enableLogging = q.bool('enable_logging');
    const includeTimestamps = q.bool('include_timestamps') ?? false;
    q.bool('include_language_detection');
    const languageCode = q.str('language_code');
    const options: SessionOptions = {
      commitStrategy: q.oneOf('commit_strategy', ['manual', 'vad'] as const) ?? 'manual',
      ...(model.model === undefined ? {} : { model: model.model }),
      ...(language.language === undefined ? {} : { language: language.language }),
      ...(vadThreshold === undefined ? {} : { vadThreshold }),
      ...(minSpeechMs === undefined ? {} : { minSpeechMs }),
      ...(silenceSecs === undefined ? {} : { minSilenceMs: Math.round(silenceSecs * 1000) }),
      // enable_logging=false is ElevenLabs' zero-retention mode.
      ...(enableLogging === false ? { retention: false } : {}),
    };
    const header = req.headers['xi-api-key'];
    const credential = header !== undefined && header !== '' ? credentialOf(header) : credentialOf(q.str('token'));
    return {
      credential,
      format: toFormat(audioFormat),
      options,
      ...readResume(q),
      settings: {
        audio_format: audioFormat,
        model_id: modelId ?? '',
        include_timestamps: includeTimestamps,
        enable_logging: enableLogging ?? true,
        ...(languageCode === undefined ? {} : { language_code: languageCode }),
        ...(silenceSecs === undefined ? {} : { vad_silence_threshold_secs: silenceSecs }),
        ...(minSilenceDurationMs === undefined ? {} : { min_silence_duration_ms: minSilenceDurationMs }),
      },
    };
  },

  createState(open: OpenRequest): ElevenLabsState {
    const s = open.settings ?? {};
    const audioFormat = (ELEVENLABS_AUDIO_FORMATS as readonly unknown[]).includes(s['audio_format']) ? (s['audio_format'] as ElevenLabsAudioFormat) : 'pcm_16000';
    const o = open.options;
    return {
      audioFormat,
      sampleRate: open.format.sampleRate,
      modelId: typeof s['model_id'] === 'string' && s['model_id'] !== '' ? s['model_id'] : (o.model ?? 'scribe_v2_realtime'),
      includeTimestamps: s['include_timestamps'] === true,
      enableLogging: s['enable_logging'] !== false,
      echo: {
        language_code: typeof s['language_code'] === 'string' ? s['language_code'] : (o.language ?? null),
        vad_silence_threshold_secs: typeof s['vad_silence_threshold_secs'] === 'number' ? s['vad_silence_threshold_secs'] : null,
        min_silence_duration_ms: typeof s['min_silence_duration_ms'] === 'number' ? s['min_silence_duration_ms'] : null,
      },
    };
  },

  onClientMessage(state: ElevenLabsState, data: Buffer, isBinary: boolean): ClientCommand[] {
    if (isBinary) return [invalid('input_error', 'binary frames are not accepted: send audio as {"message_type":"input_audio_chunk","audio_base_64":…}')];
    const parsed = parseJsonObject(data);
    if (!parsed.ok) return [invalid('input_error', parsed.message)];
    const m = parsed.value;
    if (m['message_type'] !== 'input_audio_chunk') {
      return [invalid('input_error', `unknown message_type ${JSON.stringify(m['message_type'] ?? null)}; the client sends input_audio_chunk only`)];
    }
    const audio = m['audio_base_64'] ?? '';
    if (typeof audio !== 'string') return [invalid('input_error', 'audio_base_64 must be a base64 string')];
    const commit = m['commit'] ?? false;
    if (typeof commit !== 'boolean') return [invalid('input_error', 'commit must be true or false')];
    const rate = m['sample_rate'];
    if (rate !== undefined && rate !== null && rate !== state.sampleRate) {
      return [invalid('input_error', `sample_rate ${JSON.stringify(rate)} does not match audio_format ${state.audioFormat} (${state.sampleRate} Hz)`)];
    }
    const prev = m['previous_text'];
    if (prev !== undefined && prev !== null && typeof prev !== 'string') return [invalid('input_error', 'previous_text must be a string')];
    const bytes = decodeBase64(audio);
    if (bytes === undefined) return [invalid('input_error', 'audio_base_64 is not valid base64')];
    const out: ClientCommand[] = [];
    if (bytes.length > 0) out.push({ kind: 'audio', bytes });
    if (commit) out.push({ kind: 'flush' });
    return out;
  },

  render(state: ElevenLabsState, event: SessionEvent): string[] {
    switch (event.type) {
      case 'session.begin': {
        const o = event.options;
        return [JSON.stringify({
          message_type: 'session_started',
          session_id: event.sessionId,
          config: {
            sample_rate: event.format.sampleRate,
            audio_format: state.audioFormat,
            language_code: state.echo['language_code'] ?? null,
            commit_strategy: o.commitStrategy ?? 'manual',
            vad_silence_threshold_secs: state.echo['vad_silence_threshold_secs'] ?? (o.minSilenceMs === undefined ? null : o.minSilenceMs / 1000),
            vad_threshold: o.vadThreshold ?? null,
            min_speech_duration_ms: o.minSpeechMs ?? null,
            min_silence_duration_ms: state.echo['min_silence_duration_ms'] ?? null,
            model_id: state.modelId,
            enable_logging: state.enableLogging,
            include_timestamps: state.includeTimestamps,
          },
        })];
      }
      case 'transcript.partial':
        return [JSON.stringify({ message_type: 'partial_transcript', text: event.text })];
      case 'transcript.final': {
        const f = event.final;
        const out = [JSON.stringify({ message_type: 'committed_transcript', text: f.text })];
        if (state.includeTimestamps) {
          out.push(JSON.stringify({ message_type: 'committed_transcript_with_timestamps', text: f.text, language_code: state.echo['language_code'] ?? null, words: wordsOf(f) }));
        }
        return out;
      }
      case 'warning':
        // Only client errors have an ElevenLabs message; server notices (lag) have none and are not sent.
        return CLIENT_ERROR_TYPES.has(event.code) ? [JSON.stringify({ message_type: event.code, error: event.message })] : [];
      case 'error':
        return [JSON.stringify({ message_type: closeCodeErrorType(event.closeCode, event.code), error: event.message })];
      case 'session.updated':
      case 'vad.speech_start':
      case 'vad.speech_end':
      case 'buffer.cleared':
      case 'session.end':
        return [];
      default:
        return assertNever(event, 'session event');
    }
  },
};
