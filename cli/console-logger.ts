/** The CLI's Logger: short human lines on stderr for set-up progress (services log JSON to their own files). */
import type { LogFields, Logger } from '../core/logger.js';

function line(level: string, fields: LogFields, msg: string): string {
  const extras = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `[dalston] ${level === 'info' ? '' : `${level}: `}${msg}${extras ? `  (${extras})` : ''}\n`;
}

export function consoleLogger(verbose = false, bindings: LogFields = {}): Logger {
  const write = (level: string, fields: LogFields, msg: string) => process.stderr.write(line(level, { ...bindings, ...fields }, msg));
  return {
    debug: (f, m) => (verbose ? write('debug', f, m) : undefined),
    // Component chatter (consumers joining, topics existing) is debug detail for a person at a terminal.
    info: (f, m) => (verbose || Object.keys(bindings).length === 0 ? write('info', f, m) : undefined),
    warn: (f, m) => write('warn', f, m),
    error: (f, m) => write('error', f, m),
    child: (b) => consoleLogger(verbose, { ...bindings, ...b }),
  };
}
