/**
 * ElevenLabs' batch speech-to-text API (`POST /v1/speech-to-text`, `GET|DELETE /v1/speech-to-text/transcripts/{id}`,
 * `xi-api-key` auth) over Dalston jobs: the upload becomes a job like any other, the request waits for its outcome on
 * jobs.results and answers in ElevenLabs' shape. Parameters whose feature Dalston does not have yet (diarization,
 * audio-event tags, multichannel, key terms, extra formats…) are accepted and listed in the answer's
 * `metadata.not_applied`, never silently pretended.
 */
import { LOG } from '../core/observability-names.js';
import type { JobParams, JobWebhook } from '../streams/index.js';
import { parseWebhookMetadata, requireSomeEndpoint } from './webhooks/job-webhook.js';
import { HttpError, badRequest, conflict } from './errors.js';
import { admitJob } from './job-admission.js';
import { sendJson } from './http-exchange.js';
import type { AuthedRequestContext, RouteSpec } from './http-server.js';
import type { JobOutcomeWaiter, JobView } from './ports.js';
import { elevenLabsWordItems } from './realtime/dialects/elevenlabs.js';
import { chooseLanguage, chooseModel } from './realtime/dialects/session-choices.js';
import { isTerminal, timedItems, transcriptFields } from './job-view.js';
import { jobAudioSink, loadJob, queueJob, readTranscript, removeJob, urlSource, type TranscriptionsDeps } from './transcriptions.js';
import { syncFailure, waitForTranscript } from './sync-answer.js';
import { receiveUpload } from './upload.js';

export const ELEVENLABS_STT_PATH = '/v1/speech-to-text';

/** ElevenLabs' batch model names: they run the server's default model. */
const ELEVENLABS_MODELS: ReadonlySet<string> = new Set(['scribe_v1', 'scribe_v1_experimental', 'scribe_v2']);

/** Fields of ElevenLabs' request this server acts on. */
const APPLIED_FIELDS = ['model_id', 'language_code', 'timestamps_granularity', 'file_format', 'webhook', 'webhook_id', 'webhook_metadata'] as const;
/** Fields accepted and reported as not applied when they ask for something Dalston does not do yet. */
const NOT_APPLIED_FIELDS = [
  'diarize', 'num_speakers', 'diarization_threshold', 'detect_speaker_roles', 'tag_audio_events', 'keyterms', 'use_multi_channel',
  'multichannel_output_style', 'additional_formats', 'temperature', 'seed',
  'entity_detection', 'entity_redaction', 'entity_redaction_mode', 'no_verbatim', 'use_speaker_library', 'transcript_edit', 'enable_logging',
] as const;
/** Fields that name an input other than an uploaded file and are not built: `source_url` (a page such as YouTube). */
const URL_FIELDS = ['source_url'] as const;
/** The audio's URL instead of a file part: fetched by the gateway (gateway/url-audio.ts). */
const CLOUD_URL_FIELD = 'cloud_storage_url';

export interface ElevenLabsDeps extends TranscriptionsDeps {
  readonly outcomes: JobOutcomeWaiter;
  /** How long a request waits for its job (DALSTON_SYNC_TIMEOUT_SECONDS). */
  readonly syncTimeoutMs: number;
}

interface ElevenLabsRequest {
  readonly params: JobParams;
  /** `webhook=true`: answer at once; the tenant's endpoints (or the one `webhook_id` names) get the result. */
  readonly webhook: boolean;
  readonly timestamps: 'none' | 'word' | 'character';
  readonly notApplied: readonly string[];
}

/** A value that asks for a feature (not "off"): `false`, `0`, `[]`, `{}`, `""` ask for nothing. */
function asksForSomething(name: string, value: string): boolean {
  const v = value.trim();
  if (v === '' || v === 'false' || v === '[]' || v === '{}' || v === 'null') return false;
  // ElevenLabs tags audio events by default; Dalston never does, so only an explicit true is reported.
  return !(name === 'tag_audio_events' && v !== 'true');
}

