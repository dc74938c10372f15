/**
 * OpenAI Realtime transcription dialect, `WS /v1/realtime?intent=transcription`: the client configures with
 * `session.update` (GA shape, `session.type = "transcription"`) or the beta `transcription_session.update`, appends
 * base64 audio with `input_audio_buffer.append`, and may `commit` (finalise now) or `clear`. The server answers
 * `session.created`/`updated` (beta: `transcription_session.*`), `input_audio_buffer.speech_started`/`stopped`/
 * `committed`/`cleared`, and per item `conversation.item.input_audio_transcription.delta`/`completed`, one item id
 * per utterance from speech start to completion. Errors are `error` events and the session goes on, as OpenAI's do.
 *
 * Our partials are whole hypotheses that may revise earlier words; OpenAI deltas only append. A partial that
 * extends what was sent becomes a delta of the new text; a revision sends nothing, and `completed` carries the
 * final transcript, which is what clients are told to trust.
 */
import { randomBytes } from 'node:crypto';
import { assertNever } from '../../../core/errors.js';
import { ENDPOINTER_DEFAULTS, type AudioInputFormat } from '../../../engines/streaming/index.js';
import { badRequest } from '../../errors.js';
import type { ClientCommand, OpenRequest, RealtimeDialectAdapter, SessionEvent, SessionOptions, UpgradeRequest } from '../dialect.js';
import { decodeBase64, objectField, parseJsonObject, type JsonObject } from './client-json.js';
import { authorizationValue, credentialOf } from './credentials.js';
import { QueryOptions, RESUME_PARAMETERS, readResume } from './query-options.js';
import { chooseLanguage, chooseModel } from './session-choices.js';

export const OPENAI_PATH = '/v1/realtime';
const KNOWN = new Set<string>(['intent', ...RESUME_PARAMETERS]);
/** Browsers cannot set headers: the SDK offers `realtime` plus the key as `openai-insecure-api-key.<key>`. */
const KEY_PROTOCOL = 'openai-insecure-api-key.';
const BETA_PROTOCOL = 'openai-beta.realtime-v1';
/** OpenAI's rate for `audio/pcm` / `pcm16`. */
export const OPENAI_PCM_RATE = 24000;

function isOpenAiModel(id: string): boolean {
  return /^(whisper-1|gpt-[a-z0-9.-]*transcribe[a-z0-9.-]*|gpt-realtime[a-z0-9.-]*|gpt-4o[a-z0-9.-]*)$/.test(id);
}

interface ItemRecord {
  readonly id: string;
  /** Text already sent as deltas. */
  sent: string;
  stopped: boolean;
  committed: boolean;
  completed: boolean;
}

/** Finished items remembered, so a VAD event arriving after its utterance's final still finds its item. */
const FINISHED_ITEMS_KEPT = 16;

interface TurnDetectionEcho {
  readonly type: 'server_vad' | 'semantic_vad';
  readonly eagerness?: string;
}

export interface OpenAiState {
  /** Beta clients (OpenAI-Beta: realtime=v1) get the `transcription_session.*` event names. */
  readonly legacy: boolean;
  readonly idPrefix: string;
  sessionId: string;
  nextId: number;
  format: AudioInputFormat;
  options: SessionOptions;
  turnDetection: TurnDetectionEcho | null;
  transcriptionModel: string | null;
  prompt: string;
  /** The last update was `transcription_session.update`: answer in kind. */
  answerLegacyUpdate: boolean;
  /** Per utterance: its item and what was sent for it (kept a while after its final, for late VAD events). */
  readonly items: Map<number, ItemRecord>;
  lastItemId: string | null;
  /** Audio bytes appended since the last commit, clear or final: committing none is OpenAI's commit_empty error. */
  bytesSinceCommit: number;
  /** event_id of the client event an error answers. */
  errorEventId: string | null;
}

const invalid = (code: string, message: string): ClientCommand => ({ kind: 'invalid', code, message, fatal: false });

/** The OpenAI error codes this dialect answers with (all `invalid_request_error`, the session goes on). */
export const OPENAI_CLIENT_ERROR_CODES: ReadonlySet<string> = new Set([
  'invalid_json', 'invalid_event', 'unknown_event_type', 'invalid_value', 'missing_required_parameter', 'unsupported_event',
  'input_audio_buffer_commit_empty', 'invalid_audio',
  // The session bridge's answer to a session.update after audio flowed.
  'configure_after_audio',
]);

