/**
 * The gateway's OpenAPI 3.0 description, served at `GET /openapi.json`: every HTTP route, its parameters and bodies,
 * the shape of its answers, and the error envelope every refusal uses. WebSocket endpoints are listed as the GET
 * they start with (a plain GET answers 426). `./dalston test` fuzzes the running stack from this document with
 * schemathesis (test/e2e/openapi-fuzz.test.ts), so a route that drifts from it shows.
 */
import { JOB_STATUSES, SCOPES, WEBHOOK_EVENTS } from '../streams/index.js';
import { DEEPGRAM_LISTEN_PATH } from './deepgram-listen.js';
import { ELEVENLABS_STT_PATH } from './elevenlabs-speech-to-text.js';
import { REALTIME_SESSIONS_PATH } from './realtime-sessions.js';
import { EXPORT_FORMATS, OPENAI_FIELDS, TRANSCRIPTIONS_PATH } from './transcriptions.js';

type Schema = Record<string, unknown>;

const str = (extra: Schema = {}): Schema => ({ type: 'string', ...extra });
const int = (extra: Schema = {}): Schema => ({ type: 'integer', ...extra });
const obj = (properties: Record<string, Schema>, required: readonly string[] = [], extra: Schema = {}): Schema => ({ type: 'object', properties, ...(required.length ? { required } : {}), ...extra });
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Schema, description: string) => ({ description, content: { 'application/json': { schema } } });
const text = (description: string, type = 'text/plain') => ({ description, content: { [type]: { schema: str() } } });
/** Every refusal: `{"error": {"code", "message"}}` (OpenAI's routes add `type` and `param`). */
const errors = { default: { description: 'An error: the status says which, the envelope why.', content: { 'application/json': { schema: ref('Error') } } } };
const pathParam = (name: string, description: string) => ({ name, in: 'path', required: true, description, schema: str() });
const query = (name: string, description: string, schema: Schema = str()) => ({ name, in: 'query', required: false, description, schema });
const secured = [{ bearer: [] }, { xiApiKey: [] }];

function op(summary: string, responses: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { summary, security: secured, ...extra, responses: { ...responses, ...errors } };
}

const jobIdParam = pathParam('id', 'Job id (`job_…`).');
const sessionIdParam = pathParam('id', 'Session id (`sess_…`).');
const webSocket = (summary: string) => ({
  get: op(`${summary} (WebSocket: connect with an Upgrade request; a plain GET answers 426)`, { 101: { description: 'Switching to WebSocket.' } }),
});

const submitFields: Record<string, Schema> = {
  file: str({ format: 'binary', description: 'The audio (anything ffmpeg decodes). Or `audio_url`.' }),
  audio_url: str({ description: 'http(s) URL the gateway fetches the audio from (public addresses only unless DALSTON_URL_ALLOW_HOSTS lists it).' }),
  language: str({ description: 'ISO 639-1 code or `auto`.' }),
  model: str({ description: 'A model id of `GET /v1/models`, `auto`, or an OpenAI model name (then the answer is synchronous, in OpenAI\'s shape).' }),
  timestamps_granularity: str({ enum: ['none', 'segment', 'word'] }),
  response_format: str({ enum: ['json', 'text', 'srt', 'vtt', 'verbose_json'], description: 'OpenAI mode only.' }),
  vad: str({ enum: ['true', 'false'], description: 'Also run the Silero VAD stage.' }),
  retention: str({ description: 'How long the job is kept after it ends: keep, none, or a duration such as 30d, 12h, 90m, 45s (bare number: days).' }),
  webhook_url: str({ description: 'http(s) URL the job\'s outcome is POSTed to, signed (Standard Webhooks) with the tenant\'s job signing secret (GET /v1/webhooks/job-signing-secret).' }),
  webhook_metadata: str({ description: 'A JSON object (at most 16 KB) echoed in the webhook payload as data.webhook_metadata; needs webhook_url.' }),
  ...Object.fromEntries(OPENAI_FIELDS.map((f) => [f, str({ description: 'OpenAI mode only.' })])),
};

