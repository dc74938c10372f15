/**
 * Deepgram live dialect, `WS /v1/listen`: configuration in the query string, audio as binary frames, JSON controls
 * `KeepAlive`, `Finalize` (finalise now: the answer carries `from_finalize: true`) and `CloseStream` (finalise
 * everything, send `Metadata` with the audio duration, close 1000 — the SDK reconnects on any other close). The
 * server sends `Results` (`is_final`, `speech_final` at a pause), `SpeechStarted` with `vad_events=true` and
 * `UtteranceEnd` with `utterance_end_ms`. Deepgram's own defaults are kept where they change what a client sees:
 * no interim results unless `interim_results=true`.
 */
import { createHash, type Hash } from 'node:crypto';
import { assertNever } from '../../../core/errors.js';
import type { AudioInputFormat } from '../../../engines/streaming/index.js';
import type { RealtimeFinal } from '../../../streams/index.js';
import { badRequest } from '../../errors.js';
import type { ClientCommand, OpenRequest, PresentedCredential, RealtimeDialectAdapter, SessionEvent, SessionOptions, UpgradeRequest } from '../dialect.js';
import { parseJsonObject } from './client-json.js';
import { authorizationValue, credentialOf } from './credentials.js';
import { QueryOptions, RESUME_PARAMETERS, readResume } from './query-options.js';
import { chooseLanguage, chooseModel } from './session-choices.js';

export const DEEPGRAM_PATH = '/v1/listen';

/** Query parameters Deepgram documents that Dalston accepts but does not apply (formatting, diarization, tagging…). */
const ACCEPTED_NOT_APPLIED = [
  'punctuate', 'smart_format', 'numerals', 'profanity_filter', 'dictation', 'diarize', 'diarize_model', 'filler_words',
  'redact', 'keyterm', 'keywords', 'search', 'replace', 'tag', 'extra', 'version', 'mip_opt_out', 'callback',
  'callback_method', 'detect_entities', 'no_delay', 'multichannel',
] as const;
const KNOWN = new Set<string>([
  'model', 'language', 'encoding', 'sample_rate', 'channels', 'interim_results', 'endpointing', 'utterance_end_ms',
  'vad_events', ...ACCEPTED_NOT_APPLIED, ...RESUME_PARAMETERS,
]);

const ENCODINGS = { linear16: 'pcm_s16le', mulaw: 'mulaw', alaw: 'alaw' } as const;
/** Our end-pointer needs at least this much silence; Deepgram's default endpointing is 10 ms. */
export const MIN_ENDPOINTING_MS = 32;

export function isDeepgramModel(id: string): boolean {
  return /^(nova|base|enhanced|whisper|general|phonecall|meeting|voicemail|finance|conversationalai|video|medical|drivethru|automotive)([a-z0-9.-]*)$/.test(id);
}

export interface DeepgramState {
  /** Deepgram's request id: the session id, so a client's logs lead to ours. */
  requestId: string;
  /** The model that serves the session (session.begin); until then the name the client asked for. */
  model: string;
  readonly channels: number;
  readonly vadEvents: boolean;
  readonly utteranceEndMs: number | undefined;
  readonly created: string;
  readonly sha256: Hash;
}

export interface DeepgramDialectOptions {
  /** Epoch ms, for Metadata `created`. @default Date.now */
  readonly now?: () => number;
}

const invalid = (code: string, message: string, fatal = false): ClientCommand => ({ kind: 'invalid', code, message, fatal });
/** Codes of client errors this dialect renders as a Deepgram `Error` message. */
export const DEEPGRAM_CLIENT_ERROR_CODES: ReadonlySet<string> = new Set(['INVALID_JSON', 'UNKNOWN_MESSAGE', 'UNSUPPORTED_MESSAGE']);

function credentialFrom(req: UpgradeRequest): { credential: PresentedCredential; protocol?: string } {
  const header = authorizationValue(req.headers['authorization'], ['token', 'bearer']);
  if (header !== undefined) return { credential: credentialOf(header) };
  // Browsers: Sec-WebSocket-Protocol: token, <key> (or bearer, <token>); the answer must be one the client offered.
  const i = req.protocols.findIndex((p) => p.toLowerCase() === 'token' || p.toLowerCase() === 'bearer');
  const scheme = req.protocols[i];
  if (scheme !== undefined) return { credential: credentialOf(req.protocols[i + 1]), protocol: scheme };
  return { credential: { kind: 'none' } };
}