type Update = { readonly ok: true; readonly format?: AudioInputFormat; readonly options: SessionOptions; readonly turnDetection?: TurnDetectionEcho | null; readonly model?: string | null; readonly prompt?: string }
  | { readonly ok: false; readonly code: string; readonly message: string };

const fail = (code: string, message: string): Update => ({ ok: false, code, message });

function parseFormat(raw: unknown): AudioInputFormat | string {
  if (raw === 'pcm16') return { encoding: 'pcm_s16le', sampleRate: OPENAI_PCM_RATE };
  if (raw === 'g711_ulaw') return { encoding: 'mulaw', sampleRate: 8000 };
  if (raw === 'g711_alaw') return { encoding: 'alaw', sampleRate: 8000 };
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    const f = raw as JsonObject;
    if (f['type'] === 'audio/pcmu') return { encoding: 'mulaw', sampleRate: 8000 };
    if (f['type'] === 'audio/pcma') return { encoding: 'alaw', sampleRate: 8000 };
    if (f['type'] === 'audio/pcm' || f['type'] === undefined) {
      const rate = f['rate'] ?? OPENAI_PCM_RATE;
      // OpenAI takes 24 kHz only; other whole rates from 8 to 48 kHz are a Dalston extension.
      if (typeof rate !== 'number' || !Number.isInteger(rate) || rate < 8000 || rate > 48000) return `audio format rate must be ${OPENAI_PCM_RATE}, got ${JSON.stringify(rate)}`;
      return { encoding: 'pcm_s16le', sampleRate: rate };
    }
  }
  return `unsupported input audio format ${JSON.stringify(raw)}: use audio/pcm (24 kHz), audio/pcmu or audio/pcma (beta: pcm16, g711_ulaw, g711_alaw)`;
}

function num(o: JsonObject, name: string, min: number, max: number): number | undefined | string {
  const v = o[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) return `turn_detection.${name} must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`;
  return v;
}

function parseTurnDetection(raw: unknown): { options: SessionOptions; echo: TurnDetectionEcho | null } | string {
  if (raw === null) return { options: { commitStrategy: 'manual' }, echo: null };
  if (typeof raw !== 'object' || Array.isArray(raw)) return 'turn_detection must be an object or null';
  const t = raw as JsonObject;
  const type = t['type'] ?? 'server_vad';
  if (type === 'semantic_vad') {
    return { options: { commitStrategy: 'vad' }, echo: { type: 'semantic_vad', eagerness: typeof t['eagerness'] === 'string' ? t['eagerness'] : 'auto' } };
  }
  if (type !== 'server_vad') return `turn_detection.type must be server_vad, semantic_vad or null, got ${JSON.stringify(type)}`;
  const threshold = num(t, 'threshold', 0.01, 0.99);
  const pad = num(t, 'prefix_padding_ms', 0, 2000);
  const silence = num(t, 'silence_duration_ms', 32, 10000);
  for (const v of [threshold, pad, silence]) if (typeof v === 'string') return v;
  return {
    options: {
      commitStrategy: 'vad',
      ...(typeof threshold === 'number' ? { vadThreshold: threshold } : {}),
      ...(typeof pad === 'number' ? { speechPadMs: Math.round(pad) } : {}),
      ...(typeof silence === 'number' ? { minSilenceMs: Math.round(silence) } : {}),
    },
    echo: { type: 'server_vad' },
  };
}

