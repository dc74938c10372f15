/**
 * Logging port. Domain code sees Logger; pino lives behind createLogger. Every line carries `service`, and the
 * active span's trace_id/span_id when tracing is on, so logs and traces join without manual plumbing.
 */
import { trace } from '@opentelemetry/api';
import { pino, destination, stdTimeFunctions, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(fields: LogFields, msg: string): void;
  info(fields: LogFields, msg: string): void;
  warn(fields: LogFields, msg: string): void;
  error(fields: LogFields, msg: string): void;
  child(bindings: LogFields): Logger;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LoggerOptions {
  /** Service name written as `service` on every line, e.g. dalston-gateway. */
  readonly service: string;
  /** @default 'info' */
  readonly level?: LogLevel;
  /** @default stdout */
  readonly destination?: DestinationStream;
}

function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const ctx = span.spanContext();
  if (!trace.isSpanContextValid(ctx)) return {};
  return { trace_id: ctx.traceId, span_id: ctx.spanId };
}

export function createLogger(options: LoggerOptions): Logger {
  const p = pino(
    {
      level: options.level ?? 'info',
      base: { service: options.service },
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin: traceFields,
    },
    options.destination ?? destination({ dest: 1, sync: false }),
  );
  return wrap(p);
}

function wrap(p: PinoLogger): Logger {
  return {
    debug: (fields, msg) => p.debug(fields, msg),
    info: (fields, msg) => p.info(fields, msg),
    warn: (fields, msg) => p.warn(fields, msg),
    error: (fields, msg) => p.error(fields, msg),
    child: (bindings) => wrap(p.child(bindings)),
  };
}

/** A logger that drops everything: the default for unit tests. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
