import { DalstonError } from '../core/errors.js';

/** The artifact does not exist (never written, or deleted with its job). */
export class NotFoundError extends DalstonError {
  readonly code: string = 'DALSTON_ERR_ARTIFACT_NOT_FOUND';
  readonly retryable = false;
}
