/**
 * Dalston's own real-time dialect, `WS /v1/audio/transcriptions/stream`. Options in the query (`model`, `language`,
 * `encoding`, `sample_rate`, `commit_strategy`, `partials`, VAD knobs, `retention`, `enhance_on_end`,
 * `enhance_model`, `resume`, `resume_offset`); credential `Authorization: Bearer <key>` or `?token=<single-use>`.
 * Binary frames are audio; text frames are JSON controls `{type: config|flush|clear|end|keepalive}`. Bad JSON and
 * unknown types close the session with 4400 and say why: a client that sends them is broken, not unlucky.
 */
import { AUDIO_ENCODINGS, G711_RATE, MAX_PCM_RATE, MIN_PCM_RATE, type AudioEncoding, type AudioInputFormat } from '../../../engines/streaming/index.js';
import { HttpError } from '../../errors.js';
import { parseRetention } from '../../retention.js';
import type { ClientCommand, OpenRequest, PresentedCredential, RealtimeDialectAdapter, SessionEvent, SessionOptions, UpgradeRequest } from '../dialect.js';

export const NATIVE_PATH = '/v1/audio/transcriptions/stream';

const bad = (message: string) => new HttpError(400, 'invalid_request', message);

function boolParam(q: URLSearchParams, name: string): boolean | undefined {
  const raw = q.get(name);
  if (raw === null) return undefined;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw bad(`${name} must be true or false, got "${raw}"`);
}

/**
 * `retention`: true or false (keep the session's audio and transcript or not), or the job grammar (keep, none, or a
 * duration such as 30d, 12h, 90m, 45s) for how long they are kept after the session ends.
 */
function retentionParam(q: URLSearchParams): { retention?: boolean; retentionSeconds?: number } {
  const raw = q.get('retention');
  if (raw === null || raw === 'true' || raw === '1' || raw === 'false' || raw === '0') {
    const on = boolParam(q, 'retention');
    return on === undefined ? {} : { retention: on };
  }
  let seconds: number;
  try {
    seconds = parseRetention(raw);
  } catch (err) {
    throw bad(err instanceof Error ? `retention: ${err.message}` : String(err));
  }
  return seconds === 0 ? { retention: false } : { retention: true, retentionSeconds: seconds };
}

