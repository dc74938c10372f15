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
import type { ArtifactStore, JobOutcomeWaiter } from './ports.js';
import { waitForTranscript } from './sync-answer.js';
import type { OpenAiOptions, OpenAiSyncResponder, TranscriptRenderers } from './transcriptions.js';

export interface OpenAiResponderDeps {
  readonly outcomes: JobOutcomeWaiter;
  readonly store: ArtifactStore;
  readonly renderers: TranscriptRenderers;
  /** DALSTON_SYNC_TIMEOUT_SECONDS, in ms. */
  readonly timeoutMs: number;
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
export function verboseJson(doc: unknown, outcome: JobOutcome, words: boolean): Record<string, unknown> {
  const { text, segments, words: allWords } = transcriptFields(doc);
  const docLanguage = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>)['language'] : undefined;
  return {
    task: 'transcribe',
    language: languageName(outcome.language ?? (typeof docLanguage === 'string' ? docLanguage : undefined)),
    duration: outcome.audioDurationSeconds ?? 0,
    text,
    segments: timedItems(segments).map((s, id) => ({
      id, seek: 0, start: s.start, end: s.end, text: s.text, tokens: [], temperature: 0, avg_logprob: 0, compression_ratio: 0, no_speech_prob: 0,
    })),
    ...(words ? { words: timedItems(allWords).map((w) => ({ word: w.text, start: w.start, end: w.end })) } : {}),
  };
}

export function createOpenAiResponder(deps: OpenAiResponderDeps): OpenAiSyncResponder {
  return {
    async respond(ctx: AuthedRequestContext, job: JobCreated, options: OpenAiOptions): Promise<void> {
      ctx.res.setHeader('x-dalston-job-id', job.jobId);
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
          sendJson(ctx.res, 200, verboseJson(doc, outcome, options.words));
          return;
      }
    },
  };
}
