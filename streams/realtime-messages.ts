/**
 * The internal real-time session protocol: every message of the live path, whatever dialect the client speaks
 * (native, ElevenLabs, OpenAI, Deepgram). The gateway translates its client's dialect to these and back.
 *
 *   gateway ──realtime.input (key: session id)──▶ streaming engine ──realtime.replies.<gateway>──▶ gateway
 *   gateway, engine ──realtime.events (key: session id)──▶ session actor ──sessions.state (compacted)
 *
 * Times on the wire: `at`/`sentAt` are epoch ms (for per-hop latency); `start`/`end` are seconds of session audio.
 * Audio on the wire is always 16 kHz mono pcm_s16le (the gateway decodes and resamples the client's format).
 */
import { SCHEMA_VERSION, checkAnalyticsMessage, checkJobEvent } from './messages.js';
import { arrayOf, bool, bytes, int, literal, num, object, oneOf, optional, str, union } from './validate.js';

const v = literal(SCHEMA_VERSION);

/** Sample rate of the audio in realtime.input. */
export const REALTIME_SAMPLE_RATE = 16000;

export const REALTIME_DIALECTS = ['native', 'elevenlabs', 'openai', 'deepgram'] as const;
export type RealtimeDialect = (typeof REALTIME_DIALECTS)[number];

/** How utterances are closed: by the VAD (and flush/length cap), or only by the client's commit/flush and the cap. */
export const COMMIT_STRATEGIES = ['vad', 'manual'] as const;

/** A session's recognition settings after the gateway resolved the dialect's options (validated there). */
const sessionConfig = object({
  /** Installed catalogue model that decodes this session. */
  model: str,
  /** ISO 639-1 code; absent: the model's default or detection. */
  language: optional(str),
  commitStrategy: oneOf(COMMIT_STRATEGIES),
  /** Emit partials (Deepgram interim_results=false turns them off). */
  partials: bool,
  /** engines/streaming EndpointerOptions (absent: its defaults). */
  vadThreshold: optional(num),
  minSpeechMs: optional(int),
  minSilenceMs: optional(int),
  speechPadMs: optional(int),
  maxUtteranceMs: optional(int),
  /** Keep the session's audio and transcript (artifact store, realtime_sessions row). */
  retention: bool,
  /**
   * With retention: seconds the session's data is kept after it ends (its own `retention` duration, or its tenant's
   * retention_days); 0 deletes it as soon as it has ended. Absent: kept until deleted.
   */
  retentionSeconds: optional(int),
  /** Turn the recording into a batch job when the session ends. */
  enhanceOnEnd: bool,
  /** Batch model for enhance_on_end (absent: the batch default). */
  enhanceModel: optional(str),
  /** What the client sent before the gateway converted it, e.g. `pcm_s16le/8000/1` (for the record only). */
  inputFormat: str,
  dialect: oneOf(REALTIME_DIALECTS),
});
export type RealtimeSessionConfig = ReturnType<typeof sessionConfig>;

/** Two configurations are the same when every field is (the config is flat; absent and undefined are alike). */
export function sameSessionConfig(a: RealtimeSessionConfig, b: RealtimeSessionConfig): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof RealtimeSessionConfig>;
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}

/** Where the session resumes after a failover (engines/streaming TranscriberCheckpoint, version 1). */
const checkpoint = object({ version: literal(1), audioOffsetSamples: int, nextUtterance: int, finalizedCount: int });
export type RealtimeCheckpoint = ReturnType<typeof checkpoint>;

const word = object({ text: str, start: num, end: num, confidence: optional(num) });
export type RealtimeWord = ReturnType<typeof word>;

const finalUtterance = object({
  utterance: int, text: str, start: num, end: num, words: arrayOf(word),
  reason: oneOf(['pause', 'max_length', 'flush', 'end'] as const),
});
export type RealtimeFinal = ReturnType<typeof finalUtterance>;

