/**
 * What every synchronous vendor answer (OpenAI, ElevenLabs, Deepgram) waits for: the job's outcome on jobs.results,
 * then its transcript from the artifact store. Each API words the failures in its own envelope.
 */
import { artifactKeys } from '../storage/index.js';
import type { JobOutcome } from '../streams/index.js';
import { HttpError } from './errors.js';
import type { ArtifactStore, JobOutcomeWaiter } from './ports.js';

export type SyncResult =
  | { readonly kind: 'completed'; readonly outcome: JobOutcome; readonly transcript: unknown }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'cancelled'; readonly outcome: JobOutcome }
  /** invalidInput: the audio was the problem (the caller's fault), not the server. */
  | { readonly kind: 'failed'; readonly outcome: JobOutcome; readonly invalidInput: boolean };

export async function waitForTranscript(outcomes: JobOutcomeWaiter, store: ArtifactStore, jobId: string, timeoutMs: number): Promise<SyncResult> {
  const outcome = await outcomes.wait(jobId, timeoutMs);
  if (!outcome) return { kind: 'timeout' };
  if (outcome.status === 'cancelled') return { kind: 'cancelled', outcome };
  if (outcome.status === 'failed') return { kind: 'failed', outcome, invalidInput: outcome.error?.code === 'DALSTON_ERR_INVALID_INPUT' };
  const buf = await store.get(outcome.transcriptKey ?? artifactKeys.transcript(jobId));
  return { kind: 'completed', outcome, transcript: JSON.parse(buf.toString('utf8')) as unknown };
}

/** A result that is not a transcript, as Dalston's error envelope: 504 (the job goes on), 409, 400 or 500. */
export function syncFailure(result: Exclude<SyncResult, { kind: 'completed' }>, jobId: string, statusPath: string, timeoutMs: number): HttpError {
  switch (result.kind) {
    case 'timeout':
      return new HttpError(504, 'service_unavailable', `transcription ${jobId} did not finish within ${Math.round(timeoutMs / 1000)} s; it continues: GET ${statusPath}`);
    case 'cancelled':
      return new HttpError(409, 'conflict', `transcription ${jobId} was cancelled`);
    case 'failed':
      return new HttpError(result.invalidInput ? 400 : 500, result.invalidInput ? 'invalid_request' : 'internal_error', result.outcome.error?.message ?? `transcription ${jobId} failed`);
  }
}