/** Checks ElevenLabs' fields; throws a 400 (or a 501 for URL inputs) naming the field. Pure. */
export function parseElevenLabsFields(fields: readonly (readonly [string, string])[]): ElevenLabsRequest {
  const seen = new Map<string, string>();
  const notApplied = new Set<string>();
  for (const [name, value] of fields) {
    if ((URL_FIELDS as readonly string[]).includes(name)) {
      throw new HttpError(501, 'not_implemented', `${name} is not supported yet; upload the audio as "file"`);
    }
    if (name === CLOUD_URL_FIELD) continue;
    if ((NOT_APPLIED_FIELDS as readonly string[]).includes(name)) {
      if (asksForSomething(name, value)) notApplied.add(name);
      continue;
    }
    if (!(APPLIED_FIELDS as readonly string[]).includes(name)) {
      throw badRequest(`unknown field "${name}"; accepted: file, ${[CLOUD_URL_FIELD, ...APPLIED_FIELDS, ...NOT_APPLIED_FIELDS].join(', ')}`);
    }
    if (seen.has(name)) throw badRequest(`field "${name}" was sent more than once`);
    seen.set(name, value.trim());
  }
  const modelId = seen.get('model_id');
  if (modelId === undefined || modelId === '') throw badRequest('model_id is required (e.g. scribe_v1, or a model of GET /v1/models)');
  const model = chooseModel(modelId, (id) => ELEVENLABS_MODELS.has(id));
  if (!model.ok) throw badRequest(model.message);
  const language = chooseLanguage(seen.get('language_code'));
  if (!language.ok) throw badRequest(language.message);
  const granularity = seen.get('timestamps_granularity') || 'word';
  if (granularity !== 'none' && granularity !== 'word' && granularity !== 'character') {
    throw badRequest(`timestamps_granularity "${granularity}" must be none, word or character`);
  }
  // Character timings are not produced: words are.
  if (granularity === 'character') notApplied.add('timestamps_granularity');
  const format = seen.get('file_format');
  if (format !== undefined && format !== '' && format !== 'other' && format !== 'pcm_s16le_16') {
    throw badRequest(`file_format "${format}" must be pcm_s16le_16 or other`);
  }
  const webhookFlag = seen.get('webhook') || 'false';
  if (webhookFlag !== 'true' && webhookFlag !== 'false') throw badRequest(`webhook "${webhookFlag.slice(0, 20)}" must be true or false`);
  const webhookId = seen.get('webhook_id') || undefined;
  const webhookMetadata = seen.get('webhook_metadata') || undefined;
  if (webhookFlag !== 'true' && (webhookId !== undefined || webhookMetadata !== undefined)) throw badRequest('webhook_id and webhook_metadata need webhook=true');
  // ElevenLabs jobs notify endpoints only when asked to (as ElevenLabs does): synchronous callers already have the answer.
  const webhook: JobWebhook = webhookFlag === 'true'
    ? { endpoints: webhookId !== undefined ? 'one' : 'all', ...(webhookId !== undefined ? { endpointId: webhookId } : {}), ...(webhookMetadata !== undefined ? { metadata: parseWebhookMetadata(webhookMetadata) } : {}) }
    : { endpoints: 'none' };
  return {
    params: { api: 'elevenlabs', webhook, ...(model.model ? { model: model.model } : {}), ...(language.language ? { language: language.language } : {}), timestampsGranularity: granularity === 'none' ? 'none' : 'word' },
    timestamps: granularity,
    webhook: webhookFlag === 'true',
    notApplied: [...notApplied].sort(),
  };
}

/** ElevenLabs' answer from a Dalston transcript. */
export function elevenLabsTranscript(doc: unknown, view: { readonly jobId: string; readonly language?: string | undefined; readonly audioDurationSeconds?: number | undefined }, withWords: boolean, notApplied: readonly string[]): Record<string, unknown> {
  const { text, words } = transcriptFields(doc);
  // ElevenLabs' SDK requires a logprob on every item; a recogniser without word confidences gives 0.
  return {
    language_code: view.language ?? 'unknown',
    // The recognisers do not score their language choice: a named or single-language model is taken as certain.
    language_probability: view.language ? 1 : 0,
    text,
    words: withWords ? elevenLabsWordItems(timedItems(words), 0) : [],
    transcription_id: view.jobId,
    ...(view.audioDurationSeconds !== undefined ? { audio_duration_secs: view.audioDurationSeconds } : {}),
    metadata: { not_applied: notApplied },
  };
}