// ---- topic realtime.input (key: session id) → the streaming engine that owns the partition ----
/** First message of a session (and again after a resume through another gateway: same id, new reply topic). */
const sessionStart = object({
  v, type: literal('rt.session.start'), sessionId: str, tenantId: str, keyId: str, requestId: str,
  gatewayId: str, replyTopic: str, config: sessionConfig, startedAt: int, traceparent: optional(str),
});
/** ~100 ms of 16 kHz s16le mono; `offset` is the session sample position of its first sample. */
const audioFrame = object({ v, type: literal('rt.audio'), sessionId: str, seq: int, offset: int, pcm: bytes, sentAt: int });
/** flush: finalise the open utterance now; clear: drop it; end: finalise and end the session. */
const control = object({ v, type: literal('rt.control'), sessionId: str, action: oneOf(['flush', 'clear', 'end'] as const), seq: int, sentAt: int });
/** The client resumed through another gateway: replies go to its topic from now on. */
const replyTo = object({ v, type: literal('rt.reply_to'), sessionId: str, gatewayId: str, replyTopic: str, at: int });
export const checkRealtimeInput = union({ 'rt.session.start': sessionStart, 'rt.audio': audioFrame, 'rt.control': control, 'rt.reply_to': replyTo });
export type RealtimeInput = ReturnType<typeof checkRealtimeInput>;
export type RealtimeSessionStart = ReturnType<typeof sessionStart>;
export type RealtimeAudioFrame = ReturnType<typeof audioFrame>;
export type RealtimeControl = ReturnType<typeof control>;

// ---- topic realtime.replies.<gateway id> (key: session id) → the gateway holding the socket ----
/** `receivedAt`: when the gateway got the audio that made the event (epoch ms, from the frame's sentAt) — hop latency. */
const vadEvent = object({ v, type: literal('rt.vad'), sessionId: str, event: oneOf(['speech_start', 'speech_end'] as const), utterance: int, start: num, end: optional(num), at: int });
const partial = object({ v, type: literal('rt.partial'), sessionId: str, utterance: int, text: str, start: num, end: num, at: int, receivedAt: int });
const finalReply = object({ v, type: literal('rt.final'), sessionId: str, final: finalUtterance, at: int, receivedAt: int, speechEndAt: optional(int) });
/** Audio processed so far (seconds): the gateway's lag budget is audio received minus this. Sent about twice a second. */
const progress = object({ v, type: literal('rt.progress'), sessionId: str, processedSeconds: num, at: int });
/** The engine finished the session (after `end`): every final was sent before this. */
const ended = object({ v, type: literal('rt.ended'), sessionId: str, audioSeconds: num, finals: int, at: int });
/** The engine cannot go on with the session; `retryable` false ends it (e.g. unknown model). */
const replyError = object({ v, type: literal('rt.error'), sessionId: str, code: str, message: str, retryable: bool, at: int });
export const checkRealtimeReply = union({
  'rt.vad': vadEvent, 'rt.partial': partial, 'rt.final': finalReply, 'rt.progress': progress, 'rt.ended': ended, 'rt.error': replyError,
});
export type RealtimeReply = ReturnType<typeof checkRealtimeReply>;

// ---- topic realtime.events (key: session id) → the session actor ----
const opened = object({
  v, type: literal('rt.session.opened'), sessionId: str, tenantId: str, keyId: str, requestId: str, gatewayId: str, replyTopic: str,
  config: sessionConfig, startedAt: int, traceparent: optional(str),
});
/**
 * A final, with where to resume: `checkpoint` is the transcriber's after this final, `resumeOffset` the realtime.input
 * offset (of `partition`) of the first message a new owner must re-read for this session.
 */