function numParam(q: URLSearchParams, name: string, min: number, max: number, integer: boolean): number | undefined {
  const raw = q.get(name);
  if (raw === null) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw bad(`${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

function strParam(q: URLSearchParams, name: string, pattern: RegExp): string | undefined {
  const raw = q.get(name);
  if (raw === null || raw === '') return undefined;
  if (!pattern.test(raw)) throw bad(`${name} "${raw}" is not valid`);
  return raw;
}

function encodingOf(raw: string | null): AudioEncoding {
  if (raw === null) return 'pcm_s16le';
  if (!(AUDIO_ENCODINGS as readonly string[]).includes(raw)) throw bad(`encoding must be one of ${AUDIO_ENCODINGS.join(', ')}, got "${raw}"`);
  return raw as AudioEncoding;
}

function credentialOf(req: UpgradeRequest): PresentedCredential {
  const auth = req.headers['authorization'];
  if (auth !== undefined && auth !== '') {
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(auth);
    return { kind: 'api_key', key: m?.[1] ?? '' };
  }
  const token = req.query.get('token');
  if (token !== null && token !== '') return { kind: 'token', token };
  return { kind: 'none' };
}

const MODEL = /^[A-Za-z0-9._:/-]{1,128}$/;

/** Options shared by the query and a `config` message (snake_case names in both). */
function optionsFrom(get: (name: string) => string | null): SessionOptions {
  const q = { get } as URLSearchParams;
  const commit = get('commit_strategy');
  if (commit !== null && commit !== 'vad' && commit !== 'manual') throw bad(`commit_strategy must be vad or manual, got "${commit}"`);
  const language = strParam(q, 'language', /^(auto|[a-z]{2,3}(-[A-Za-z0-9]{2,8})?)$/);
  const o: Record<string, unknown> = {
    model: strParam(q, 'model', MODEL),
    language: language === 'auto' ? undefined : language,
    commitStrategy: commit ?? undefined,
    partials: boolParam(q, 'partials'),
    vadThreshold: numParam(q, 'vad_threshold', 0, 1, false),
    minSpeechMs: numParam(q, 'min_speech_ms', 0, 10_000, true),
    minSilenceMs: numParam(q, 'min_silence_ms', 0, 10_000, true),
    speechPadMs: numParam(q, 'speech_pad_ms', 0, 2_000, true),
    maxUtteranceMs: numParam(q, 'max_utterance_ms', 1_000, 120_000, true),
    ...retentionParam(q),
    enhanceOnEnd: boolParam(q, 'enhance_on_end'),
    enhanceModel: strParam(q, 'enhance_model', MODEL),
  };
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

function formatFrom(get: (name: string) => string | null): AudioInputFormat {
  const encoding = encodingOf(get('encoding'));
  const rate = numParam({ get } as URLSearchParams, 'sample_rate', MIN_PCM_RATE, MAX_PCM_RATE, true) ?? (encoding === 'pcm_s16le' ? 16000 : G711_RATE);
  if (encoding !== 'pcm_s16le' && rate !== G711_RATE) throw bad(`sample_rate of ${encoding} must be ${G711_RATE}, got ${rate}`);
  return { encoding, sampleRate: rate, channels: 1 };
}

export function parseNativeOpen(req: UpgradeRequest): OpenRequest {
  const q = req.query;
  const get = (name: string) => q.get(name);
  const resume = strParam(q, 'resume', /^[A-Za-z0-9_-]{1,64}$/);
  const resumeOffset = numParam(q, 'resume_offset', 0, Number.MAX_SAFE_INTEGER, true);
  if (resumeOffset !== undefined && resume === undefined) throw bad('resume_offset needs resume=<session id>');
  return {
    credential: credentialOf(req),
    format: formatFrom(get),
    options: optionsFrom(get),
    ...(resume !== undefined && { resumeSessionId: resume }),
    ...(resumeOffset !== undefined && { resumeOffsetSamples: resumeOffset }),
  };
}

function parseControl(text: string): ClientCommand {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return { kind: 'invalid', code: 'invalid_json', message: 'text messages must be JSON objects like {"type":"flush"}', fatal: true };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    return { kind: 'invalid', code: 'invalid_message', message: 'text messages must be JSON objects with a "type"', fatal: true };
  }
  const m = msg as Record<string, unknown>;
  switch (m['type']) {
    case 'flush':
      return { kind: 'flush' };
    case 'clear':
      return { kind: 'clear' };
    case 'end':
      return { kind: 'end' };
    case 'keepalive':
      return { kind: 'keepalive' };
    case 'config': {
      const get = (name: string): string | null => {
        const val = m[name];
        return typeof val === 'string' || typeof val === 'number' || typeof val === 'boolean' ? String(val) : null;
      };
      try {
        const hasFormat = m['encoding'] !== undefined || m['sample_rate'] !== undefined;
        return { kind: 'configure', options: optionsFrom(get), ...(hasFormat && { format: formatFrom(get) }) };
      } catch (err) {
        return { kind: 'invalid', code: 'invalid_config', message: err instanceof Error ? err.message : String(err), fatal: true };
      }
    }
    default:
      return {
        kind: 'invalid', code: 'unknown_message_type',
        message: `unknown message type ${JSON.stringify(m['type'])}; expected config, flush, clear, end or keepalive`, fatal: true,
      };
  }
}

const json = (o: Record<string, unknown>): string => JSON.stringify(o);

export function renderNative(event: SessionEvent): string[] {
  switch (event.type) {
    case 'session.begin':
      return [json({
        type: 'session.begin', session_id: event.sessionId, model: event.model, encoding: event.format.encoding, sample_rate: event.format.sampleRate,
        ...snakeOptions(event.options),
      })];
    case 'session.updated':
      return [json({ type: 'session.updated', encoding: event.format.encoding, sample_rate: event.format.sampleRate, ...snakeOptions(event.options) })];
    case 'vad.speech_start':
      return [json({ type: 'vad.speech_start', utterance: event.utterance, start: event.start })];
    case 'vad.speech_end':
      return [json({ type: 'vad.speech_end', utterance: event.utterance, start: event.start, end: event.end })];
    case 'transcript.partial':
      return [json({ type: 'transcript.partial', utterance: event.utterance, text: event.text, start: event.start, end: event.end })];
    case 'transcript.final': {
      const f = event.final;
      return [json({
        type: 'transcript.final', utterance: f.utterance, text: f.text, start: f.start, end: f.end, reason: f.reason, flushed: event.flushed,
        words: f.words.map((w) => ({ word: w.text, start: w.start, end: w.end, ...(w.confidence !== undefined && { confidence: w.confidence }) })),
      })];
    }
    case 'buffer.cleared':
      return [json({ type: 'buffer.cleared' })];
    case 'warning':
      return [json({ type: 'warning', code: event.code, message: event.message })];
    case 'error':
      return [json({ type: 'error', code: event.code, message: event.message, ...(event.closeCode !== 0 && { close_code: event.closeCode }) })];
    case 'session.end':
      return [json({
        type: 'session.end', session_id: event.sessionId, total_audio_seconds: event.audioSeconds, text: event.text,
        utterances: event.finals.map((f) => ({ utterance: f.utterance, text: f.text, start: f.start, end: f.end })),
      })];
  }
}

function snakeOptions(o: SessionOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {
    language: o.language ?? null, commit_strategy: o.commitStrategy, partials: o.partials, retention: o.retention, enhance_on_end: o.enhanceOnEnd,
  };
  if (o.enhanceModel !== undefined) out['enhance_model'] = o.enhanceModel;
  if (o.vadThreshold !== undefined) out['vad_threshold'] = o.vadThreshold;
  if (o.minSpeechMs !== undefined) out['min_speech_ms'] = o.minSpeechMs;
  if (o.minSilenceMs !== undefined) out['min_silence_ms'] = o.minSilenceMs;
  if (o.speechPadMs !== undefined) out['speech_pad_ms'] = o.speechPadMs;
  if (o.maxUtteranceMs !== undefined) out['max_utterance_ms'] = o.maxUtteranceMs;
  return out;
}

export const nativeDialect: RealtimeDialectAdapter<null> = {
  dialect: 'native',
  path: NATIVE_PATH,
  parseOpen: parseNativeOpen,
  createState: () => null,
  onClientMessage(_state, data, isBinary) {
    if (isBinary) return [{ kind: 'audio', bytes: data }];
    return [parseControl(data.toString('utf8'))];
  },
  render: (_state, event) => renderNative(event),
};

