/**
 * The one place that turns values into ClickHouse SQL literals. ClickHouse 18.16 has no query parameters, so every
 * value that reaches a SQL string goes through here; nothing else in the code base concatenates raw values into SQL.
 */
import { InvalidInputError } from '../core/errors.js';

/** Values this module can render as literals. Arrays nest. */
export type SqlValue = string | number | bigint | boolean | null | readonly SqlValue[];

/**
 * A quoted string literal. Backslash and single quote are escaped, and control characters are written as escapes
 * so a literal never spans lines or hides a NUL (18.16 parses `\0`, `\n`, `\t`, `\r`, `\b`, `\f`, `\xHH`).
 */
export function str(value: string): string {
  let out = "'";
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '\\') out += '\\\\';
    else if (ch === "'") out += "\\'";
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\0') out += '\\0';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + "'";
}

/** A numeric literal; NaN and ±Infinity are refused because they usually mean a bug upstream. */
export function num(value: number | bigint): string {
  if (typeof value === 'bigint') return value.toString();
  if (!Number.isFinite(value)) throw new InvalidInputError(`cannot render ${value} as a SQL number`);
  // Negative numbers are parenthesised so `x - ${num(-1)}` never becomes the comment `x --1`.
  return value < 0 ? `(${String(value)})` : String(value);
}

/** Any supported value as a literal: strings quoted, numbers checked, booleans as 1/0, null as NULL, arrays as [..]. */
export function lit(value: SqlValue): string {
  if (value === null) return 'NULL';
  if (typeof value === 'string') return str(value);
  if (typeof value === 'number' || typeof value === 'bigint') return num(value);
  if (typeof value === 'boolean') return value ? '1' : '0';
  return `[${value.map(lit).join(', ')}]`;
}

/** A list for `IN (...)`; an empty list renders as `(NULL)`, which matches nothing instead of being a syntax error. */
export function inList(values: readonly SqlValue[]): string {
  return values.length === 0 ? '(NULL)' : `(${values.map(lit).join(', ')})`;
}

/** 2106-01-01 00:00:00 UTC: 18.16's date tables end with 2105 (measured: later text parses to zero or wraps). */
const MAX_DATETIME_MS = Date.UTC(2106, 0, 1);

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/**
 * Milliseconds since the epoch as the `YYYY-MM-DD hh:mm:ss` UTC text ClickHouse's DateTime accepts on every
 * release (ISO `T…Z` strings are rejected by default). Sub-second precision is dropped: keep a `_ms` column for it.
 */
export function formatDateTime(epochMs: number): string {
  // Outside 1970..2105 the server would silently store zero or a wrapped value.
  if (!Number.isFinite(epochMs) || epochMs < 0 || epochMs >= MAX_DATETIME_MS) {
    throw new InvalidInputError(`cannot format ${epochMs} as a DateTime (1970-01-01 to 2105-12-31 UTC)`);
  }
  const d = new Date(Math.floor(epochMs / 1000) * 1000);
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
  );
}

/**
 * A DateTime literal read as UTC whatever the server's time zone: `toDateTime('…', 'UTC')`.
 * Use it in WHERE clauses comparing with DateTime columns.
 */
export function dateTime(epochMs: number): string {
  return `toDateTime(${str(formatDateTime(epochMs))}, 'UTC')`;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A database, table or column name. Identifiers cannot be escaped portably, so only plain names are accepted;
 * anything else is a programming or configuration error.
 */
export function ident(name: string): string {
  if (!IDENTIFIER.test(name)) throw new InvalidInputError(`not a plain SQL identifier: ${JSON.stringify(name)}`);
  return name;
}

const COLUMN = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

/** A column name as an INSERT names it: a plain identifier or a Nested sub-column such as `attributes.key`. */
export function column(name: string): string {
  if (!COLUMN.test(name)) throw new InvalidInputError(`not a plain SQL column name: ${JSON.stringify(name)}`);
  return name;
}

/** A fully qualified `database.table` name, both parts checked. */
export function qualified(database: string, table: string): string {
  return `${ident(database)}.${ident(table)}`;
}
