/**
 * What a streaming transcriber tells its session, one union tagged by `type`. Times are seconds of audio from
 * the start of the session's stream (not wall time), so they survive a restore from a checkpoint. Events of
 * one utterance come in the order speech_start, (partial | voice_end | voice_start)*, speech_end, final?; a final is never repeated and
 * never empty (an utterance whose audio holds no words ends without one).
 */
import type { Word } from '../asr/index.js';
import type { EndReason } from './endpointer.js';

export type TranscriptEvent =
  /** The end-pointer opened utterance `utterance`; `start` includes the pre-speech padding. */
  | { readonly type: 'speech_start'; readonly utterance: number; readonly start: number }
  /** The open utterance decoded so far; sent only when the text changed. It may change, or shrink, before the final. */
  | { readonly type: 'partial'; readonly utterance: number; readonly text: string; readonly start: number; readonly end: number }
  /**
   * Manual commit only: the speaker paused (minSilence) or resumed inside the open utterance `utterance`, which
   * stays open until a flush, the end of the stream or the length cap; `start`/`end` bound the stretch of speech.
   */
  | { readonly type: 'voice_end'; readonly utterance: number; readonly start: number; readonly end: number }
  | { readonly type: 'voice_start'; readonly utterance: number; readonly start: number }
  /** The utterance closed; its final follows unless it held no words. */
  | { readonly type: 'speech_end'; readonly utterance: number; readonly start: number; readonly end: number; readonly reason: EndReason }
  /** The settled text; `words` carry absolute times (estimated where the recogniser has no native timing). */
  | {
      readonly type: 'final';
      readonly utterance: number;
      readonly text: string;
      readonly start: number;
      readonly end: number;
      readonly words: readonly Word[];
      readonly reason: EndReason;
    };

export type TranscriptEventType = TranscriptEvent['type'];
