/**
 * What a session must keep to resume transcription elsewhere after a failure: where the last closed utterance
 * ended in the audio, and the numbering. A new transcriber built from it is fed the audio from that offset and
 * goes on with the next index, so no final is repeated and none is skipped. Small and plain, so it can ride
 * in any session record.
 */
import { InvalidInputError } from '../../core/errors.js';

export interface TranscriberCheckpoint {
  readonly version: 1;
  /**
   * 16 kHz sample position where the last closed utterance (finalised, empty or cleared) ended, or where the
   * stream began: re-feed the audio from here.
   */
  readonly audioOffsetSamples: number;
  /** Index the next utterance will get (that of an utterance still open when the checkpoint was taken). */
  readonly nextUtterance: number;
  /** Finals emitted so far. */
  readonly finalizedCount: number;
}

export const INITIAL_CHECKPOINT: TranscriberCheckpoint = { version: 1, audioOffsetSamples: 0, nextUtterance: 0, finalizedCount: 0 };

function count(record: Record<string, unknown>, key: keyof TranscriberCheckpoint): number {
  const v = record[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new InvalidInputError(`transcriber checkpoint field ${key} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Validates a checkpoint read back from storage. */
export function parseCheckpoint(value: unknown): TranscriberCheckpoint {
  if (typeof value !== 'object' || value === null) throw new InvalidInputError('transcriber checkpoint must be an object');
  const record = value as Record<string, unknown>;
  if (record['version'] !== 1) throw new InvalidInputError(`transcriber checkpoint version ${JSON.stringify(record['version'])} is not supported (expected 1)`);
  const checkpoint: TranscriberCheckpoint = {
    version: 1,
    audioOffsetSamples: count(record, 'audioOffsetSamples'),
    nextUtterance: count(record, 'nextUtterance'),
    finalizedCount: count(record, 'finalizedCount'),
  };
  if (checkpoint.finalizedCount > checkpoint.nextUtterance) throw new InvalidInputError('transcriber checkpoint has more finals than utterances');
  return checkpoint;
}