function channelIndex(): number[] {
  return [0, 1];
}

function resultsOf(state: DeepgramState, r: { start: number; end: number; text: string; words: readonly { text: string; start: number; end: number; confidence?: number }[] }, flags: { isFinal: boolean; speechFinal: boolean; fromFinalize: boolean }): string {
  const words = r.words.map((w) => ({ word: w.text.toLowerCase().replace(/[^\p{L}\p{N}']/gu, '') || w.text, start: w.start, end: w.end, confidence: w.confidence ?? 1, punctuated_word: w.text }));
  const confidence = words.length === 0 ? 0 : words.reduce((s, w) => s + w.confidence, 0) / words.length;
  return JSON.stringify({
    type: 'Results',
    channel_index: channelIndex(),
    duration: round(Math.max(0, r.end - r.start)),
    start: round(r.start),
    is_final: flags.isFinal,
    speech_final: flags.speechFinal,
    from_finalize: flags.fromFinalize,
    channel: { alternatives: [{ transcript: r.text, confidence: round(confidence), words }] },
    metadata: { request_id: state.requestId, model_info: { name: state.model, version: 'dalston', arch: 'dalston' }, model_uuid: state.model },
  });
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Partials carry no word times: spread the words over the partial's span so `words` is as Deepgram shapes it. */
function spreadWords(text: string, start: number, end: number): { text: string; start: number; end: number }[] {
  const parts = text.split(/\s+/).filter((w) => w !== '');
  const step = parts.length === 0 ? 0 : (end - start) / parts.length;
  return parts.map((t, i) => ({ text: t, start: round(start + i * step), end: round(start + (i + 1) * step) }));
}

export function createDeepgramDialect(options: DeepgramDialectOptions = {}): RealtimeDialectAdapter<DeepgramState> {
  const now = options.now ?? Date.now;
  return {
    dialect: 'deepgram',
    path: DEEPGRAM_PATH,

    parseOpen(req: UpgradeRequest): OpenRequest {
      const q = new QueryOptions(req.query, 'Deepgram');
      q.onlyKnown(KNOWN);
      const modelName = q.str('model');
      const model = chooseModel(modelName, isDeepgramModel);
      if (!model.ok) throw badRequest(model.message);
      const language = chooseLanguage(q.str('language'));
      if (!language.ok) throw badRequest(language.message);
      const encodingName = q.str('encoding');
      if (encodingName === undefined) throw badRequest('encoding is required (linear16, mulaw or alaw): containerised audio is not supported on the live endpoint');
      const encoding = (ENCODINGS as Readonly<Record<string, AudioInputFormat['encoding']>>)[encodingName];
      if (encoding === undefined) throw badRequest(`encoding "${encodingName}" is not supported; supported: ${Object.keys(ENCODINGS).join(', ')}`);
      const sampleRate = q.int('sample_rate', 8000, 48000) ?? (encoding === 'pcm_s16le' ? undefined : 8000);
      if (sampleRate === undefined) throw badRequest('sample_rate is required with encoding=linear16');
      const channels = q.int('channels', 1, 2) ?? 1;
      if (q.bool('multichannel') === true) throw badRequest('multichannel=true is not supported: channels are mixed to mono');
      const interim = q.bool('interim_results') ?? false;
      const endpointingRaw = q.str('endpointing');
      let endpointing: SessionOptions = {};
      if (endpointingRaw === 'false') endpointing = { commitStrategy: 'manual' };
      else if (endpointingRaw !== undefined && endpointingRaw !== 'true') {
        const ms = q.int('endpointing', 0, 10000) ?? 0;
        endpointing = { commitStrategy: 'vad', minSilenceMs: Math.max(MIN_ENDPOINTING_MS, ms) };
      } else endpointing = { commitStrategy: 'vad' };
      const utteranceEndMs = q.int('utterance_end_ms', 1000, 5000);
      const vadEvents = q.bool('vad_events') ?? false;
      for (const flag of ['punctuate', 'smart_format', 'numerals', 'profanity_filter', 'dictation', 'diarize', 'filler_words', 'detect_entities', 'no_delay', 'mip_opt_out']) q.bool(flag);
      const { credential, protocol } = credentialFrom(req);
      return {
        credential,
        format: { encoding, sampleRate, channels },
        options: {
          partials: interim,
          ...endpointing,
          ...(model.model === undefined ? {} : { model: model.model }),
          ...(language.language === undefined ? {} : { language: language.language }),
        },
        ...(protocol === undefined ? {} : { protocol }),
        ...readResume(q),
        settings: {
          model: modelName ?? model.model ?? 'default',
          vad_events: vadEvents,
          ...(utteranceEndMs === undefined ? {} : { utterance_end_ms: utteranceEndMs }),
        },
      };
    },

    createState(open: OpenRequest): DeepgramState {
      const s = open.settings ?? {};
      return {
        requestId: '',
        model: typeof s['model'] === 'string' ? s['model'] : 'default',
        channels: open.format.channels ?? 1,
        vadEvents: s['vad_events'] === true,
        utteranceEndMs: typeof s['utterance_end_ms'] === 'number' ? s['utterance_end_ms'] : undefined,
        created: new Date(now()).toISOString(),
        sha256: createHash('sha256'),
      };
    },

    onClientMessage(state: DeepgramState, data: Buffer, isBinary: boolean): ClientCommand[] {
      if (isBinary) {
        // An empty binary message is Deepgram's older way to close the stream.
        if (data.length === 0) return [{ kind: 'end' }];
        state.sha256.update(data);
        return [{ kind: 'audio', bytes: data }];
      }
      const parsed = parseJsonObject(data);
      if (!parsed.ok) return [invalid('INVALID_JSON', `${parsed.message}; text messages are KeepAlive, Finalize or CloseStream`)];
      const type = parsed.value['type'];
      switch (type) {
        case 'KeepAlive':
          return [{ kind: 'keepalive' }];
        case 'Finalize':
          return [{ kind: 'flush' }];
        case 'CloseStream':
          return [{ kind: 'end' }];
        case 'Configure':
          return [invalid('UNSUPPORTED_MESSAGE', 'Configure is not supported: set options in the query string')];
        default:
          return [invalid('UNKNOWN_MESSAGE', `unknown message type ${JSON.stringify(type ?? null)}; expected KeepAlive, Finalize or CloseStream`)];
      }
    },

    render(state: DeepgramState, event: SessionEvent): string[] {
      switch (event.type) {
        case 'session.begin':
          state.requestId = event.sessionId;
          state.model = event.model;
          return [];
        case 'vad.speech_start':
          return state.vadEvents ? [JSON.stringify({ type: 'SpeechStarted', channel: channelIndex(), timestamp: round(event.start) })] : [];
        case 'transcript.partial':
          return [resultsOf(state, { start: event.start, end: event.end, text: event.text, words: spreadWords(event.text, event.start, event.end) }, { isFinal: false, speechFinal: false, fromFinalize: false })];
        case 'transcript.final': {
          const f: RealtimeFinal = event.final;
          const out = [resultsOf(state, f, { isFinal: true, speechFinal: f.reason === 'pause', fromFinalize: event.flushed })];
          if (state.utteranceEndMs !== undefined && f.reason === 'pause') {
            const lastWordEnd = f.words.at(-1)?.end ?? f.end;
            out.push(JSON.stringify({ type: 'UtteranceEnd', channel: channelIndex(), last_word_end: round(lastWordEnd) }));
          }
          return out;
        }
        case 'session.end':
          return [JSON.stringify({
            type: 'Metadata', transaction_key: 'deprecated', request_id: state.requestId || event.sessionId, sha256: state.sha256.copy().digest('hex'),
            created: state.created, duration: round(event.audioSeconds), channels: state.channels,
          })];
        case 'warning':
          return DEEPGRAM_CLIENT_ERROR_CODES.has(event.code) ? [JSON.stringify({ type: 'Error', err_code: event.code, err_msg: event.message, description: event.message })] : [];
        case 'error':
          return [JSON.stringify({ type: 'Error', err_code: event.code, err_msg: event.message, description: event.message })];
        case 'session.updated':
        case 'vad.speech_end':
        case 'buffer.cleared':
          return [];
        default:
          return assertNever(event, 'session event');
      }
    },
  };
}

export const deepgramDialect = createDeepgramDialect();
