/**
 * OpenAI's synchronous transcription answer (`model` = whisper-1 / gpt-4o-transcribe / gpt-4o-mini-transcribe): the
 * job runs through the same pipeline as any other, the request waits for its outcome on jobs.results (never polling
 * ClickHouse) and answers in the requested `response_format`, or with OpenAI's error envelope.
 */
import type { JobCreated, JobOutcome } from '../streams/index.js';
import { LOG } from '../core/observability-names.js';
import { sendJson, sendText } from './http-exchange.js';
import type { AuthedRequestContext } from './http-server.js';
import { timedItems, transcriptFields } from './job-view.js';
import type { ArtifactStore, JobOutcomeWaiter, JobProgressFeed } from './ports.js';
import { waitForTranscript } from './sync-answer.js';
import type { OpenAiOptions, OpenAiSyncResponder, TranscriptRenderers } from './transcriptions.js';

export interface OpenAiResponderDeps {
  readonly outcomes: JobOutcomeWaiter;
  readonly store: ArtifactStore;
  readonly renderers: TranscriptRenderers;
  /** DALSTON_SYNC_TIMEOUT_SECONDS, in ms. */
  readonly timeoutMs: number;
  /** Transcript text as windows finish (jobs.progress), for `stream=true`; without it the text comes at the end. */
  readonly progress?: JobProgressFeed;
}

type OpenAiErrorType = 'invalid_request_error' | 'server_error';

/** OpenAI's error envelope: the SDKs read `error.message` and `error.type`. */
function sendOpenAiError(ctx: AuthedRequestContext, status: number, type: OpenAiErrorType, code: string, message: string): void {
  sendJson(ctx.res, status, { error: { message, type, param: null, code } });
}

const LANGUAGE_NAMES = new Intl.DisplayNames(['en'], { type: 'language' });

/** verbose_json names the language in English, lower-case ("english"), as OpenAI does. */
export function languageName(code: string | undefined): string {
  if (!code || code === 'auto') return 'unknown';
  try {
    return (LANGUAGE_NAMES.of(code) ?? code).toLowerCase();
  } catch {
    return code;
  }
}

/** OpenAI's verbose_json from a Dalston transcript (the decoder statistics OpenAI reports are not computed: 0). */
export function verboseJson(doc: unknown, outcome: JobOutcome, words: boolean, translated = false): Record<string, unknown> {
  const { text, segments, words: allWords } = transcriptFields(doc);
  const docLanguage = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>)['language'] : undefined;
  return {
    task: translated ? 'translate' : 'transcribe',
    language: translated ? 'english' : languageName(outcome.language ?? (typeof docLanguage === 'string' ? docLanguage : undefined)),
    duration: outcome.audioDurationSeconds ?? 0,
    text,
    segments: timedItems(segments).map((s, id) => ({
      id, seek: 0, start: s.start, end: s.end, text: s.text, tokens: [], temperature: 0, avg_logprob: 0, compression_ratio: 0, no_speech_prob: 0,
    })),
    ...(words ? { words: timedItems(allWords).map((w) => ({ word: w.text, start: w.start, end: w.end })) } : {}),
  };
}

/**
 * `stream=true`: server-sent events as OpenAI sends them for gpt-4o-transcribe: `transcript.text.delta` with the text
 * of each window as the transcribe engine finishes it (jobs.progress), then `transcript.text.done` with the merged
 * transcript once the job ended. A window a retried task transcribes again is not sent twice. A job that fails or
 * runs out of time ends the stream with an `error` event.
 */
