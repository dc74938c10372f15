import { DalstonError } from '../core/errors.js';

/** Set-up could not install or start a dependency; the message is the one line an operator needs. */
export class SetupError extends DalstonError {
  readonly code: string = 'DALSTON_ERR_SETUP';
  readonly retryable = false;
}
