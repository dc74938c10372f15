/**
 * Dalston's error vocabulary. Every error carries a stable code and a decided retryable flag;
 * at process and Kafka boundaries errors travel as plain FailureRecords and are rebuilt on the other side.
 */

export interface FailureRecord {
  readonly name: string;
  readonly code: string;
  readonly message: string;
  readonly retryable: boolean;
}

export interface DalstonErrorOptions {
  readonly cause?: unknown;
}

export abstract class DalstonError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;

  constructor(message: string, options: DalstonErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }

  toFailure(): FailureRecord {
    return { name: this.name, code: this.code, message: this.message, retryable: this.retryable };
  }
}

/** Bad configuration: the process cannot start until an operator fixes it. */
export class ConfigError extends DalstonError {
  readonly code: string = 'DALSTON_ERR_CONFIG';
  readonly retryable = false;
}

/** The caller sent something we will never accept, however often it is retried. */
export class InvalidInputError extends DalstonError {
  readonly code: string = 'DALSTON_ERR_INVALID_INPUT';
  readonly retryable = false;
}

/** A dependency (Kafka, ClickHouse, object store, a child process) could not be reached in time. */
export class DependencyUnavailableError extends DalstonError {
  readonly code: string = 'DALSTON_ERR_DEPENDENCY_UNAVAILABLE';
  readonly retryable = true;
}

/** Work exceeded its deadline. */
export class TimeoutError extends DalstonError {
  readonly code: string = 'DALSTON_ERR_TIMEOUT';
  readonly retryable = true;
}

/** Work was cancelled on request; retrying would defeat the request. */
export class CancelledError extends DalstonError {
  readonly code: string = 'DALSTON_ERR_CANCELLED';
  readonly retryable = false;
}

/** Work was stopped because its process is shutting down: another instance should run it (not the work's fault). */
export class ShutdownError extends DalstonError {
  readonly code: string = 'DALSTON_ERR_SHUTDOWN';
  readonly retryable = true;
}

/** A component is in a state where the call is illegal: a programming error. */
export class IllegalStateError extends DalstonError {
  readonly code: string = 'DALSTON_ERR_ILLEGAL_STATE';
  readonly retryable = false;
}

/** A failure reported from across a boundary, rebuilt from its record. */
export class RemoteError extends DalstonError {
  readonly code: string;
  readonly retryable: boolean;
  readonly remoteName: string;

  constructor(record: FailureRecord) {
    super(record.message);
    this.code = record.code;
    this.retryable = record.retryable;
    this.remoteName = record.name;
  }
}

/** Converts anything thrown into a FailureRecord; unknown errors are treated as retryable internal faults. */
export function toFailureRecord(err: unknown): FailureRecord {
  if (err instanceof DalstonError) return err.toFailure();
  if (err instanceof Error) {
    return { name: err.name, code: 'DALSTON_ERR_INTERNAL', message: err.message, retryable: true };
  }
  return { name: 'Error', code: 'DALSTON_ERR_INTERNAL', message: String(err), retryable: true };
}

export function assertNever(value: never, what = 'value'): never {
  throw new IllegalStateError(`unexpected ${what}: ${JSON.stringify(value)}`);
}
