/**
 * Deepgram's pre-recorded API (`POST /v1/listen`, the audio as the raw body, options in the query,
 * `Authorization: Token <key>`) over Dalston jobs: the body is streamed to the artifact store, the job runs like any
 * other, and the request waits for its outcome on jobs.results and answers with Deepgram's `results.channels[]`.
 * Options for features Dalston does not have yet are accepted and listed in `metadata.dalston.not_applied`.
 */
import { LOG } from '../core/observability-names.js';
import type { JobParams } from '../streams/index.js';
import { badRequest } from './errors.js';
import { admitJob } from './job-admission.js';
import { sendJson } from './http-exchange.js';
import type { AuthedRequestContext, RouteSpec } from './http-server.js';
import { timedItems, transcriptFields, type TimedItem } from './job-view.js';
import type { JobOutcomeWaiter } from './ports.js';
import { chooseLanguage, chooseModel } from './realtime/dialects/session-choices.js';
import { isDeepgramModel } from './realtime/dialects/deepgram.js';
import { syncFailure, waitForTranscript } from './sync-answer.js';
import { TRANSCRIPTIONS_PATH, jobAudioSink, queueJob, urlSource, type TranscriptionsDeps } from './transcriptions.js';
import { receiveRawBody, receiveSmallJson } from './upload.js';

export const DEEPGRAM_LISTEN_PATH = '/v1/listen';

/** Options whose effect Dalston's transcripts have anyway (punctuated, formatted text; per-sentence utterances). */
const APPLIED_OPTIONS: ReadonlySet<string> = new Set(['model', 'language', 'punctuate', 'smart_format', 'utterances', 'encoding', 'sample_rate', 'channels', 'version']);

export interface DeepgramDeps extends TranscriptionsDeps {
  readonly outcomes: JobOutcomeWaiter;
  /** DALSTON_SYNC_TIMEOUT_SECONDS, in ms. */
  readonly syncTimeoutMs: number;
}

export interface DeepgramRequest {
  readonly params: JobParams;
  readonly model: string;
  readonly utterances: boolean;
  readonly notApplied: readonly string[];
}

const isOn = (v: string): boolean => v !== '' && v !== 'false' && v !== '0';

/** Deepgram's query options → job parameters; a bad model or language is a 400. Pure. */
export function parseDeepgramQuery(query: URLSearchParams): DeepgramRequest {
  const modelName = query.get('model') ?? 'nova-3';
  const model = chooseModel(modelName, isDeepgramModel);
  if (!model.ok) throw badRequest(model.message);
  const language = chooseLanguage(query.get('language') ?? undefined);
  if (!language.ok) throw badRequest(language.message);
  const notApplied = new Set<string>();
  for (const [name, value] of query) if (!APPLIED_OPTIONS.has(name) && isOn(value)) notApplied.add(name);
  return {
    params: { api: 'deepgram', timestampsGranularity: 'word', ...(model.model ? { model: model.model } : {}), ...(language.language ? { language: language.language } : {}) },
    model: modelName,
    utterances: isOn(query.get('utterances') ?? ''),
    notApplied: [...notApplied].sort(),
  };
}

/** Deepgram's word: `word` lower-case without punctuation, `punctuated_word` as written. */
function deepgramWord(w: TimedItem): Record<string, unknown> {
  return {
    word: w.text.toLowerCase().replace(/^[^\p{L}\p{N}']+|[^\p{L}\p{N}']+$/gu, ''), start: w.start, end: w.end,
    ...(w.confidence !== undefined ? { confidence: w.confidence } : {}), punctuated_word: w.text,
  };
}

/** Deepgram's pre-recorded response from a Dalston transcript (confidences only where the recogniser gives them). */
export function deepgramResponse(
  doc: unknown, meta: { readonly requestId: string; readonly jobId: string; readonly createdAt: number; readonly duration: number; readonly model: string },
  request: Pick<DeepgramRequest, 'utterances' | 'notApplied'>,
): Record<string, unknown> {
  const { text, segments, words } = transcriptFields(doc);
  const timed = timedItems(words);
  return {
    metadata: {
      transaction_key: 'deprecated', request_id: meta.requestId, sha256: '', created: new Date(meta.createdAt).toISOString(),
      duration: meta.duration, channels: 1, models: [meta.model], model_info: { [meta.model]: { name: meta.model, version: '', arch: 'dalston' } },
      dalston: { job_id: meta.jobId, not_applied: request.notApplied },
    },
    results: {
      channels: [{ alternatives: [{ transcript: text, words: timed.map(deepgramWord) }] }],
      ...(request.utterances ? {
        utterances: segments.flatMap((seg, id) => {
          const [timedSeg] = timedItems([seg]);
          if (!timedSeg) return [];
          const segWords = (seg as Record<string, unknown>)['words'];
          return [{ id: `${meta.jobId}-${id}`, start: timedSeg.start, end: timedSeg.end, channel: 0, transcript: timedSeg.text.trim(),
            words: timedItems(Array.isArray(segWords) ? (segWords as unknown[]) : []).map(deepgramWord) }];
        }),
      } : {}),
    },
  };
}

async function listen(deps: DeepgramDeps, ctx: AuthedRequestContext): Promise<void> {
  const request = parseDeepgramQuery(ctx.url.searchParams);
  await admitJob(deps.admission, ctx.req);
  const sink = jobAudioSink(deps, ctx);
  if (/^application\/json/i.test(ctx.req.headers['content-type'] ?? '')) {
    // Deepgram's remote-file form: {"url": "<audio URL>"}, fetched by the gateway (gateway/url-audio.ts).
    const body = await receiveSmallJson(ctx.req);
    const url = typeof body === 'object' && body !== null ? (body as { url?: unknown }).url : undefined;
    if (typeof url !== 'string' || url === '') throw badRequest('a JSON body must be {"url": "<audio URL>"}; send audio itself as the raw body');
    await urlSource(deps, 'url')(url, sink);
  } else {
    await receiveRawBody(ctx.req, { maxFileBytes: deps.uploadMaxBytes, sink });
  }
  const created = await queueJob(deps, ctx, sink, request.params);
  ctx.res.setHeader('dg-request-id', ctx.requestId);
  const result = await waitForTranscript(deps.outcomes, deps.store, created.jobId, deps.syncTimeoutMs);
  if (result.kind !== 'completed') {
    if (result.kind === 'timeout') ctx.log.warn({ [LOG.jobId]: created.jobId, timeout_ms: deps.syncTimeoutMs }, 'synchronous Deepgram answer timed out; the job continues');
    throw syncFailure(result, created.jobId, `${TRANSCRIPTIONS_PATH}/${created.jobId}`, deps.syncTimeoutMs);
  }
  sendJson(ctx.res, 200, deepgramResponse(result.transcript, {
    requestId: ctx.requestId, jobId: created.jobId, createdAt: created.createdAt, duration: result.outcome.audioDurationSeconds ?? 0, model: request.model,
  }, request));
}

export function deepgramRoutes(deps: DeepgramDeps): RouteSpec[] {
  return [{ method: 'POST', path: DEEPGRAM_LISTEN_PATH, auth: 'api_key', handler: (ctx) => listen(deps, ctx) }];
}