const SCHEMAS: Record<string, Schema> = {
  Error: obj({
    error: obj({ code: { type: 'string', nullable: true }, message: str(), type: str(), param: { type: 'string', nullable: true } }, ['message']),
  }, ['error']),
  JobCreated: obj({ id: str(), status: str(), created_at: str(), request_id: str(), trace_id: { type: 'string', nullable: true } }, ['id', 'status']),
  Job: obj({ id: str(), status: str({ enum: [...JOB_STATUSES] }), model: { type: 'string', nullable: true }, stages: { type: 'array', items: { type: 'object' } } }, ['id', 'status']),
  JobList: obj({ data: { type: 'array', items: ref('Job') }, has_more: { type: 'boolean' }, next_cursor: { type: 'string', nullable: true } }, ['data', 'has_more']),
  Session: obj({ id: str(), status: str() }, ['id', 'status']),
  ApiKey: obj({ id: str(), name: str(), tenant: str(), scopes: { type: 'array', items: str() }, status: str({ enum: ['active', 'expired', 'revoked'] }) }, ['id', 'tenant', 'scopes', 'status']),
  WebhookEndpoint: obj({
    id: str(), object: str(), tenant: str(), url: str(), events: { type: 'array', items: str({ enum: [...WEBHOOK_EVENTS, '*'] }) }, description: str(), enabled: { type: 'boolean' },
    created_at: str(), updated_at: str(), secret_created_at: str(), previous_secret_expires_at: { type: 'string', nullable: true },
  }, ['id', 'url', 'events', 'enabled']),
  WebhookEndpointWithSecret: obj({ id: str(), url: str(), events: { type: 'array', items: str() }, secret: str() }, ['id', 'secret']),
  WebhookDelivery: obj({
    id: str(), event_type: str(), subject_id: str(), status: str({ enum: ['delivered', 'pending', 'failed', 'refused', 'dropped'] }), attempts: int(),
    next_attempt_at: { type: 'string', nullable: true }, attempt_log: { type: 'array', items: { type: 'object' } },
  }, ['id', 'status', 'attempts', 'attempt_log']),
  ApiKeyCreated: obj({ id: str(), key: str(), tenant: str(), scopes: { type: 'array', items: str() } }, ['id', 'key']),
  SessionList: obj({ sessions: { type: 'array', items: ref('Session') } }, ['sessions']),
  OpenAiTranscription: obj({ text: str() }),
  ElevenLabsTranscript: obj({ text: str(), language_code: str(), words: { type: 'array', items: { type: 'object' } }, transcription_id: str() }, ['text']),
  DeepgramResponse: obj({ metadata: { type: 'object' }, results: obj({ channels: { type: 'array', items: { type: 'object' } } }) }, ['metadata', 'results']),
};