const utteranceFinal = object({
  v, type: literal('rt.utterance.final'), sessionId: str, final: finalUtterance, checkpoint, partition: int, resumeOffset: str,
  engineInstance: str, at: int,
});
/** The engine ended the session: every final was sent before this. */
const engineEnded = object({ v, type: literal('rt.session.ended'), sessionId: str, audioSeconds: num, checkpoint, engineInstance: str, at: int });
/** The gateway's side closed (client left, limit, error). `audioKey`: the WAV it stored (retention on). */
const closed = object({
  v, type: literal('rt.session.closed'), sessionId: str, closeCode: int, reason: str, audioSeconds: num, audioKey: optional(str), at: int,
  /** Latency the gateway measured over the session (ms), for the realtime_sessions row; absent: not measured. */
  latency: optional(object({ firstPartialP50Ms: num, firstPartialP95Ms: num, finalP50Ms: num, finalP95Ms: num })),
});
/** The client changed the configuration before sending audio (OpenAI's session.update): what the session runs with now. */
const configured = object({ v, type: literal('rt.session.configured'), sessionId: str, config: sessionConfig, at: int });
const resumed = object({ v, type: literal('rt.session.resumed'), sessionId: str, gatewayId: str, replyTopic: str, at: int });
/** Operator deleted a finished session: its owner tombstones the snapshot. */
const deleted = object({ v, type: literal('rt.session.deleted'), sessionId: str, at: int });
export const checkRealtimeEvent = union({
  'rt.session.opened': opened, 'rt.utterance.final': utteranceFinal, 'rt.session.ended': engineEnded,
  'rt.session.closed': closed, 'rt.session.resumed': resumed, 'rt.session.deleted': deleted, 'rt.session.configured': configured,
});
export type RealtimeEvent = ReturnType<typeof checkRealtimeEvent>;

// ---- topic sessions.state (compacted, key: session id): the session actor's snapshot ----
export const SESSION_STATUSES = ['active', 'completed', 'interrupted', 'failed'] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];
/**
 * What a session actor's transition decided to send, kept in the snapshot that records it (as the job actor's outbox):
 * a host that persisted the snapshot and died before sending re-sends these. Receivers tolerate the duplicate (the
 * transcript is rewritten with the same content, audit events carry fixed ids, the job id derives from the session id).
 */
const sessionOutboxEntry = union({
  /** Write the transcript JSON (derived from the snapshot's finals) to the artifact store at `key`. */
  transcript: object({ type: literal('transcript'), key: str }),
  analytics: object({ type: literal('analytics'), message: checkAnalyticsMessage }),
  /** Publish a job event (enhance_on_end: job.created) to jobs.events. */
  job: object({ type: literal('job'), event: checkJobEvent }),
});
export type SessionOutboxEntry = ReturnType<typeof sessionOutboxEntry>;
const sessionLatency = object({ firstPartialP50Ms: num, firstPartialP95Ms: num, finalP50Ms: num, finalP95Ms: num });
const sessionState = object({
  sessionId: str, tenantId: str, keyId: str, requestId: str, traceparent: optional(str),
  status: oneOf(SESSION_STATUSES), startedAt: int, endedAt: optional(int), updatedAt: int,
  gatewayId: str, replyTopic: str, config: sessionConfig,
  /** Finals in utterance order, each index once. */
  finals: arrayOf(finalUtterance),
  checkpoint, partition: optional(int), resumeOffset: optional(str),
  audioSeconds: num, engineEnded: bool, gatewayClosed: bool,
  closeCode: optional(int), closeReason: optional(str),
  audioKey: optional(str), transcriptKey: optional(str), enhanceJobId: optional(str),
  revision: int,
  /** When the first side (engine ended or gateway closed) reported the end: the grace period runs from here. */
  closingSince: optional(int),
  /** Latency percentiles the gateway reported at close. */
  latency: optional(sessionLatency),
  /** Ownership epoch of the writer (see partition.claim in streams/messages.ts); 0 for none. */
  epoch: optional(int),
  /** Effects of the transition that produced this revision (sent after the snapshot is durable). */
  outbox: optional(arrayOf(sessionOutboxEntry)),
  /** When this record was written (epoch ms): a takeover re-sends the outbox only of a recent snapshot. */
  persistedAt: optional(int),
});
export type RealtimeSessionState = ReturnType<typeof sessionState>;
const sessionSnapshot = object({ v, type: literal('rt.session.snapshot'), state: sessionState });
/** Same record as partition.claim in jobs.state: an actor host took over a sessions partition (key `claim:<partition>`). */
const sessionPartitionClaim = object({ v, type: literal('partition.claim'), partition: int, epoch: int, owner: str, at: int });
export const checkSessionStateMessage = union({ 'rt.session.snapshot': sessionSnapshot, 'partition.claim': sessionPartitionClaim });
export type SessionSnapshot = ReturnType<typeof sessionSnapshot>;

export type RealtimeMessage = RealtimeInput | RealtimeReply | RealtimeEvent | SessionSnapshot;