/** One update, GA (`session.audio.input.*`) or beta (`input_audio_format`, `input_audio_transcription`, `turn_detection`) fields. */
function parseUpdate(session: JsonObject): Update {
  if (session['type'] !== undefined && session['type'] !== 'transcription') {
    return fail('invalid_value', `session.type ${JSON.stringify(session['type'])} is not supported here: this endpoint serves transcription sessions (type "transcription")`);
  }
  const input = objectField(objectField(session, 'audio') ?? {}, 'input') ?? {};
  let options: SessionOptions = {};
  let format: AudioInputFormat | undefined;
  const rawFormat = input['format'] ?? session['input_audio_format'];
  if (rawFormat !== undefined) {
    const f = parseFormat(rawFormat);
    if (typeof f === 'string') return fail('invalid_value', f);
    format = f;
  }
  let turnDetection: TurnDetectionEcho | null | undefined;
  const rawTurn = 'turn_detection' in input ? input['turn_detection'] : session['turn_detection'];
  if (rawTurn !== undefined) {
    const t = parseTurnDetection(rawTurn);
    if (typeof t === 'string') return fail('invalid_value', t);
    options = { ...options, ...t.options };
    turnDetection = t.echo;
  }
  let model: string | null | undefined;
  let prompt: string | undefined;
  const rawTranscription = 'transcription' in input ? input['transcription'] : session['input_audio_transcription'];
  if (rawTranscription !== undefined && rawTranscription !== null) {
    if (typeof rawTranscription !== 'object' || Array.isArray(rawTranscription)) return fail('invalid_value', 'transcription must be an object');
    const tr = rawTranscription as JsonObject;
    const m = tr['model'];
    if (m !== undefined && typeof m !== 'string') return fail('invalid_value', 'transcription.model must be a string');
    const choice = chooseModel(m, isOpenAiModel);
    if (!choice.ok) return fail('invalid_value', choice.message);
    if (choice.model !== undefined) options = { ...options, model: choice.model };
    if (m !== undefined) model = m;
    const lang = tr['language'];
    if (lang !== undefined && lang !== null && typeof lang !== 'string') return fail('invalid_value', 'transcription.language must be a string');
    const language = chooseLanguage(lang ?? undefined);
    if (!language.ok) return fail('invalid_value', language.message);
    if (language.language !== undefined) options = { ...options, language: language.language };
    if (typeof tr['prompt'] === 'string') prompt = tr['prompt'];
  }
  return {
    ok: true, options,
    ...(format === undefined ? {} : { format }),
    ...(turnDetection === undefined ? {} : { turnDetection }),
    ...(model === undefined ? {} : { model }),
    ...(prompt === undefined ? {} : { prompt }),
  };
}

function formatEcho(f: AudioInputFormat, legacy: boolean): unknown {
  if (f.encoding === 'mulaw') return legacy ? 'g711_ulaw' : { type: 'audio/pcmu' };
  if (f.encoding === 'alaw') return legacy ? 'g711_alaw' : { type: 'audio/pcma' };
  return legacy ? 'pcm16' : { type: 'audio/pcm', rate: f.sampleRate };
}

function turnEcho(state: OpenAiState): unknown {
  const td = state.turnDetection;
  if (td === null) return null;
  if (td.type === 'semantic_vad') return { type: 'semantic_vad', eagerness: td.eagerness ?? 'auto' };
  const o = state.options;
  return {
    type: 'server_vad',
    threshold: o.vadThreshold ?? ENDPOINTER_DEFAULTS.threshold,
    prefix_padding_ms: o.speechPadMs ?? ENDPOINTER_DEFAULTS.speechPadMs,
    silence_duration_ms: o.minSilenceMs ?? ENDPOINTER_DEFAULTS.minSilenceMs,
  };
}

function sessionObject(state: OpenAiState, legacy: boolean): Record<string, unknown> {
  const transcription = { model: state.transcriptionModel ?? state.options.model ?? null, language: state.options.language ?? null, prompt: state.prompt };
  if (legacy) {
    return {
      id: state.sessionId, object: 'realtime.transcription_session', input_audio_format: formatEcho(state.format, true),
      input_audio_transcription: transcription, turn_detection: turnEcho(state), input_audio_noise_reduction: null, include: null,
    };
  }
  return {
    type: 'transcription', id: state.sessionId, object: 'realtime.transcription_session',
    audio: { input: { format: formatEcho(state.format, false), transcription, noise_reduction: null, turn_detection: turnEcho(state) } },
    include: null,
  };
}

function eventId(state: OpenAiState): string {
  return `event_${state.idPrefix}${(state.nextId++).toString(36)}`;
}

function itemFor(state: OpenAiState, utterance: number): ItemRecord {
  let item = state.items.get(utterance);
  if (item === undefined) {
    item = { id: `item_${state.idPrefix}${utterance.toString(36).padStart(4, '0')}`, sent: '', stopped: false, committed: false, completed: false };
    state.items.set(utterance, item);
  }
  return item;
}

function stoppedEvent(state: OpenAiState, item: ItemRecord, endSeconds: number): string[] {
  if (item.stopped || state.turnDetection === null) return [];
  item.stopped = true;
  return [JSON.stringify({ type: 'input_audio_buffer.speech_stopped', event_id: eventId(state), audio_end_ms: Math.round(endSeconds * 1000), item_id: item.id })];
}

function committedEvent(state: OpenAiState, item: ItemRecord): string[] {
  if (item.committed) return [];
  item.committed = true;
  const previous = state.lastItemId;
  state.lastItemId = item.id;
  return [JSON.stringify({ type: 'input_audio_buffer.committed', event_id: eventId(state), previous_item_id: previous, item_id: item.id })];
}