async function streamTranscript(deps: OpenAiResponderDeps, ctx: AuthedRequestContext, job: JobCreated): Promise<void> {
  const writer = ctx.res.begin(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  const send = (data: Record<string, unknown>, event?: string): void => writer.write(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`);
  let sent = '';
  /** Deltas sent as windows finished, and the one (if any) the merged text added at the end. */
  let windowDeltas = 0;
  let finalDelta = false;
  const next = new Map<string, number>();
  const unsubscribe = deps.progress?.subscribe(job.jobId, (p) => {
    if (!p.stage.startsWith('transcribe') || p.seq < (next.get(p.taskId) ?? 0)) return;
    next.set(p.taskId, p.seq + 1);
    const text = p.text.trim();
    if (text === '') return;
    const delta = sent === '' ? text : ` ${text}`;
    sent += delta;
    windowDeltas++;
    send({ type: 'transcript.text.delta', delta, logprobs: null });
  }) ?? (() => undefined);
  ctx.res.onClose(unsubscribe);
  try {
    const result = await waitForTranscript(deps.outcomes, deps.store, job.jobId, deps.timeoutMs);
    unsubscribe();
    if (result.kind !== 'completed') {
      const message = result.kind === 'timeout'
        ? `transcription ${job.jobId} did not finish within ${Math.round(deps.timeoutMs / 1000)} s; it continues: GET /v1/audio/transcriptions/${job.jobId}`
        : result.kind === 'cancelled' ? `transcription ${job.jobId} was cancelled` : (result.outcome.error?.message ?? `transcription ${job.jobId} failed`);
      const type = result.kind === 'failed' && !result.invalidInput ? 'server_error' : result.kind === 'timeout' ? 'server_error' : 'invalid_request_error';
      send({ error: { message, type, param: null, code: result.kind === 'failed' ? (result.outcome.error?.code ?? 'failed') : result.kind } }, 'error');
      return;
    }
    const { text } = transcriptFields(result.transcript);
    // The merged text is what counts; what the windows said first is its beginning unless a later stage changed it.
    if (text.startsWith(sent) && text.length > sent.length) {
      send({ type: 'transcript.text.delta', delta: text.slice(sent.length), logprobs: null });
      finalDelta = true;
    }
    send({ type: 'transcript.text.done', text, logprobs: null, usage: { type: 'duration', seconds: result.outcome.audioDurationSeconds ?? 0 } });
    ctx.log.info({ [LOG.jobId]: job.jobId, window_deltas: windowDeltas, final_delta: finalDelta }, 'streamed transcription answered');
  } finally {
    unsubscribe();
    writer.end();
  }
}

export function createOpenAiResponder(deps: OpenAiResponderDeps): OpenAiSyncResponder {
  return {
    async respond(ctx: AuthedRequestContext, job: JobCreated, options: OpenAiOptions): Promise<void> {
      ctx.res.setHeader('x-dalston-job-id', job.jobId);
      if (options.stream) {
        await streamTranscript(deps, ctx, job);
        return;
      }
      const result = await waitForTranscript(deps.outcomes, deps.store, job.jobId, deps.timeoutMs);
      switch (result.kind) {
        case 'timeout':
          ctx.log.warn({ [LOG.jobId]: job.jobId, timeout_ms: deps.timeoutMs }, 'synchronous OpenAI answer timed out; the job continues');
          sendOpenAiError(ctx, 504, 'server_error', 'timeout',
            `transcription ${job.jobId} did not finish within ${Math.round(deps.timeoutMs / 1000)} s; it continues: GET /v1/audio/transcriptions/${job.jobId}`);
          return;
        case 'cancelled':
          sendOpenAiError(ctx, 409, 'invalid_request_error', 'cancelled', `transcription ${job.jobId} was cancelled`);
          return;
        case 'failed':
          // A problem with the audio is the caller's (400); anything else is ours.
          sendOpenAiError(ctx, result.invalidInput ? 400 : 500, result.invalidInput ? 'invalid_request_error' : 'server_error',
            result.outcome.error?.code ?? 'failed', result.outcome.error?.message ?? `transcription ${job.jobId} failed`);
          return;
        case 'completed':
          break;
      }
      const { outcome, transcript: doc } = result;
      switch (options.responseFormat) {
        case 'json':
          sendJson(ctx.res, 200, { text: transcriptFields(doc).text });
          return;
        case 'text':
          sendText(ctx.res, 200, `${transcriptFields(doc).text}\n`, 'text/plain; charset=utf-8');
          return;
        case 'srt':
          sendText(ctx.res, 200, deps.renderers.srt(doc), 'application/x-subrip; charset=utf-8');
          return;
        case 'vtt':
          sendText(ctx.res, 200, deps.renderers.vtt(doc), 'text/vtt; charset=utf-8');
          return;
        case 'verbose_json':
          sendJson(ctx.res, 200, verboseJson(doc, outcome, options.words, options.translate === true));
          return;
      }
    },
  };
}
