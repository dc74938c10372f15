/**
 * The native batch API under /v1/audio/transcriptions: submit (multipart upload → artifact store → jobs row →
 * job.created), status with the `stages` array, task artifacts, cancel and export. Handlers see only the ports.
 */
import type { Attributes } from '@opentelemetry/api';
import type { Clock } from '../core/clock.js';
import { DependencyUnavailableError } from '../core/errors.js';
import { ATTR, LOG, SPAN } from '../core/observability-names.js';
import { NotFoundError, artifactKeys, isTaskOutputDocument } from '../storage/index.js';
import { ASR_MODEL_IDS, unservableReason } from './models.js';
import { SCHEMA_VERSION, type AuditEvent, type JobCreated, type JobParams } from '../streams/index.js';
import { HttpError, badRequest, conflict, notFound } from './errors.js';
import { admitJob, type JobAdmission } from './job-admission.js';
import type { TenantAdmission } from './limits/tenant-admission.js';
import { effectiveRetention, parseRetention } from './retention.js';
import { WEBHOOK_METADATA_MAX_BYTES, checkedJobWebhook, parseWebhookMetadata, type JobWebhooks } from './webhooks/job-webhook.js';
import { sendJson, sendText } from './http-exchange.js';
import type { AuthedRequestContext, RouteSpec } from './http-server.js';
import { newEventId } from './ids.js';
import { isTerminal, jobStatusBody, transcriptFields } from './job-view.js';
import { parseLanguage } from './languages.js';
import type { ArtifactStore, JobEventPublisher, JobLabels, JobReader, JobView, NewJobRecord, TraceReader } from './ports.js';
import { traceWaterfall } from './trace-view.js';
import { jobListingRoutes } from './job-listing.js';
import { receiveSmallJson, receiveUpload, type FileSink, type ReceivedFile } from './upload.js';
import type { UrlAllowList } from '../core/network-policy.js';
import { fetchUrlInto, type UrlFetchPolicy } from './url-audio.js';
import { JobAudioSink, inSpan, newJobSlot } from './audio-intake.js';
import { sendArtifact } from './artifact-download.js';

export const TRANSCRIPTIONS_PATH = '/v1/audio/transcriptions';

/** OpenAI's model names: they switch `POST /v1/audio/transcriptions` to OpenAI's synchronous answer. */
export const OPENAI_MODELS = ['whisper-1', 'gpt-4o-transcribe', 'gpt-4o-mini-transcribe'] as const;
/** DALSTON_OPENAI_MODEL_ALIASES' default: every OpenAI name runs on the default model. */
export const DEFAULT_OPENAI_ALIASES: ReadonlyMap<string, string> = new Map(OPENAI_MODELS.map((m) => [m, 'auto']));