function errorEvent(state: OpenAiState, type: string, code: string, message: string): string {
  const clientEventId = state.errorEventId;
  state.errorEventId = null;
  return JSON.stringify({ type: 'error', event_id: eventId(state), error: { type, code, message, param: null, event_id: clientEventId } });
}

/** Keeps the item map bounded over a long session: finished items older than the last few are dropped. */
function prune(state: OpenAiState, utterance: number): void {
  for (const [u, item] of state.items) if (item.completed && u < utterance - FINISHED_ITEMS_KEPT) state.items.delete(u);
}

export const openAiDialect: RealtimeDialectAdapter<OpenAiState> = {
  dialect: 'openai',
  path: OPENAI_PATH,

  parseOpen(req: UpgradeRequest): OpenRequest {
    const q = new QueryOptions(req.query, 'OpenAI Realtime');
    if (q.str('model') !== undefined) {
      throw badRequest('conversation sessions (?model=…) are not supported: connect with ?intent=transcription');
    }
    q.onlyKnown(KNOWN);
    if (q.str('intent') !== 'transcription') throw badRequest('connect with ?intent=transcription: only transcription sessions are served');
    const bearer = authorizationValue(req.headers['authorization'], ['bearer']);
    const keyProtocol = req.protocols.find((p) => p.startsWith(KEY_PROTOCOL));
    const credential = credentialOf(bearer ?? keyProtocol?.slice(KEY_PROTOCOL.length));
    const legacy = /realtime=v1/.test(req.headers['openai-beta'] ?? '') || req.protocols.includes(BETA_PROTOCOL);
    const protocol = req.protocols.includes('realtime') ? 'realtime' : undefined;
    return {
      credential,
      format: { encoding: 'pcm_s16le', sampleRate: OPENAI_PCM_RATE },
      // OpenAI transcription sessions start with server VAD on.
      options: { commitStrategy: 'vad' },
      ...(protocol === undefined ? {} : { protocol }),
      ...readResume(q),
      settings: { legacy },
    };
  },

  createState(open: OpenRequest): OpenAiState {
    const legacy = open.settings?.['legacy'] === true;
    return {
      legacy,
      idPrefix: randomBytes(6).toString('hex'),
      sessionId: '',
      nextId: 0,
      format: open.format,
      options: open.options,
      turnDetection: open.options.commitStrategy === 'manual' ? null : { type: 'server_vad' },
      transcriptionModel: null,
      prompt: '',
      answerLegacyUpdate: legacy,
      items: new Map(),
      lastItemId: null,
      bytesSinceCommit: 0,
      errorEventId: null,
    };
  },

  onClientMessage(state: OpenAiState, data: Buffer, isBinary: boolean): ClientCommand[] {
    if (isBinary) return [invalid('invalid_event', 'binary frames are not accepted: send audio as input_audio_buffer.append with base64 audio')];
    const parsed = parseJsonObject(data);
    if (!parsed.ok) return [invalid('invalid_json', parsed.message)];
    const m = parsed.value;
    state.errorEventId = typeof m['event_id'] === 'string' ? m['event_id'] : null;
    const type = m['type'];
    switch (type) {
      case 'input_audio_buffer.append': {
        const audio = m['audio'];
        if (typeof audio !== 'string') return [invalid('missing_required_parameter', 'input_audio_buffer.append needs audio (base64)')];
        const bytes = decodeBase64(audio);
        if (bytes === undefined) return [invalid('invalid_value', 'audio is not valid base64')];
        if (bytes.length === 0) return [];
        state.bytesSinceCommit += bytes.length;
        return [{ kind: 'audio', bytes }];
      }
      case 'input_audio_buffer.commit':
        if (state.bytesSinceCommit === 0) return [invalid('input_audio_buffer_commit_empty', 'Error committing input audio buffer: the buffer is empty.')];
        state.bytesSinceCommit = 0;
        return [{ kind: 'flush' }];
      case 'input_audio_buffer.clear':
        state.bytesSinceCommit = 0;
        return [{ kind: 'clear' }];
      case 'session.update':
      case 'transcription_session.update': {
        const session = objectField(m, 'session');
        if (session === undefined) return [invalid('missing_required_parameter', `${type} needs a session object`)];
        const update = parseUpdate(session);
        if (!update.ok) return [invalid(update.code, update.message)];
        state.answerLegacyUpdate = type === 'transcription_session.update';
        if (update.turnDetection !== undefined) state.turnDetection = update.turnDetection;
        if (update.model !== undefined) state.transcriptionModel = update.model;
        if (update.prompt !== undefined) state.prompt = update.prompt;
        return [{ kind: 'configure', options: update.options, ...(update.format === undefined ? {} : { format: update.format }) }];
      }
      default:
        if (typeof type === 'string' && /^(conversation|response|output_audio_buffer)\./.test(type)) {
          return [invalid('unsupported_event', `${type} is not supported in a transcription session`)];
        }
        return [invalid('invalid_event', `unknown event type ${JSON.stringify(type ?? null)}`)];
    }
  },

  render(state: OpenAiState, event: SessionEvent): string[] {
    switch (event.type) {
      case 'session.begin':
        state.sessionId = event.sessionId;
        state.format = event.format;
        state.options = event.options;
        return [JSON.stringify({ type: state.legacy ? 'transcription_session.created' : 'session.created', event_id: eventId(state), session: sessionObject(state, state.legacy) })];
      case 'session.updated': {
        state.format = event.format;
        state.options = event.options;
        if (event.options.commitStrategy === 'manual') state.turnDetection = null;
        else if (state.turnDetection === null) state.turnDetection = { type: 'server_vad' };
        const legacy = state.answerLegacyUpdate;
        return [JSON.stringify({ type: legacy ? 'transcription_session.updated' : 'session.updated', event_id: eventId(state), session: sessionObject(state, legacy) })];
      }
      case 'vad.speech_start': {
        const item = itemFor(state, event.utterance);
        if (state.turnDetection === null || item.completed) return [];
        return [JSON.stringify({ type: 'input_audio_buffer.speech_started', event_id: eventId(state), audio_start_ms: Math.round(event.start * 1000), item_id: item.id })];
      }
      case 'vad.speech_end': {
        // The engine may report the end of speech before or after the utterance's final; OpenAI's order is
        // speech_stopped → committed → completed, so whichever comes first sends stopped and committed, once.
        const item = itemFor(state, event.utterance);
        if (state.turnDetection === null || item.completed) return [];
        return [...stoppedEvent(state, item, event.end), ...committedEvent(state, item)];
      }
      case 'transcript.partial': {
        const item = itemFor(state, event.utterance);
        // Deltas are append-only. Recognisers end every partial with punctuation that the next partial moves
        // ("the weather." → "the weather today."), so it is held back; without that only the first delta would go out.
        const stable = event.text.replace(/[\s.,;:!?…]+$/u, '');
        if (item.completed || !stable.startsWith(item.sent) || stable.length === item.sent.length) return [];
        const delta = stable.slice(item.sent.length);
        item.sent = stable;
        return [JSON.stringify({ type: 'conversation.item.input_audio_transcription.delta', event_id: eventId(state), item_id: item.id, content_index: 0, delta })];
      }
      case 'transcript.final': {
        const f = event.final;
        const item = itemFor(state, f.utterance);
        if (item.completed) return []; // a repeated final (after a failover the bridge forwards each once; this is the belt)
        // A final at a pause ends the speech; a client commit or the length cap does not (speech may go on).
        const out = f.reason === 'pause' ? stoppedEvent(state, item, f.end) : [];
        out.push(...committedEvent(state, item));
        out.push(JSON.stringify({
          type: 'conversation.item.input_audio_transcription.completed', event_id: eventId(state), item_id: item.id,
          content_index: 0, transcript: f.text,
          usage: { type: 'duration', seconds: Math.round(Math.max(0, f.end - f.start) * 1000) / 1000 },
        }));
        item.completed = true;
        prune(state, f.utterance);
        state.bytesSinceCommit = 0;
        return out;
      }
      case 'buffer.cleared':
        return [JSON.stringify({ type: 'input_audio_buffer.cleared', event_id: eventId(state) })];
      case 'warning':
        return OPENAI_CLIENT_ERROR_CODES.has(event.code) ? [errorEvent(state, 'invalid_request_error', event.code, event.message)] : [];
      case 'error': {
        const type = event.closeCode === 4400 ? 'invalid_request_error' : event.closeCode === 4401 ? 'authentication_error' : 'server_error';
        return [errorEvent(state, type, event.code, event.message)];
      }
      case 'session.end':
        return [];
      default:
        return assertNever(event, 'session event');
    }
  },
};