export function openApiDocument(serverUrl?: string): Record<string, unknown> {
  const t = TRANSCRIPTIONS_PATH;
  const s = REALTIME_SESSIONS_PATH;
  return {
    openapi: '3.0.3',
    info: {
      title: 'Dalston', version: '0.1.0',
      description: 'Self-hosted speech-to-text: batch jobs, real-time sessions, and OpenAI, ElevenLabs and Deepgram compatible routes.',
    },
    ...(serverUrl ? { servers: [{ url: serverUrl }] } : {}),
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'The API key; Deepgram\'s SDK sends `Authorization: Token <key>`, also accepted.' },
        xiApiKey: { type: 'apiKey', in: 'header', name: 'xi-api-key', description: 'The API key, as ElevenLabs\' SDK sends it.' },
      },
      schemas: SCHEMAS,
    },
    paths: {
      '/health': { get: { summary: 'Liveness', security: [], responses: { 200: json(obj({ status: str() }, ['status']), 'Alive.') } } },
      '/ready': { get: { summary: 'Readiness (Kafka, ClickHouse)', security: [], responses: { 200: json({ type: 'object' }, 'Ready.'), 503: json({ type: 'object' }, 'Not ready, with the failing checks.') } } },
      '/metrics': { get: { summary: 'Prometheus metrics', security: [], responses: { 200: text('Prometheus text format.') } } },
      '/openapi.json': { get: { summary: 'This document', security: [], responses: { 200: json({ type: 'object' }, 'OpenAPI 3.0.') } } },
      '/v1/models': { get: op('Models: installed and installable', { 200: json(obj({ models: { type: 'array', items: { type: 'object' } } }, ['models']), 'The catalogue.') }) },
      [t]: {
        post: op('Submit a transcription job (or, with an OpenAI model name, transcribe synchronously)', {
          201: json(ref('JobCreated'), 'Queued.'),
          200: {
            description: 'OpenAI mode: the transcription (with stream=true, server-sent transcript.text.delta and transcript.text.done events).',
            content: {
              'application/json': { schema: ref('OpenAiTranscription') }, 'text/plain': { schema: str() }, 'text/event-stream': { schema: str() },
              'application/x-subrip': { schema: str() }, 'text/vtt': { schema: str() },
            },
          },
        }, { requestBody: { required: true, content: { 'multipart/form-data': { schema: obj(submitFields) } } } }),
        get: op('List jobs (cursor pagination, newest first)', { 200: json(ref('JobList'), 'A page.') }, {
          parameters: [
            query('limit', '1–200.', int({ minimum: 1, maximum: 200 })), query('cursor', '`next_cursor` of the previous page.'),
            query('status', 'Comma-separated statuses.'), query('model', 'Model id.'),
            query('created_after', 'ISO 8601 time.'), query('created_before', 'ISO 8601 time.'),
            query('sort', 'Order.', str({ enum: ['created_desc', 'created_asc'] })), query('tag', 'Only jobs with this tag.'),
          ],
        }),
      },
      '/v1/audio/translations': {
        post: op('OpenAI translations: speech in any language Whisper knows → English text (needs a multilingual model)', {
          200: { description: 'The translation.', content: { 'application/json': { schema: ref('OpenAiTranscription') }, 'text/plain': { schema: str() }, 'application/x-subrip': { schema: str() }, 'text/vtt': { schema: str() } } },
        }, {
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: obj({
                  file: str({ format: 'binary' }), model: str(), prompt: str(), temperature: str(),
                  response_format: str({ enum: ['json', 'text', 'srt', 'vtt', 'verbose_json'] }),
                }, ['file', 'model']),
              },
            },
          },
        }),
      },
      [`${t}/{id}`]: {
        get: op('A job: status, stages, and the transcript once completed', { 200: json(ref('Job'), 'The job.') }, { parameters: [jobIdParam] }),
        delete: op('Delete a finished job: its data and rows (audited)', { 200: json({ type: 'object' }, 'Deleted.'), 204: { description: 'Deleted.' } }, { parameters: [jobIdParam] }),
        patch: op('Name or tag a job', { 200: json(ref('Job'), 'The job, renamed or retagged.') }, {
          parameters: [jobIdParam],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: obj({ name: { type: 'string', nullable: true, maxLength: 256 }, tags: { type: 'array', maxItems: 32, items: str({ minLength: 1, maxLength: 64 }) } }) } },
          },
        }),
      },
      [`${t}/{id}/cancel`]: { post: op('Cancel a job (hard cancel)', { 200: json({ type: 'object' }, 'Cancelling.'), 202: json({ type: 'object' }, 'Cancelling.') }, { parameters: [jobIdParam] }) },
      [`${t}/{id}/audio`]: {
        get: op('The original upload, streamed (Range: bytes=… for part of it)', {
          200: { description: 'The audio.', content: { 'application/octet-stream': { schema: str({ format: 'binary' }) }, 'audio/wav': { schema: str({ format: 'binary' }) } } },
          206: { description: 'The requested range.', content: { 'application/octet-stream': { schema: str({ format: 'binary' }) }, 'audio/wav': { schema: str({ format: 'binary' }) } } },
        }, { parameters: [jobIdParam, { name: 'Range', in: 'header', required: false, schema: str() }] }),
      },
      [`${t}/{id}/trace`]: { get: op('The job\'s trace as a waterfall', { 200: json({ type: 'object' }, 'Spans.') }, { parameters: [jobIdParam] }) },
      [`${t}/{id}/tasks/{task_id}/artifacts`]: {
        get: op('A task\'s input and output', { 200: json({ type: 'object' }, 'Artifacts.') }, { parameters: [jobIdParam, pathParam('task_id', 'Task id.')] }),
      },
      [`${t}/{id}/export/{format}`]: {
        get: op('The transcript as txt, json, srt or vtt', {
          200: { description: 'The export.', content: { 'text/plain': { schema: str() }, 'application/json': { schema: { type: 'object' } }, 'text/vtt': { schema: str() }, 'application/x-subrip': { schema: str() } } },
        }, {
          parameters: [
            jobIdParam, { name: 'format', in: 'path', required: true, schema: str({ enum: [...EXPORT_FORMATS] }) },
            query('max_chars_per_line', 'Subtitles: 10–200.', int()), query('max_lines_per_cue', 'Subtitles: 1–10.', int()), query('max_cue_seconds', 'Subtitles: seconds.', { type: 'number' }),
          ],
        }),
      },
      [`${t}/stream`]: webSocket('Native real-time transcription'),
      '/v1/realtime': webSocket('OpenAI Realtime transcription'),
      '/v1/speech-to-text/realtime': webSocket('ElevenLabs real-time speech-to-text'),
      '/v1/realtime/tokens': { post: op('A single-use real-time token', { 201: json(obj({ token: str(), expires_at: str(), expires_in: { type: 'number' } }, ['token']), 'Minted.') }) },
      '/v1/realtime/status': { get: op('Real-time capacity and live engines', { 200: json({ type: 'object' }, 'Status.') }) },
      '/v1/single-use-token/{token_type}': {
        post: op('ElevenLabs: a single-use real-time token', { 200: json(obj({ token: str(), token_type: str(), expires_at: str(), tenant_id: str() }, ['token']), 'Minted.') }, {
          parameters: [pathParam('token_type', '`realtime_scribe` (or `realtime`).')],
        }),
      },
      '/v1/realtime/transcription_sessions': {
        post: op('OpenAI: a transcription session\'s client secret (a single-use real-time token)', {
          200: json(obj({ id: str(), client_secret: obj({ value: str(), expires_at: int() }, ['value', 'expires_at']) }, ['client_secret']), 'Minted.'),
        }, { requestBody: { required: false, content: { 'application/json': { schema: { type: 'object' } } } } }),
      },
      '/v1/keys': {
        post: op('Issue an API key (admin; the bootstrap key may name a tenant)', { 201: json(ref('ApiKeyCreated'), 'The key, shown this once.') }, {
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: obj({
                  name: str(), scopes: { type: 'array', items: str({ enum: [...SCOPES] }) }, tenant: str(), expires_at: str({ format: 'date-time' }),
                  expires_in_seconds: int({ minimum: 1 }),
                }, ['name', 'scopes']),
              },
            },
          },
        }),
        get: op('The tenant\'s API keys (admin)', { 200: json(obj({ data: { type: 'array', items: ref('ApiKey') } }, ['data']), 'The keys, never their secrets.') }, {
          parameters: [query('tenant', 'Bootstrap key only: one tenant\'s keys.')],
        }),
      },
      '/v1/webhooks': {
        post: op('Register a webhook endpoint (scope webhooks); the signing secret is shown this once', { 201: json(ref('WebhookEndpointWithSecret'), 'Registered.') }, {
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: obj({
                  url: str({ description: 'http(s); private, loopback and link-local targets are refused unless DALSTON_WEBHOOK_ALLOW_HOSTS lists them.' }),
                  events: { type: 'array', items: str({ enum: [...WEBHOOK_EVENTS, '*'] }) }, description: str(), enabled: { type: 'boolean' }, tenant: str(),
                }, ['url']),
              },
            },
          },
        }),
        get: op('The tenant\'s webhook endpoints', { 200: json(obj({ data: { type: 'array', items: ref('WebhookEndpoint') } }, ['data']), 'The endpoints, never their secrets.') }, {
          parameters: [query('tenant', 'Bootstrap key only: one tenant\'s endpoints.')],
        }),
      },
      '/v1/webhooks/job-signing-secret': {
        get: op('The secret deliveries to jobs\' own webhook_url are signed with', { 200: json(obj({ tenant: str(), secret: str() }, ['tenant', 'secret']), 'The tenant\'s job signing secret.') }),
      },
      '/v1/webhooks/{id}': {
        get: op('A webhook endpoint', { 200: json(ref('WebhookEndpoint'), 'The endpoint.') }, { parameters: [pathParam('id', 'Endpoint id (`wh_…`).')] }),
        patch: op('Change a webhook endpoint', { 200: json(ref('WebhookEndpoint'), 'Changed.') }, {
          parameters: [pathParam('id', 'Endpoint id (`wh_…`).')],
          requestBody: { required: true, content: { 'application/json': { schema: obj({ url: str(), events: { type: 'array', items: str({ enum: [...WEBHOOK_EVENTS, '*'] }) }, description: str(), enabled: { type: 'boolean' } }) } } },
        }),
        delete: op('Delete a webhook endpoint (pending deliveries to it are dropped)', { 200: json(obj({ id: str(), deleted: { type: 'boolean' } }, ['id', 'deleted']), 'Deleted.') }, {
          parameters: [pathParam('id', 'Endpoint id (`wh_…`).')],
        }),
      },
      '/v1/webhooks/{id}/rotate-secret': {
        post: op('A new signing secret; the previous one signs beside it for DALSTON_WEBHOOK_SECRET_OVERLAP_SECONDS', { 200: json(ref('WebhookEndpointWithSecret'), 'Rotated: the new secret, shown this once.') }, {
          parameters: [pathParam('id', 'Endpoint id (`wh_…`).')],
        }),
      },
      '/v1/webhooks/{id}/deliveries': {
        get: op('The endpoint\'s deliveries, newest first, each with its attempts', { 200: json(obj({ data: { type: 'array', items: ref('WebhookDelivery') } }, ['data']), 'Deliveries.') }, {
          parameters: [pathParam('id', 'Endpoint id (`wh_…`).'), query('status', 'delivered, pending, failed, refused or dropped.'), query('limit', '1–100.', int({ minimum: 1 }))],
        }),
      },
      '/v1/webhooks/{id}/deliveries/{delivery_id}/retry': {
        post: op('Send a delivery again now (same webhook-id and body)', { 202: json(obj({ id: str(), status: str(), attempt: int() }, ['id', 'attempt']), 'Scheduled.') }, {
          parameters: [pathParam('id', 'Endpoint id (`wh_…`).'), pathParam('delivery_id', 'Delivery id (`msg_…`, the webhook-id).')],
        }),
      },
      '/v1/audit': {
        get: op('The audit trail, newest first (admin; a tenant sees its own)', {
          200: json(obj({ data: { type: 'array', items: { type: 'object' } }, next_cursor: { type: 'string', nullable: true } }, ['data']), 'A page.'),
        }, {
          parameters: [
            query('event_type', 'Comma-separated event types.'), query('job_id', 'A job id.'), query('session_id', 'A session id.'), query('key_id', 'A key id.'),
            query('since', 'ISO 8601 time or epoch ms.'), query('until', 'ISO 8601 time or epoch ms.'), query('limit', '1–500.', int({ minimum: 1 })),
            query('cursor', 'From the previous page.'), query('tenant', 'Bootstrap key only: one tenant.'),
          ],
        }),
      },
      '/v1/keys/{id}': {
        get: op('An API key (admin)', { 200: json(ref('ApiKey'), 'The key, without its secret.') }, { parameters: [pathParam('id', 'Key id (`key_…`).')] }),
        delete: op('Revoke an API key (admin)', { 200: json(ref('ApiKey'), 'Revoked.') }, { parameters: [pathParam('id', 'Key id (`key_…`).')] }),
      },
      [s]: {
        get: op('List real-time sessions', { 200: json(ref('SessionList'), 'A page.') }, {
          parameters: [
            query('status', 'Session status.'), query('since', 'ISO 8601 time or epoch ms.'), query('until', 'ISO 8601 time or epoch ms.'),
            query('model', 'Model id.'), query('limit', '1–100.', int({ minimum: 1 })), query('cursor', 'From the previous page.'),
          ],
        }),
      },
      [`${s}/{id}`]: {
        get: op('A real-time session', { 200: json(ref('Session'), 'The session.') }, { parameters: [sessionIdParam] }),
        delete: op('Delete an ended session\'s data', { 200: json({ type: 'object' }, 'Deleted.'), 204: { description: 'Deleted.' } }, { parameters: [sessionIdParam] }),
      },
      [`${s}/{id}/transcript`]: { get: op('An ended session\'s transcript', { 200: json({ type: 'object' }, 'The transcript.') }, { parameters: [sessionIdParam] }) },
      [`${s}/{id}/audio`]: {
        get: op('An ended session\'s audio (WAV), streamed (Range: bytes=… for part of it)', {
          200: { description: 'WAV.', content: { 'audio/wav': { schema: str({ format: 'binary' }) } } },
          206: { description: 'The requested range.', content: { 'audio/wav': { schema: str({ format: 'binary' }) } } },
        }, { parameters: [sessionIdParam] }),
      },
      [ELEVENLABS_STT_PATH]: {
        post: op('ElevenLabs speech-to-text (synchronous, or with webhook=true accepted at once)', {
          200: json({ anyOf: [ref('ElevenLabsTranscript'), obj({ message: str(), request_id: str(), transcription_id: str() }, ['message', 'transcription_id'])] }, 'The transcript, or the acceptance of a webhook=true request.'),
        }, {
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: obj({
                  model_id: str(), file: str({ format: 'binary' }), cloud_storage_url: str(), language_code: str(),
                  timestamps_granularity: str({ enum: ['none', 'word', 'character'] }), diarize: str(), num_speakers: str(), tag_audio_events: str(),
                  webhook: str({ enum: ['true', 'false'], description: 'true: answer at once; the tenant\'s endpoints (or the one webhook_id names) receive the result.' }),
                  webhook_id: str(), webhook_metadata: str({ description: 'A JSON object echoed in the webhook payload.' }),
                }, ['model_id']),
              },
            },
          },
        }),
      },
      [`${ELEVENLABS_STT_PATH}/transcripts/{id}`]: {
        get: op('An ElevenLabs transcript by id', { 200: json(ref('ElevenLabsTranscript'), 'The transcript.') }, { parameters: [pathParam('id', 'transcription_id (a job id).')] }),
        delete: op('Delete an ElevenLabs transcript', { 200: json({ type: 'object' }, 'Deleted.'), 204: { description: 'Deleted.' } }, { parameters: [pathParam('id', 'transcription_id (a job id).')] }),
      },
      [DEEPGRAM_LISTEN_PATH]: {
        post: op('Deepgram pre-recorded transcription (synchronous): the audio as the body, or {"url": …}', { 200: json(ref('DeepgramResponse'), 'The result.') }, {
          parameters: ['model', 'language', 'punctuate', 'smart_format', 'utterances', 'paragraphs', 'diarize', 'multichannel'].map((n) => query(n, 'Deepgram option.')),
          requestBody: {
            required: true,
            content: {
              'audio/wav': { schema: str({ format: 'binary' }) },
              'application/octet-stream': { schema: str({ format: 'binary' }) },
              'application/json': { schema: obj({ url: str() }, ['url']) },
            },
          },
        }),
        get: webSocket('Deepgram live transcription').get,
      },
    },
  };
}
