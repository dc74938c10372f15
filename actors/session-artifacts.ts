/**
 * Where a real-time session's artifacts live, and the transcript document the actor writes when a session ends:
 *   sessions/<session id>/audio.wav         the recording (written by the gateway, retention on)
 *   sessions/<session id>/transcript.json   the finals with words, audio seconds, model, timings
 */
import type { RealtimeSessionState } from '../streams/index.js';

export const sessionArtifactKeys = (sessionId: string): { prefix: string; audio: string; transcript: string } => ({
  prefix: `sessions/${sessionId}/`,
  audio: `sessions/${sessionId}/audio.wav`,
  transcript: `sessions/${sessionId}/transcript.json`,
});

export interface SessionTranscriptDocument {
  readonly session_id: string;
  readonly status: string;
  readonly text: string;
  readonly model: string;
  readonly language: string | null;
  readonly dialect: string;
  readonly audio_seconds: number;
  readonly started_at: string;
  readonly ended_at: string | null;
  readonly duration_seconds: number | null;
  readonly utterances: readonly {
    readonly utterance: number; readonly text: string; readonly start: number; readonly end: number; readonly reason: string;
    readonly words: readonly { readonly text: string; readonly start: number; readonly end: number; readonly confidence?: number }[];
  }[];
  readonly enhance_job_id: string | null;
}

/** The transcript JSON of a session: a function of the snapshot alone, so a re-sent outbox writes the same bytes. */
export function sessionTranscript(state: RealtimeSessionState): SessionTranscriptDocument {
  return {
    session_id: state.sessionId,
    status: state.status,
    text: state.finals.map((f) => f.text.trim()).filter((t) => t !== '').join(' '),
    model: state.config.model,
    language: state.config.language ?? null,
    dialect: state.config.dialect,
    audio_seconds: state.audioSeconds,
    started_at: new Date(state.startedAt).toISOString(),
    ended_at: state.endedAt !== undefined ? new Date(state.endedAt).toISOString() : null,
    duration_seconds: state.endedAt !== undefined ? Math.max(0, (state.endedAt - state.startedAt) / 1000) : null,
    utterances: state.finals.map((f) => ({
      utterance: f.utterance, text: f.text, start: f.start, end: f.end, reason: f.reason,
      words: f.words.map((w) => ({ text: w.text, start: w.start, end: w.end, ...(w.confidence !== undefined ? { confidence: w.confidence } : {}) })),
    })),
    enhance_job_id: state.enhanceJobId ?? null,
  };
}
