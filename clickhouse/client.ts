/**
 * Dalston's ClickHouse access: a small wrapper over @clickhouse/client that works on 18.16 and current releases.
 * Rows travel as JSONEachRow, inserts always name their columns (18.16 stores zero values instead of defaults
 * otherwise), values in SQL text come from sql.ts, and every failure becomes a DalstonError (errors.ts).
 */
import { ClickHouseLogLevel, createClient, type ClickHouseClient, type Logger as ClientLogger } from '@clickhouse/client';
import { InvalidInputError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { toClickHouseError } from './errors.js';
import { column, ident, qualified } from './sql.js';

export interface ClickHouseOptions {
  /** HTTP endpoint, e.g. http://127.0.0.1:8123. */
  readonly url: string;
  /** Database unqualified table names resolve in; must exist before queries use it (applyMigrations creates it). */
  readonly database: string;
  readonly log: Logger;
  /** Per-request timeout. @default 30000 */
  readonly requestTimeoutMs?: number;
  /** Pooled HTTP connections. @default 10 */
  readonly maxOpenConnections?: number;
  /** @default default */
  readonly username?: string | undefined;
  /** @default none */
  readonly password?: string | undefined;
}

export interface RequestOptions {
  /**
   * Run without selecting `database`, for statements that must work before it exists (CREATE DATABASE) or that
   * use fully qualified names only (migrations). @default false
   */
  readonly withoutDatabase?: boolean;
}

/** A row as inserted: an object of JSON-serialisable column values keyed by column name (`nested.sub` for Nested). */
export type InsertRow = object;

export interface ClickHouse {
  readonly url: string;
  readonly database: string;
  /**
   * Runs a SELECT and returns its rows. UInt64/Int64 come back as JSON numbers (exact up to 2^53); DateTime columns
   * come back as `YYYY-MM-DD hh:mm:ss` text in the column's time zone (UTC for every Dalston table).
   * T is the caller's description of the row; it is not checked at run time.
   */
  query<T>(sql: string, opts?: RequestOptions): Promise<T[]>;
  /** Runs a statement without a result (DDL, ALTER, INSERT … SELECT). */
  exec(sql: string, opts?: RequestOptions): Promise<void>;
  /**
   * Inserts rows into `database.table`, naming exactly `columns`: other row fields are not sent (the server would
   * reject them). Columns not named get their DEFAULT. A named column missing from a row gets the type's zero on
   * 18.16 (its DEFAULT only on releases with input_format_defaults_for_omitted_fields): give every row every column.
   */
  insert<Row extends InsertRow>(table: string, rows: readonly Row[], columns: readonly (keyof Row & string)[]): Promise<void>;
  /** True when the server answers its /ping endpoint. Never throws. */
  ping(): Promise<boolean>;
  /** Closes pooled connections; later calls fail. */
  close(): Promise<void>;
}

/** Settings every request sends; all exist on 18.16 (newer ones such as async_insert would be rejected there). */
const SETTINGS = {
  // UInt64 as JSON numbers rather than strings, so rows map onto plain TypeScript numbers.
  output_format_json_quote_64bit_integers: 0,
} as const;

/**
 * Routes the client library's own logging into our Logger at debug level: its errors are the ones we rethrow as
 * DalstonErrors, so logging them again at error level would double every failure.
 */
function clientLoggerClass(log: Logger): new () => ClientLogger {
  const forward = (params: { module: string; message: string; args?: Record<string, unknown>; err?: Error }): void => {
    log.debug({ module: params.module, ...(params.args ?? {}), ...(params.err ? { err: params.err.message } : {}) }, params.message);
  };
  return class implements ClientLogger {
    trace = forward;
    debug = forward;
    info = forward;
    warn = forward;
    error = forward;
  };
}

/** Keeps only the named columns of each row (undefined values are left out, as JSON would). */
function project(rows: readonly object[], columns: readonly string[]): Record<string, unknown>[] {
  return rows.map((row) => {
    const out: Record<string, unknown> = {};
    for (const c of columns) {
      const v = (row as Record<string, unknown>)[c];
      if (v !== undefined) out[c] = v;
    }
    return out;
  });
}

export function createClickHouse(opts: ClickHouseOptions): ClickHouse {
  const url = opts.url.replace(/\/+$/, '');
  const database = ident(opts.database);
  const log = opts.log.child({ component: 'clickhouse' });
  const base = {
    url,
    request_timeout: opts.requestTimeoutMs ?? 30_000,
    max_open_connections: opts.maxOpenConnections ?? 10,
    clickhouse_settings: SETTINGS,
    application: 'dalston',
    ...(opts.username !== undefined ? { username: opts.username } : {}),
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    log: { LoggerClass: clientLoggerClass(log), level: ClickHouseLogLevel.WARN },
  };
  const main: ClickHouseClient = createClient({ ...base, database });
  // Created on first use: the database-less connection is needed only before the database exists.
  let admin: ClickHouseClient | undefined;
  const adminClient = (): ClickHouseClient => (admin ??= createClient({ ...base, database: 'default' }));

  return {
    url,
    database,

    async query<T>(sql: string, reqOpts: RequestOptions = {}): Promise<T[]> {
      const client = reqOpts.withoutDatabase === true ? adminClient() : main;
      try {
        const rs = await client.query({ query: sql, format: 'JSONEachRow' });
        return await rs.json<T>();
      } catch (err) {
        throw toClickHouseError(err, 'ClickHouse query failed');
      }
    },

    async exec(sql: string, reqOpts: RequestOptions = {}): Promise<void> {
      const client = reqOpts.withoutDatabase === true ? adminClient() : main;
      try {
        await client.command({ query: sql });
      } catch (err) {
        throw toClickHouseError(err, 'ClickHouse statement failed');
      }
    },

    async insert<Row extends InsertRow>(table: string, rows: readonly Row[], columns: readonly (keyof Row & string)[]): Promise<void> {
      if (rows.length === 0) return;
      if (columns.length === 0) throw new InvalidInputError(`insert into ${table} needs at least one column`);
      const target = qualified(database, table);
      const cols = columns.map(column);
      try {
        await main.insert({ table: target, values: project(rows, cols), format: 'JSONEachRow', columns: cols as [string, ...string[]] });
      } catch (err) {
        throw toClickHouseError(err, `ClickHouse insert into ${target} failed (${rows.length} rows)`);
      }
    },

    async ping(): Promise<boolean> {
      try {
        const res = await main.ping();
        if (!res.success) log.debug({ err: String(res.error) }, 'clickhouse ping failed');
        return res.success;
      } catch (err) {
        log.debug({ err: String(err) }, 'clickhouse ping failed');
        return false;
      }
    },

    async close(): Promise<void> {
      await Promise.all([main.close(), admin?.close()]);
    },
  };
}