/** A model name this server does not know: a 400 that the handler completes with the installed models. */
export class UnknownModelError extends HttpError {
  constructor(readonly model: string, message: string) {
    super(400, 'invalid_request', message);
  }
}
export const RESPONSE_FORMATS = ['json', 'text', 'srt', 'verbose_json', 'vtt'] as const;
export type ResponseFormat = (typeof RESPONSE_FORMATS)[number];
export const TIMESTAMP_GRANULARITIES = ['none', 'segment', 'word'] as const;
export const EXPORT_FORMATS = ['txt', 'srt', 'vtt', 'json'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The accepted form fields of a submission besides `file`. */
/** `audio_url` names the audio instead of a `file` part (fetched by the gateway, see gateway/url-audio.ts). */
export const SUBMIT_FIELDS = ['language', 'model', 'timestamps_granularity', 'response_format', 'vad', 'audio_url', 'retention', 'webhook_url', 'webhook_metadata'] as const;
/** Fields of OpenAI's transcription request, accepted only with an OpenAI model. */
export const OPENAI_FIELDS = ['prompt', 'temperature', 'timestamp_granularities[]', 'stream'] as const;
/** Longest value of a text field: none of them is free text except a prompt and a URL. */
const DEFAULT_FIELD_MAX_CHARS = 256;
const FIELD_MAX_CHARS: Readonly<Record<string, number>> = { prompt: 4096, audio_url: 8192, webhook_url: 2048, webhook_metadata: WEBHOOK_METADATA_MAX_BYTES };
/** OpenAI sends one `timestamp_granularities[]` field per value. */
const REPEATABLE_FIELDS: ReadonlySet<string> = new Set(['timestamp_granularities[]']);

/** What an OpenAI-mode request asks of the synchronous answer. */
export interface OpenAiOptions {
  readonly responseFormat: ResponseFormat;
  /** `timestamp_granularities[]=word` (with verbose_json): the answer lists words. */
  readonly words: boolean;
  /** `stream=true`: server-sent events, a delta as each window is transcribed, then the whole text. */
  readonly stream?: boolean;
  /** `POST /v1/audio/translations`: the text is English, verbose_json says `task: translate`. */
  readonly translate?: boolean;
}

export interface SubmitRequest {
  readonly params: JobParams;
  /** Only meaningful in OpenAI mode; native mode accepts `json` (its own shape) alone. */
  readonly responseFormat: ResponseFormat | undefined;
  /** True when `model` names an OpenAI model: the caller expects OpenAI's synchronous response. */
  readonly openAiMode: boolean;
  /** With openAiMode: what the answer holds. */
  readonly openAi?: OpenAiOptions;
}

const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

function includes<T extends string>(values: readonly T[], v: string): v is T {
  return (values as readonly string[]).includes(v);
}

/** Validates the text fields of a submission; throws a 400 naming the field. Pure. */
export function parseSubmitFields(
  fields: readonly (readonly [string, string])[], aliases: ReadonlyMap<string, string> = DEFAULT_OPENAI_ALIASES,
): SubmitRequest {
  const seen = new Map<string, string>();
  const granularities: string[] = [];
  for (const [name, value] of fields) {
    if (!includes(SUBMIT_FIELDS, name) && !includes(OPENAI_FIELDS, name)) {
      throw badRequest(`unknown field "${name}"; accepted fields: file, ${SUBMIT_FIELDS.join(', ')} (and with an OpenAI model ${OPENAI_FIELDS.join(', ')})`);
    }
    if (REPEATABLE_FIELDS.has(name)) {
      granularities.push(value.trim());
      continue;
    }
    if (seen.has(name)) throw badRequest(`field "${name}" was sent more than once`);
    const limit = FIELD_MAX_CHARS[name] ?? DEFAULT_FIELD_MAX_CHARS;
    if (value.length > limit) throw badRequest(`field "${name}" is ${value.length} characters long; at most ${limit} are accepted`);
    seen.set(name, value.trim());
  }
  const params: { -readonly [K in keyof JobParams]: JobParams[K] } = { api: 'native' };
  const language = seen.get('language');
  if (language !== undefined && language !== '') {
    const parsed = parseLanguage(language);
    if (parsed === undefined) throw badRequest(`language "${language}" is not an ISO 639-1 code (e.g. "en", "de") or "auto"`);
    params.language = parsed;
  }
  const model = seen.get('model');
  let openAiMode = false;
  if (model !== undefined && model !== '') {
    if (!MODEL_ID.test(model)) throw badRequest(`model "${model}" is not a valid model id`);
    const target = aliases.get(model);
    if (model !== 'auto' && target === undefined && !ASR_MODEL_IDS.has(model)) {
      throw new UnknownModelError(model, `model "${model}" is not a model of this server; GET /v1/models lists them (or use "auto", or ${[...aliases.keys()].join(', ')})`);
    }
    openAiMode = target !== undefined;
    if (openAiMode) {
      params.api = 'openai';
      // The alias decides the model; `auto` leaves it to the default engine.
      if (target !== 'auto') params.model = target;
    } else {
      params.model = model;
    }
  }
  const vad = seen.get('vad');
  if (vad !== undefined && vad !== '') {
    if (vad !== 'true' && vad !== 'false') throw badRequest(`vad "${vad}" must be true or false`);
    if (vad === 'true') params.vad = true;
  }
  const retention = seen.get('retention');
  if (retention !== undefined && retention !== '') params.retentionSeconds = parseRetention(retention);
  const webhookUrl = seen.get('webhook_url');
  const webhookMetadata = seen.get('webhook_metadata');
  if (webhookMetadata !== undefined && webhookMetadata !== '' && (webhookUrl === undefined || webhookUrl === '')) {
    // Endpoints hear of every job of the tenant; metadata travels with a job's own webhook.
    throw badRequest('webhook_metadata needs webhook_url');
  }
  if (webhookUrl !== undefined && webhookUrl !== '') {
    params.webhook = { url: webhookUrl, endpoints: 'all', ...(webhookMetadata ? { metadata: parseWebhookMetadata(webhookMetadata) } : {}) };
  }
  const granularity = seen.get('timestamps_granularity');
  if (granularity !== undefined && granularity !== '') {
    if (!includes(TIMESTAMP_GRANULARITIES, granularity)) {
      throw badRequest(`timestamps_granularity "${granularity}" must be one of ${TIMESTAMP_GRANULARITIES.join(', ')}`);
    }
    params.timestampsGranularity = granularity;
  }
  const format = seen.get('response_format');
  let responseFormat: ResponseFormat | undefined;
  if (format !== undefined && format !== '') {
    if (!includes(RESPONSE_FORMATS, format)) throw badRequest(`response_format "${format}" must be one of ${RESPONSE_FORMATS.join(', ')}`);
    if (!openAiMode && format !== 'json') {
      throw badRequest(`response_format "${format}" needs an OpenAI model (${[...aliases.keys()].join(', ')}); the native API answers json`);
    }
    responseFormat = format;
  }
  if (!openAiMode) {
    const openAiOnly = [...OPENAI_FIELDS.filter((f) => seen.has(f)), ...(granularities.length > 0 ? ['timestamp_granularities[]'] : [])];
    if (openAiOnly.length > 0) throw badRequest(`field "${openAiOnly[0] ?? ''}" needs an OpenAI model (${[...aliases.keys()].join(', ')})`);
    return { params, responseFormat, openAiMode };
  }
  return { params, responseFormat, openAiMode, openAi: parseOpenAiFields(seen, granularities, responseFormat ?? 'json') };
}

/** OpenAI's own fields. `prompt` and `temperature` are checked and accepted; the recognisers do not use them yet. */
function parseOpenAiFields(seen: ReadonlyMap<string, string>, granularities: readonly string[], responseFormat: ResponseFormat): OpenAiOptions {
  const temperature = seen.get('temperature');
  if (temperature !== undefined && temperature !== '') {
    const t = Number(temperature);
    if (!Number.isFinite(t) || t < 0 || t > 1) throw badRequest(`temperature "${temperature}" must be a number from 0 to 1`);
  }
  if ((seen.get('prompt') ?? '').length > 4096) throw badRequest('prompt must be at most 4096 characters');
  const streamRaw = seen.get('stream');
  if (streamRaw !== undefined && streamRaw !== '' && streamRaw !== 'false' && streamRaw !== 'true') throw badRequest(`stream "${streamRaw}" must be true or false`);
  const stream = streamRaw === 'true';
  if (stream && responseFormat !== 'json' && responseFormat !== 'text') {
    throw badRequest(`stream=true answers with text events: response_format must be json or text, not ${responseFormat}`);
  }
  for (const g of granularities) {
    if (g !== 'word' && g !== 'segment') throw badRequest(`timestamp_granularities[] "${g}" must be word or segment`);
  }
  const words = granularities.includes('word');
  if (granularities.length > 0 && responseFormat !== 'verbose_json') {
    throw badRequest('timestamp_granularities[] needs response_format verbose_json');
  }
  return { responseFormat, words, ...(stream ? { stream } : {}) };
}

/** How subtitles are cut (srt and vtt exports); absent fields take the renderer's defaults (42 × 2 lines, 7 s). */
export interface SubtitleOptions {
  readonly maxLineLength?: number;
  readonly maxLines?: number;
  readonly maxCueSeconds?: number;
}

/** Renders a transcript artifact (transcript.json, parsed) to a text format. Implemented by engines/merge. */
export type TranscriptRenderer = (transcript: unknown, options?: SubtitleOptions) => string;

/** Subtitle query parameters of an export: `max_chars_per_line`, `max_lines_per_cue`, `max_cue_seconds`. Pure. */
export function parseSubtitleOptions(q: URLSearchParams, format: string): SubtitleOptions {
  const spec = [
    ['max_chars_per_line', 'maxLineLength', 10, 200, true],
    ['max_lines_per_cue', 'maxLines', 1, 5, true],
    ['max_cue_seconds', 'maxCueSeconds', 1, 30, false],
  ] as const;
  const out: { -readonly [K in keyof SubtitleOptions]: number } = {};
  for (const [name, key, min, max, integer] of spec) {
    const raw = q.get(name);
    if (raw === null) continue;
    if (format !== 'srt' && format !== 'vtt') throw badRequest(`${name} applies to srt and vtt exports only`);
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw badRequest(`${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
    }
    out[key] = n;
  }
  return out;
}
export interface TranscriptRenderers {
  readonly txt: TranscriptRenderer;
  readonly srt: TranscriptRenderer;
  readonly vtt: TranscriptRenderer;
}

/**
 * Seam for OpenAI-compatible synchronous mode (model = whisper-1 / gpt-4o-transcribe / gpt-4o-mini-transcribe):
 * given the created job, wait for it to end and answer in OpenAI's shape (gateway/openai-transcription.ts). Without
 * it such submissions get 501 before any job is created.
 */
export interface OpenAiSyncResponder {
  respond(ctx: AuthedRequestContext, job: JobCreated, options: OpenAiOptions): Promise<void>;
}

export interface TranscriptionsDeps {
  readonly publisher: JobEventPublisher;
  readonly reader: JobReader;
  readonly store: ArtifactStore;
  readonly clock: Clock;
  /** DALSTON_UPLOAD_MAX_BYTES. */
  readonly uploadMaxBytes: number;
  /** Export renderers for txt/srt/vtt; without them those formats answer 501. */
  readonly renderers?: TranscriptRenderers | undefined;
  readonly openAi?: OpenAiSyncResponder | undefined;
  /** The span store (DALSTON_OTEL_SPAN_STORE=clickhouse); without it `GET …/{id}/trace` answers 404 saying so. */
  readonly traces?: TraceReader | undefined;
  /** Fetching audio from URLs (`audio_url`); without it such a request answers 501. */
  readonly urlFetch?: UrlFetch | undefined;
  /** DALSTON_OPENAI_MODEL_ALIASES. @default DEFAULT_OPENAI_ALIASES */
  readonly openAiAliases?: ReadonlyMap<string, string> | undefined;
  /**
   * The installed models' ids: named in the answer to an unknown model, and a job for a model not installed (or a
   * language its model lacks) is refused before it is queued. Without it every catalogue model is accepted.
   */
  readonly installedModels?: (() => Promise<readonly string[]>) | undefined;
  /** The model of DALSTON_TRANSCRIBE_ENGINE: what runs a job that names none. */
  readonly defaultModel?: string | undefined;
  /** Refuses HTTP submissions (503, Retry-After) while the engines' queues are over DALSTON_MAX_QUEUED_TASKS. */
  readonly admission?: JobAdmission | undefined;
  /** Per-tenant concurrency limits (gateway/limits/concurrency-admission.ts). */
  readonly concurrency?: TenantAdmission | undefined;
  /** Webhooks (a job's `webhook_url`, ElevenLabs `webhook=true`); without it a job's own URL answers 501. */
  readonly webhooks?: JobWebhooks | undefined;
  /** A tenant's default retention in days (0: keep), for jobs that do not ask for one. */
  readonly retentionDefaultDays?: ((tenantId: string) => number) | undefined;
}

/** Most spans one trace request returns (a long job with many retries and heartbeats stays well below). */
export const TRACE_SPAN_LIMIT = 5000;

function auditEvent(
  ctx: JobOrigin, eventType: AuditEvent['eventType'], job: { jobId: string; audioDurationSeconds?: number | undefined },
  time: number, details: Readonly<Record<string, unknown>>,
): AuditEvent {
  return {
    v: SCHEMA_VERSION, type: 'analytics.audit_event', time, eventId: newEventId(time), eventType,
    tenantId: ctx.principal.tenantId, actorKeyId: ctx.principal.keyId, jobId: job.jobId, sessionId: '',
    audioDurationSeconds: job.audioDurationSeconds ?? 0, requestId: ctx.requestId, traceId: ctx.traceId ?? '',
    details: JSON.stringify(details),
  };
}

/** Audit events that gate data access must be recorded before the data leaves: failure → 503. */
async function publishAuditOrFail(publisher: JobEventPublisher, event: AuditEvent): Promise<void> {
  try {
    await publisher.publishAudit(event);
  } catch (err) {
    throw new DependencyUnavailableError('could not record the audit event', { cause: err });
  }
}

/** The job named by the route's `:id`, of the caller's tenant; 404 otherwise. */
export async function loadJob(deps: TranscriptionsDeps, ctx: AuthedRequestContext): Promise<JobView> {
  const jobId = ctx.params['id'] ?? '';
  ctx.annotate({ [LOG.jobId]: jobId });
  const view = await deps.reader.getJob(jobId, ctx.principal.tenantId);
  if (!view) throw notFound(`transcription job ${jobId} not found`);
  return view;
}

async function readJson(store: ArtifactStore, key: string): Promise<unknown> {
  const buf = await store.get(key);
  return JSON.parse(buf.toString('utf8')) as unknown;
}

export async function readTranscript(deps: TranscriptionsDeps, view: JobView): Promise<unknown> {
  const key = view.transcriptKey ?? artifactKeys.transcript(view.jobId);
  try {
    return await readJson(deps.store, key);
  } catch (err) {
    await throwIfDeleted(deps, view, err);
    throw new HttpError(500, 'internal_error', `the transcript of completed job ${view.jobId} could not be read`, { cause: err });
  }
}

/**
 * Deletions under way in this process, by job id. A second DELETE of the same job waits for the first and answers
 * 404, so one deletion is audited once (job.deleted + data.deleted). Gateways in other processes are not covered:
 * one that read the job before this one hid it could delete it again (the artifacts and rows are then already gone).
 */
const deletions = new Map<string, Promise<void>>();

/**
 * A stored object of a job that is missing because a DELETE of the job ran meanwhile: a 404, like a request made
 * after the deletion (the row is hidden before the artifacts go, so a job without its row is gone). Anything else
 * returns, for the caller to answer as it would.
 */
export async function throwIfDeleted(deps: TranscriptionsDeps, view: JobView, err: unknown): Promise<void> {
  if (!(err instanceof NotFoundError)) return;
  if (deletions.has(view.jobId) || !(await deps.reader.getJob(view.jobId, view.tenantId))) {
    throw notFound(`transcription job ${view.jobId} not found (it was deleted)`);
  }
}

/** parseSubmitFields, with an unknown model's answer naming the models installed here. */
export async function parseWithInstalledModels(deps: TranscriptionsDeps, fields: readonly (readonly [string, string])[]): Promise<SubmitRequest> {
  try {
    return parseSubmitFields(fields, deps.openAiAliases ?? DEFAULT_OPENAI_ALIASES);
  } catch (err) {
    if (!(err instanceof UnknownModelError) || !deps.installedModels) throw err;
    const installed = await deps.installedModels().catch(() => []);
    const aliases = [...(deps.openAiAliases ?? DEFAULT_OPENAI_ALIASES).keys()];
    throw new UnknownModelError(err.model,
      `model "${err.model}" is not a model of this server; installed: ${installed.length > 0 ? installed.join(', ') : 'none'}; also accepted: auto, ${aliases.join(', ')}`);
  }
}

/**
 * Turns a received upload into a queued job, whatever API it came through: stores the audio, publishes job.created
 * (first: a job whose event never reached Kafka must leave nothing behind), writes the pending row and the audit row.
 */
/** Who asks for a job: an HTTP request, or a Kafka producer's signed request (gateway/kafka-job-ingress.ts). */
export type JobOrigin = Pick<AuthedRequestContext, 'principal' | 'requestId' | 'traceId' | 'log' | 'annotate'>;

export async function queueJob(deps: TranscriptionsDeps, ctx: JobOrigin, sink: JobAudioSink, asked: JobParams): Promise<JobCreated> {
  let params = asked;
  const { jobId, createdAt } = sink.slot;
  const { tenantId, keyId } = ctx.principal;
  if (deps.installedModels) {
    // An inventory that cannot be read, or a gateway on a host without any model (engines elsewhere), refuses
    // nothing: it cannot judge, and the queue deadline still ends a job no engine takes.
    const installed = await deps.installedModels().catch(() => undefined);
    const problem = installed && installed.length > 0 && unservableReason(params, installed, deps.defaultModel);
    if (problem) {
      await sink.discard().catch(() => undefined);
      throw badRequest(problem);
    }
  }
  let webhook: Awaited<ReturnType<typeof checkedJobWebhook>>;
  try {
    webhook = await checkedJobWebhook(params.webhook, tenantId, deps.webhooks);
  } catch (err) {
    await sink.discard().catch(() => undefined);
    throw err;
  }
  if (webhook !== undefined) params = { ...params, webhook };
  // A tenant's concurrent-job limit, decided once the request is known to be good (a refused upload is not counted).
  // Kafka requests wait in their topic instead: that queue is theirs.
  const refusal = params.api !== 'kafka' ? await deps.concurrency?.admit(tenantId, 'job', jobId) : undefined;
  if (refusal) {
    await sink.discard().catch(() => undefined);
    throw new HttpError(429, 'rate_limited', `${refusal.message}; retry after ${refusal.retryAfterSeconds} s`, {
      headers: { 'retry-after': String(refusal.retryAfterSeconds) },
    });
  }
  // The job is stored with a concrete retention: its own, or its tenant's default.
  const retentionSeconds = effectiveRetention(params.retentionSeconds, deps.retentionDefaultDays?.(tenantId) ?? 0);
  const { retentionSeconds: _asked, ...rest } = params;
  params = retentionSeconds !== undefined ? { ...rest, retentionSeconds } : rest;
  ctx.annotate({ [LOG.jobId]: jobId });
  const audio = sink.stored;
  const common: Attributes = { [ATTR.jobId]: jobId, [ATTR.tenantId]: tenantId, [ATTR.requestId]: ctx.requestId };

  // Publish first: a job whose job.created never reached Kafka must leave no `pending` row behind (it would never
  // move). The row only makes the job visible before the actor's first snapshot reaches ClickHouse.
  const created: JobCreated = { v: SCHEMA_VERSION, type: 'job.created', jobId, tenantId, keyId, createdAt, audio, params };
  try {
    await inSpan(SPAN.publishJobCreated, common, () => deps.publisher.publishJobCreated(created, { requestId: ctx.requestId, tenantId }));
  } catch (err) {
    await sink.discard().catch(() => undefined);
    throw new DependencyUnavailableError('the job could not be queued (Kafka unavailable); nothing was stored, try again', { cause: err });
  }
  deps.admission?.admitted();

  const record: NewJobRecord = {
    jobId, tenantId, keyId, status: 'pending', createdAt, requestId: ctx.requestId, traceId: ctx.traceId, params, audio,
  };
  try {
    await inSpan(SPAN.createJob, common, () => deps.reader.createJobRecord(record));
  } catch (err) {
    // The job is queued and runs; its row arrives with the actor's first snapshot.
    ctx.log.warn({ [LOG.jobId]: jobId, err: err instanceof Error ? err.message : String(err) }, 'initial jobs row not written; the sink writes it shortly');
  }

  try {
    // One job.created row per job, whatever the number of sends: the sink de-duplicates by event id.
    await deps.publisher.publishAudit({
      ...auditEvent(ctx, 'job.created', { jobId }, createdAt, { bytes: audio.bytes, api: params.api ?? 'native' }),
      eventId: `${jobId}:job.created`,
    });
  } catch (err) {
    // The job exists and will run; a lost audit record is an operator problem, not the caller's.
    ctx.log.error({ [LOG.jobId]: jobId, err: err instanceof Error ? err.message : String(err) }, 'audit event job.created not recorded');
  }
  return created;
}

/** How this server fetches audio from URLs: its SSRF allow-list and limits. */
export interface UrlFetch {
  readonly policy: UrlFetchPolicy;
  readonly allow: UrlAllowList;
}

/** Fetches audio from a URL into the sink; 501 where this server does not fetch URLs. */
export function urlSource(deps: Pick<TranscriptionsDeps, 'urlFetch'>, field: string): (url: string, sink: FileSink) => Promise<ReceivedFile> {
  return async (url, sink) => {
    if (!deps.urlFetch) throw new HttpError(501, 'not_implemented', `${field} is not available on this server; upload the audio instead`);
    return fetchUrlInto(url, deps.urlFetch.policy, deps.urlFetch.allow, sink);
  };
}

/** The sink a request's audio streams into: the store, under a job id taken now. */
export function jobAudioSink(deps: Pick<TranscriptionsDeps, 'store' | 'clock'>, ctx: JobOrigin): JobAudioSink {
  return new JobAudioSink(deps.store, newJobSlot(deps.clock), { [ATTR.tenantId]: ctx.principal.tenantId, [ATTR.requestId]: ctx.requestId });
}

async function submit(deps: TranscriptionsDeps, ctx: AuthedRequestContext): Promise<void> {
  await admitJob(deps.admission, ctx.req);
  const sink = jobAudioSink(deps, ctx);
  const upload = await receiveUpload(ctx.req, { maxFileBytes: deps.uploadMaxBytes, sink, url: { field: 'audio_url', fetch: urlSource(deps, 'audio_url') } });
  let request: SubmitRequest;
  try {
    request = await parseWithInstalledModels(deps, upload.fields);
    if (request.openAiMode && !deps.openAi) {
      throw new HttpError(501, 'not_implemented',
        'OpenAI-compatible synchronous mode is not available on this server; omit "model" or name a Dalston model for an asynchronous job');
    }
  } catch (err) {
    await sink.discard();
    throw err;
  }
  const created = await queueJob(deps, ctx, sink, request.params);
  if (request.openAiMode && deps.openAi) {
    await deps.openAi.respond(ctx, created, request.openAi ?? { responseFormat: 'json', words: false });
    return;
  }
  sendJson(ctx.res, 201, {
    id: created.jobId, status: 'pending', created_at: new Date(created.createdAt).toISOString(), request_id: ctx.requestId, trace_id: ctx.traceId ?? null,
  });
}

async function status(deps: TranscriptionsDeps, ctx: AuthedRequestContext): Promise<void> {
  const view = await loadJob(deps, ctx);
  const transcript = view.status === 'completed' ? transcriptFields(await readTranscript(deps, view)) : undefined;
  sendJson(ctx.res, 200, jobStatusBody(view, transcript));
}

/** Most tags a job carries, and the longest name. */
export const MAX_JOB_TAGS = 32;
export const MAX_JOB_NAME = 256;
const TAG = /^[\p{L}\p{N}][\p{L}\p{N} _.:/-]{0,63}$/u;

/**
 * A PATCH body: `{"name": string | null, "tags": string[]}`, either or both; `name` null or "" unnames, `tags`
 * replaces the set (duplicates dropped, order kept). Throws a 400 naming the field. Pure.
 */
export function parseLabelPatch(body: unknown, current: JobLabels | undefined): JobLabels {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the body must be a JSON object: {"name": "…", "tags": ["…"]}');
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'name' && k !== 'tags') throw badRequest(`unknown field "${k}"; a job's name and tags can be changed`);
  if (!('name' in o) && !('tags' in o)) throw badRequest('nothing to change: send "name", "tags" or both');
  let name = current?.name ?? '';
  if ('name' in o) {
    if (o['name'] !== null && typeof o['name'] !== 'string') throw badRequest('name must be a string or null');
    name = typeof o['name'] === 'string' ? o['name'].trim() : '';
    if (name.length > MAX_JOB_NAME || [...name].some((c) => c.charCodeAt(0) < 0x20)) throw badRequest(`name must be at most ${MAX_JOB_NAME} characters, without control characters`);
  }
  let tags = current?.tags ?? [];
  if ('tags' in o) {
    const raw = o['tags'];
    if (!Array.isArray(raw) || raw.some((t) => typeof t !== 'string')) throw badRequest('tags must be an array of strings');
    tags = [...new Set((raw as string[]).map((t) => t.trim()))];
    const bad = tags.find((t) => !TAG.test(t));
    if (bad !== undefined) throw badRequest(`tag ${JSON.stringify(bad.slice(0, 80))} must be 1–64 letters, digits, spaces or _ . : / - (starting with a letter or digit)`);
    if (tags.length > MAX_JOB_TAGS) throw badRequest(`at most ${MAX_JOB_TAGS} tags`);
  }
  return { name, tags };
}

/** `PATCH …/{id}`: renames and tags a job; answers its status (as `GET`, without the transcript). */
async function patchJob(deps: TranscriptionsDeps, ctx: AuthedRequestContext): Promise<void> {
  const body = await receiveSmallJson(ctx.req);
  const view = await loadJob(deps, ctx);
  const labels = parseLabelPatch(body, view.labels);
  await deps.reader.setLabels(view.jobId, ctx.principal.tenantId, labels, deps.clock.now());
  sendJson(ctx.res, 200, jobStatusBody({ ...view, labels }));
}

/** Content types of the audio extensions ffmpeg reads most often; others download as octet-stream. */
const AUDIO_TYPES: Readonly<Record<string, string>> = {
  wav: 'audio/wav', mp3: 'audio/mpeg', m4a: 'audio/mp4', mp4: 'audio/mp4', flac: 'audio/flac', ogg: 'audio/ogg', opus: 'audio/ogg',
  webm: 'audio/webm', aac: 'audio/aac',
};

/** `GET …/{id}/audio`: the original upload, streamed (with byte ranges), audited as an artifact read. */
async function originalAudio(deps: TranscriptionsDeps, ctx: AuthedRequestContext): Promise<void> {
  const view = await loadJob(deps, ctx);
  const key = (await deps.store.list(`${artifactKeys.jobPrefix(view.jobId)}audio/`)).find((k) => /\/audio\/original(\.[a-z0-9]+)?$/.test(k));
  if (!key) throw notFound(`job ${view.jobId} has no stored audio (it was deleted)`);
  const ext = /\.([a-z0-9]+)$/.exec(key)?.[1] ?? '';
  try {
    await sendArtifact(deps.store, ctx.req, ctx.res, {
      key, contentType: AUDIO_TYPES[ext] ?? 'application/octet-stream', filename: `${view.jobId}${ext ? `.${ext}` : ''}`,
      beforeSend: () => publishAuditOrFail(deps.publisher, auditEvent(ctx, 'artifact.read', view, deps.clock.now(), { artifact: 'original_audio' })),
    });
  } catch (err) {
    await throwIfDeleted(deps, view, err);
    throw err;
  }
}

async function taskArtifacts(deps: TranscriptionsDeps, ctx: AuthedRequestContext): Promise<void> {
  const view = await loadJob(deps, ctx);
  const taskId = ctx.params['task_id'] ?? '';
  ctx.annotate({ [LOG.taskId]: taskId });
  const stage = view.stages.find((s) => s.taskId === taskId);
  if (!stage) throw notFound(`task ${taskId} not found in job ${view.jobId}`);
  let output: unknown;
  try {
    output = await readJson(deps.store, stage.outputKey ?? artifactKeys.taskOutput(view.jobId, taskId));
  } catch (err) {
    await throwIfDeleted(deps, view, err);
    if (err instanceof NotFoundError) {
      // A task that ended without output never will have any: 404 says so; one still to run is a 409 (try later).
      if (stage.status === 'failed' || stage.status === 'cancelled' || stage.status === 'skipped') {
        throw notFound(`task ${taskId} ended ${stage.status} and produced no output`);
      }
      throw conflict(`task ${taskId} has not produced output yet (status ${stage.status})`);
    }
    throw err;
  }
  let input: unknown = null;
  try {
    input = await readJson(deps.store, artifactKeys.taskInput(view.jobId, taskId));
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  await publishAuditOrFail(deps.publisher, auditEvent(ctx, 'artifact.read', view, deps.clock.now(), { task_id: taskId, stage: stage.stage }));
  sendJson(ctx.res, 200, {
    job_id: view.jobId, task_id: taskId, stage: stage.stage, engine_id: stage.engineId, status: stage.status, input,
    // output.json holds the engine's data and its blob keys; older or foreign outputs are served as they are.
    output: isTaskOutputDocument(output) ? { data: output.data, blobs: output.blobs } : { data: output },
  });
}

async function jobTrace(deps: TranscriptionsDeps, ctx: AuthedRequestContext): Promise<void> {
  const view = await loadJob(deps, ctx);
  if (!deps.traces) {
    throw notFound('the trace store is off: start the processes with DALSTON_OTEL_ENABLED=true DALSTON_OTEL_SPAN_STORE=clickhouse '
      + '(or find the trace in Jaeger by its trace_id)');
  }
  if (!view.traceId) throw conflict(`job ${view.jobId} was created with tracing off and has no trace`);
  const spans = await deps.traces.getTrace(view.traceId, TRACE_SPAN_LIMIT);
  if (spans.length === 0) {
    throw notFound(`no spans of trace ${view.traceId} are stored yet (they are written in batches a few seconds after they end)`);
  }
  sendJson(ctx.res, 200, traceWaterfall(view.jobId, view.traceId, spans, TRACE_SPAN_LIMIT));
}

async function cancel(deps: TranscriptionsDeps, ctx: AuthedRequestContext): Promise<void> {
  const view = await loadJob(deps, ctx);
  if (isTerminal(view.status)) throw conflict(`job ${view.jobId} is already ${view.status} and cannot be cancelled`);
  if (view.status !== 'cancelling') {
    await deps.publisher.publishCancelRequested(
      { v: SCHEMA_VERSION, type: 'job.cancel_requested', jobId: view.jobId, at: deps.clock.now() },
      { requestId: ctx.requestId, tenantId: ctx.principal.tenantId },
    );
  }
  sendJson(ctx.res, 200, {
    id: view.jobId,
    status: 'cancelling',
    message: view.status === 'cancelling'
      ? 'cancellation was already requested'
      : 'cancellation requested: queued tasks are cancelled at once, running tasks stop at their next chunk',
  });
}

/**
 * Deletes a finished job and its data: every artifact under the job's prefix (upload, task outputs, transcript),
 * then its rows. Audited as job.deleted and data.deleted before anything is removed. A job still running must be
 * cancelled first (409), so no engine writes into a deleted job.
 */
async function deleteJob(deps: TranscriptionsDeps, ctx: AuthedRequestContext): Promise<void> {
  await removeJob(deps, ctx, await loadJob(deps, ctx));
  ctx.res.send(204);
}

/**
 * Deletes a finished job's data and rows, audited; a live job is a 409 (cancel it first). `reason` lands in the
 * audit events' details (`retention` when the purge worker deletes it).
 */
export async function removeJob(deps: TranscriptionsDeps, ctx: JobOrigin, view: JobView, reason = 'request'): Promise<void> {
  const running = deletions.get(view.jobId);
  if (running) {
    await running.catch(() => undefined);
    throw notFound(`transcription job ${view.jobId} not found`);
  }
  const deletion = removeClaimedJob(deps, ctx, view.jobId, reason);
  deletions.set(view.jobId, deletion);
  try {
    await deletion;
  } finally {
    deletions.delete(view.jobId);
  }
}

async function removeClaimedJob(deps: TranscriptionsDeps, ctx: JobOrigin, jobId: string, reason: string): Promise<void> {
  // Read again under the claim: a request that loaded the job before an earlier deletion finished must not repeat it.
  const view = await deps.reader.getJob(jobId, ctx.principal.tenantId);
  if (!view) throw notFound(`transcription job ${jobId} not found`);
  if (!isTerminal(view.status)) throw conflict(`job ${view.jobId} is ${view.status}; cancel it before deleting it`);
  const now = deps.clock.now();
  await publishAuditOrFail(deps.publisher, auditEvent(ctx, 'job.deleted', view, now, { status: view.status, reason }));
  // The row is hidden first: a read racing this deletion then finds no job (404), never a job whose files are gone.
  await deps.reader.deleteJob(view.jobId, ctx.principal.tenantId);
  const removed = await deps.store.deletePrefix(artifactKeys.jobPrefix(view.jobId));
  try {
    // The job's snapshot in Kafka (upload name, parameters) goes too: its actor writes a tombstone.
    await deps.publisher.publishJobDeleted({ v: SCHEMA_VERSION, type: 'job.deleted', jobId: view.jobId, at: now }, { requestId: ctx.requestId, tenantId: ctx.principal.tenantId });
  } catch (err) {
    ctx.log.warn({ [LOG.jobId]: view.jobId, err: err instanceof Error ? err.message : String(err) }, 'job.deleted not published; the snapshot is removed at its retention instead');
  }
  await publishAuditOrFail(deps.publisher, auditEvent(ctx, 'data.deleted', view, deps.clock.now(), { artifacts: removed, reason }));
}

const EXPORT_CONTENT_TYPES: Readonly<Record<ExportFormat, string>> = {
  txt: 'text/plain; charset=utf-8',
  srt: 'application/x-subrip; charset=utf-8',
  vtt: 'text/vtt; charset=utf-8',
  json: 'application/json; charset=utf-8',
};

async function exportTranscript(deps: TranscriptionsDeps, ctx: AuthedRequestContext): Promise<void> {
  const raw = (ctx.params['format'] ?? '').toLowerCase();
  const format = raw === 'webvtt' ? 'vtt' : raw;
  if (!includes(EXPORT_FORMATS, format)) throw badRequest(`export format "${raw}" must be one of ${EXPORT_FORMATS.join(', ')}`);
  const subtitles = parseSubtitleOptions(ctx.url.searchParams, format);
  const view = await loadJob(deps, ctx);
  if (view.status !== 'completed') throw conflict(`job ${view.jobId} is ${view.status}; only a completed job can be exported`);
  const renderer = format === 'json' ? undefined : deps.renderers?.[format];
  if (format !== 'json' && !renderer) {
    throw new HttpError(501, 'not_implemented', `export to ${format} is not available yet (the transcript renderers are not wired in); use json`);
  }
  const transcript = await readTranscript(deps, view);
  let body: string;
  try {
    body = renderer ? renderer(transcript, subtitles) : JSON.stringify(transcript);
  } catch (err) {
    // The stored document is ours, not the caller's: a render failure is a server fault, never a 400.
    throw new HttpError(500, 'internal_error', `the transcript of job ${view.jobId} could not be rendered as ${format}`, { cause: err });
  }
  await publishAuditOrFail(deps.publisher, auditEvent(ctx, 'transcript.exported', view, deps.clock.now(), { format, ...subtitles }));
  sendText(ctx.res, 200, body, EXPORT_CONTENT_TYPES[format], { 'content-disposition': `attachment; filename="${view.jobId}.${format}"` });
}

/** The routes of the native batch API. */
export function transcriptionRoutes(deps: TranscriptionsDeps): RouteSpec[] {
  const p = TRANSCRIPTIONS_PATH;
  return [
    { method: 'POST', path: p, auth: 'api_key', handler: (ctx) => submit(deps, ctx) },
    ...jobListingRoutes(p, deps.reader),
    { method: 'GET', path: `${p}/:id`, auth: 'api_key', handler: (ctx) => status(deps, ctx) },
    { method: 'GET', path: `${p}/:id/tasks/:task_id/artifacts`, auth: 'api_key', handler: (ctx) => taskArtifacts(deps, ctx) },
    { method: 'GET', path: `${p}/:id/audio`, auth: 'api_key', handler: (ctx) => originalAudio(deps, ctx) },
    { method: 'PATCH', path: `${p}/:id`, auth: 'api_key', handler: (ctx) => patchJob(deps, ctx) },
    { method: 'GET', path: `${p}/:id/trace`, auth: 'api_key', handler: (ctx) => jobTrace(deps, ctx) },
    { method: 'POST', path: `${p}/:id/cancel`, auth: 'api_key', handler: (ctx) => cancel(deps, ctx) },
    { method: 'DELETE', path: `${p}/:id`, auth: 'api_key', handler: (ctx) => deleteJob(deps, ctx) },
    { method: 'GET', path: `${p}/:id/export/:format`, auth: 'api_key', handler: (ctx) => exportTranscript(deps, ctx) },
  ];
}
