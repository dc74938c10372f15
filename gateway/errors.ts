/**
 * Errors the gateway answers with. An HttpError carries the HTTP status and the API `error.code`; anything else
 * that escapes a handler is mapped by `toHttpError` (bad input → 400, unavailable dependency → 503, else 500).
 */
import { DalstonError, DependencyUnavailableError, InvalidInputError, TimeoutError } from '../core/errors.js';

/** The API error codes (`{"error": {"code", "message"}}`), one per HTTP status family as upstream Dalston uses them. */
export type ApiErrorCode =
  | 'invalid_request'
  | 'unauthorized'
  /** The key is valid but lacks the scope the route needs (403). */
  | 'insufficient_scope'
  /** The tenant is over one of its limits (429, with Retry-After). */
  | 'rate_limited'
  | 'not_found'
  | 'method_not_allowed'
  | 'upgrade_required'
  | 'conflict'
  /** A real-time session is still live: its transcript, audio or deletion must wait for its end. */
  | 'session_active'
  | 'file_too_large'
  /** The request body stopped arriving for longer than the body idle timeout (408). */
  | 'request_timeout'
  /** A URL to fetch audio from is malformed, not http(s), or carries credentials. */
  | 'invalid_url'
  /** A URL's target is not public and not allow-listed (SSRF protection). */
  | 'url_not_allowed'
  /** The audio could not be fetched from a URL (an error answer, a timeout, too many redirects). */
  | 'url_fetch_failed'
  | 'unsupported_media_type'
  /** A Range header starts past the end of the object (416). */
  | 'range_not_satisfiable'
  | 'internal_error'
  | 'not_implemented'
  | 'service_unavailable';

/** Longest error message answered and logged: a message echoing a huge input stays readable and small. */
export const MAX_ERROR_MESSAGE = 1000;

function capMessage(message: string): string {
  return message.length > MAX_ERROR_MESSAGE ? `${message.slice(0, MAX_ERROR_MESSAGE - 1)}…` : message;
}

/** An input value as an error message quotes it: JSON-quoted, at most `max` characters of it. */
export function quoteInput(value: string, max = 200): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}

export class HttpError extends DalstonError {
  readonly code: string = 'DALSTON_ERR_HTTP';
  readonly retryable: boolean;
  constructor(
    readonly status: number,
    readonly apiCode: ApiErrorCode,
    message: string,
    options: { cause?: unknown; headers?: Readonly<Record<string, string>> } = {},
  ) {
    super(capMessage(message), options.cause === undefined ? {} : { cause: options.cause });
    this.retryable = status === 503;
    this.headers = options.headers ?? {};
  }
  /** Extra response headers (e.g. `Allow` on 405, `WWW-Authenticate` on 401). */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * The client went away, or its request body will not be read any more because the answer is already out. Ends
 * body readers (an upload's busboy pipeline) instead of leaving them waiting; never answered to anyone.
 */
export class ClientGoneError extends DalstonError {
  readonly code: string = 'DALSTON_ERR_CLIENT_GONE';
  readonly retryable = false;
  constructor(message = 'the client went away') {
    super(message);
  }
}

/** The request body stalled: no byte for `seconds`. Raised through the body stream, answered 408 by its reader. */
export const bodyIdleTimeout = (seconds: number) =>
  new HttpError(408, 'request_timeout', `no part of the request body arrived for ${seconds} s; the upload was abandoned`);

export const badRequest = (message: string) => new HttpError(400, 'invalid_request', message);
export const notFound = (message: string) => new HttpError(404, 'not_found', message);
export const conflict = (message: string) => new HttpError(409, 'conflict', message);

/** Maps anything thrown by a handler to the HTTP answer; the original stays as `cause` for the log line. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof InvalidInputError) return new HttpError(400, 'invalid_request', err.message, { cause: err });
  if (err instanceof DependencyUnavailableError || err instanceof TimeoutError) {
    return new HttpError(503, 'service_unavailable', 'a dependency is unavailable; retry later', { cause: err });
  }
  if (err instanceof DalstonError && err.retryable) {
    return new HttpError(503, 'service_unavailable', 'a dependency is unavailable; retry later', { cause: err });
  }
  return new HttpError(500, 'internal_error', 'internal error', { cause: err });
}
