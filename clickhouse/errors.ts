/**
 * ClickHouse failures in Dalston's error vocabulary. A server-side error keeps ClickHouse's numeric code; whether it
 * is worth retrying is decided from that code, never from the message. Failures to reach the server at all become
 * core's DependencyUnavailableError.
 */
import { DalstonError, DependencyUnavailableError, type DalstonErrorOptions } from '../core/errors.js';

/**
 * ClickHouse codes that describe a transient server condition: TIMEOUT_EXCEEDED (159), TOO_MANY_SIMULTANEOUS_QUERIES
 * (202), SOCKET_TIMEOUT (209), NETWORK_ERROR (210), MEMORY_LIMIT_EXCEEDED (241), TOO_MANY_PARTS (252),
 * ALL_CONNECTION_TRIES_FAILED (279), TABLE_IS_READ_ONLY (242), UNKNOWN_STATUS_OF_INSERT (319), SYSTEM_ERROR (425).
 */
const RETRYABLE_SERVER_CODES: ReadonlySet<number> = new Set([159, 202, 209, 210, 241, 242, 252, 279, 319, 425]);

/** ClickHouse executed the request and refused it (syntax, unknown table, type mismatch, limits...). */
export class ClickHouseQueryError extends DalstonError {
  readonly code = 'DALSTON_ERR_CLICKHOUSE_QUERY';
  readonly retryable: boolean;
  /** ClickHouse's own error code, e.g. 60 for UNKNOWN_TABLE. */
  readonly serverCode: number;

  constructor(message: string, serverCode: number, options: DalstonErrorOptions = {}) {
    super(message, options);
    this.serverCode = serverCode;
    this.retryable = RETRYABLE_SERVER_CODES.has(serverCode);
  }
}

/**
 * Every ClickHouse server answer, old and new, starts its error text with `Code: <n>` (18.16: `Code: 81, e.displayText()
 * = …`; current: `Code: 81. DB::Exception: … (UNKNOWN_DATABASE)`). That prefix is the protocol, so it is parsed here.
 */
const SERVER_CODE = /^\s*Code:\s*(\d+)[.,]/;

function serverCodeOf(err: unknown): number | undefined {
  if (!(err instanceof Error)) return undefined;
  const fromField = (err as { code?: unknown }).code;
  // The client's own ClickHouseError carries the code as a numeric string when it could parse the answer.
  if (typeof fromField === 'string' && /^\d+$/.test(fromField)) return Number(fromField);
  const m = SERVER_CODE.exec(err.message);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** Turns whatever the client threw into a DalstonError: a query error when the server answered, else unavailable. */
export function toClickHouseError(err: unknown, what: string): DalstonError {
  if (err instanceof DalstonError) return err;
  const code = serverCodeOf(err);
  const message = err instanceof Error ? err.message : String(err);
  if (code !== undefined) return new ClickHouseQueryError(`${what}: ${message.trim().slice(0, 500)}`, code, { cause: err });
  return new DependencyUnavailableError(`${what}: ClickHouse unreachable (${message.trim().slice(0, 200)})`, { cause: err });
}
