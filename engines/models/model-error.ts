/**
 * A model's weights are missing, corrupt or unloadable. Not retryable: only an operator running set-up again
 * (or fixing the catalogue) can help, so the engine refuses work instead of returning empty text.
 */
import { DalstonError, type DalstonErrorOptions } from '../../core/errors.js';

export interface ModelErrorDetails {
  /** Catalogue id of the model, e.g. moonshine-tiny. */
  readonly modelId: string;
  /** File name inside the model directory (or absolute path for system models), when one file is at fault. */
  readonly file?: string;
}

export class ModelError extends DalstonError {
  readonly code: string = 'DALSTON_ERR_MODEL';
  readonly retryable = false;
  readonly modelId: string;
  readonly file: string | undefined;

  constructor(message: string, details: ModelErrorDetails, options: DalstonErrorOptions = {}) {
    super(message, options);
    this.modelId = details.modelId;
    this.file = details.file;
  }
}