async function convert(deps: ElevenLabsDeps, ctx: AuthedRequestContext): Promise<void> {
  let parsed: ElevenLabsRequest | undefined;
  await admitJob(deps.admission, ctx.req);
  const sink = jobAudioSink(deps, ctx);
  const upload = await receiveUpload(ctx.req, {
    maxFileBytes: deps.uploadMaxBytes, sink, validateFields: (fields) => void (parsed = parseElevenLabsFields(fields)),
    url: { field: CLOUD_URL_FIELD, fetch: urlSource(deps, CLOUD_URL_FIELD) },
  });
  const request = parsed ?? parseElevenLabsFields(upload.fields);
  if (request.webhook && request.params.webhook?.endpoints === 'all') {
    try {
      requireSomeEndpoint(ctx.principal.tenantId, deps.webhooks);
    } catch (err) {
      await sink.discard();
      throw err;
    }
  }
  const created = await queueJob(deps, ctx, sink, request.params);
  ctx.res.setHeader('request-id', ctx.requestId);
  if (request.webhook) {
    // ElevenLabs' asynchronous answer: the result goes to the webhook endpoint(s).
    sendJson(ctx.res, 200, { message: 'Request accepted. The transcription result will be sent to the webhook endpoint(s).', request_id: ctx.requestId, transcription_id: created.jobId });
    return;
  }
  const result = await waitForTranscript(deps.outcomes, deps.store, created.jobId, deps.syncTimeoutMs);
  if (result.kind !== 'completed') {
    if (result.kind === 'timeout') ctx.log.warn({ [LOG.jobId]: created.jobId, timeout_ms: deps.syncTimeoutMs }, 'synchronous ElevenLabs answer timed out; the job continues');
    throw syncFailure(result, created.jobId, `${ELEVENLABS_STT_PATH}/transcripts/${created.jobId}`, deps.syncTimeoutMs);
  }
  const { outcome } = result;
  sendJson(ctx.res, 200, elevenLabsTranscript(result.transcript, { jobId: created.jobId, language: outcome.language ?? request.params.language, audioDurationSeconds: outcome.audioDurationSeconds },
    request.timestamps !== 'none', request.notApplied));
}

/**
 * The job as its row says, brought up to date by an outcome this gateway has already read: the answer to convert
 * went out when the outcome arrived, and the row (written by the ClickHouse sink) can lag it, so a get or delete
 * right after convert must not see the job still running.
 */
async function currentJob(deps: ElevenLabsDeps, ctx: AuthedRequestContext): Promise<JobView> {
  const view = await loadJob(deps, ctx);
  if (isTerminal(view.status)) return view;
  const outcome = deps.outcomes.recent(view.jobId);
  if (!outcome) return view;
  return {
    ...view, status: outcome.status, completedAt: outcome.completedAt,
    ...(outcome.language !== undefined ? { language: outcome.language } : {}),
    ...(outcome.audioDurationSeconds !== undefined ? { audioDurationSeconds: outcome.audioDurationSeconds } : {}),
    ...(outcome.transcriptKey !== undefined ? { transcriptKey: outcome.transcriptKey } : {}),
  };
}

/**
 * For a delete: the job once its row is terminal. A delete must not run before the sink has written the finished
 * row, or that late row would bring a job whose data is gone back; a job whose outcome is known waits for it briefly.
 */
async function settledJob(deps: ElevenLabsDeps, ctx: AuthedRequestContext): Promise<JobView> {
  for (const deadline = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 100))) {
    const view = await loadJob(deps, ctx);
    if (isTerminal(view.status) || deps.outcomes.recent(view.jobId) === undefined || Date.now() > deadline) return view;
  }
}

async function completedJob(deps: ElevenLabsDeps, ctx: AuthedRequestContext): Promise<JobView> {
  const view = await currentJob(deps, ctx);
  if (view.status !== 'completed') throw conflict(`transcription ${view.jobId} is ${view.status}`);
  return view;
}

export function elevenLabsRoutes(deps: ElevenLabsDeps): RouteSpec[] {
  return [
    { method: 'POST', path: ELEVENLABS_STT_PATH, auth: 'api_key', handler: (ctx) => convert(deps, ctx) },
    {
      method: 'GET', path: `${ELEVENLABS_STT_PATH}/transcripts/:id`, auth: 'api_key',
      handler: async (ctx) => {
        const view = await completedJob(deps, ctx);
        sendJson(ctx.res, 200, elevenLabsTranscript(await readTranscript(deps, view), view, true, []));
      },
    },
    {
      method: 'DELETE', path: `${ELEVENLABS_STT_PATH}/transcripts/:id`, auth: 'api_key',
      handler: async (ctx) => {
        await removeJob(deps, ctx, await settledJob(deps, ctx));
        sendJson(ctx.res, 200, { message: 'deleted', transcription_id: ctx.params['id'] ?? '' });
      },
    },
  ];
}
