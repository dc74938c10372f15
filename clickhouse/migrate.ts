/**
 * Applies the numbered `.sql` files of clickhouse/migrations/ in order, once each, recording them in
 * `<database>.schema_migrations`.
 *
 * File rules:
 * - Name `NNNN_what.sql`; applied in numeric order; a number appears once.
 * - Tables are written fully qualified as `{{db}}.table`; `{{db}}` is replaced by the (validated) database name, so
 *   no statement depends on a session's current database and one file serves any database name.
 * - Several statements are separated by a `;` at the end of a line (a `;` ending a line inside a string literal
 *   would split it: don't write one). `--` comment lines are allowed.
 * - Time columns are `DateTime('UTC')`: text written and read is UTC whatever the server's time zone.
 * - Statements use `IF NOT EXISTS`, so a file interrupted half-way, or applied by two processes at once, can simply
 *   run again.
 * The .sql files are read at run time from the repository (they are not compiled into dist/).
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../core/config.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ClickHouse } from './client.js';
import { ClickHouseQueryError } from './errors.js';
import { formatDateTime, ident, str } from './sql.js';

/** Where migrations live unless a caller says otherwise. */
export const MIGRATIONS_DIR = join(REPO_ROOT, 'clickhouse', 'migrations');

export const MIGRATIONS_TABLE = 'schema_migrations';

export interface MigrationFile {
  /** File name without `.sql`, e.g. `0001_jobs`; the identity recorded in schema_migrations. */
  readonly name: string;
  readonly number: number;
  readonly path: string;
}

export interface MigrationResult {
  /** Names applied by this call, in order. */
  readonly applied: string[];
  /** Names found already recorded, in order. */
  readonly alreadyApplied: string[];
}

export interface MigrateOptions {
  /** @default MIGRATIONS_DIR */
  readonly dir?: string;
}

const FILE_NAME = /^(\d{4})_[a-z0-9_]+\.sql$/;
const PLACEHOLDER = /\{\{\s*([A-Za-z_]+)\s*\}\}/g;

/** The migration files of a directory in application order. Other files are ignored; a repeated number is an error. */
export async function listMigrations(dir: string = MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const files: MigrationFile[] = [];
  for (const entry of await readdir(dir)) {
    const m = FILE_NAME.exec(entry);
    if (m?.[1] === undefined) continue;
    files.push({ name: entry.slice(0, -'.sql'.length), number: Number(m[1]), path: join(dir, entry) });
  }
  files.sort((a, b) => a.number - b.number);
  for (let i = 1; i < files.length; i++) {
    const prev = files[i - 1];
    const cur = files[i];
    if (prev !== undefined && cur !== undefined && prev.number === cur.number) {
      throw new ConfigError(`two ClickHouse migrations share number ${cur.number}: ${prev.name}, ${cur.name}`);
    }
  }
  return files;
}

/** Splits a migration into statements (see the file rules above) with `{{db}}` substituted. */
export function renderStatements(text: string, database: string): string[] {
  const db = ident(database);
  const rendered = text.replace(PLACEHOLDER, (_all, name: string) => {
    if (name !== 'db') throw new ConfigError(`unknown migration placeholder {{${name}}}`);
    return db;
  });
  return rendered
    .split(/;[ \t]*(?:\r?\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.split('\n').some((line) => line.trim() !== '' && !line.trim().startsWith('--')));
}

/** ClickHouse DUPLICATE_COLUMN: `ADD COLUMN` of a column that exists (18.16 has no ADD COLUMN IF NOT EXISTS). */
const DUPLICATE_COLUMN = 44;
const ADD_COLUMN = /^\s*ALTER\s+TABLE\s+\S+\s+ADD\s+COLUMN\s/i;

/** Runs one statement; an ADD COLUMN whose column already exists (a file interrupted after it) counts as applied. */
async function runStatement(run: (sql: string) => Promise<void>, sql: string): Promise<void> {
  try {
    await run(sql);
  } catch (err) {
    const code = sql.split('\n').filter((line) => !line.trim().startsWith('--')).join('\n');
    if (ADD_COLUMN.test(code) && err instanceof ClickHouseQueryError && err.serverCode === DUPLICATE_COLUMN) return;
    throw err;
  }
}

function checksum(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

interface AppliedRow {
  readonly name: string;
  readonly checksum: string;
}

/**
 * Creates the database if needed, then applies every migration not yet recorded. Idempotent: a second call
 * applies nothing. A recorded migration whose file changed since is reported with a warning, not re-run.
 */
export async function applyMigrations(client: ClickHouse, database: string, log: Logger, opts: MigrateOptions = {}): Promise<MigrationResult> {
  const db = ident(database);
  const files = await listMigrations(opts.dir ?? MIGRATIONS_DIR);
  const run = (sql: string): Promise<void> => client.exec(sql, { withoutDatabase: true });

  await run(`CREATE DATABASE IF NOT EXISTS ${db}`);
  await run(
    `CREATE TABLE IF NOT EXISTS ${db}.${MIGRATIONS_TABLE} (name String, checksum String, applied_at DateTime('UTC'), applied_ms UInt64) ` +
      `ENGINE = ReplacingMergeTree(applied_ms) ORDER BY name`,
  );
  // No FINAL needed: the first record of a name is as good as any later duplicate from a concurrent run.
  const recorded = await client.query<AppliedRow>(`SELECT name, any(checksum) AS checksum FROM ${db}.${MIGRATIONS_TABLE} GROUP BY name`, {
    withoutDatabase: true,
  });
  const known = new Map(recorded.map((r) => [r.name, r.checksum]));

  const applied: string[] = [];
  const alreadyApplied: string[] = [];
  for (const file of files) {
    const text = await readFile(file.path, 'utf8');
    const sum = checksum(text);
    const previous = known.get(file.name);
    if (previous !== undefined) {
      if (previous !== sum) log.warn({ migration: file.name, database: db }, 'clickhouse migration changed after it was applied; not re-run');
      alreadyApplied.push(file.name);
      continue;
    }
    const statements = renderStatements(text, db);
    const started = Date.now();
    for (const sql of statements) await runStatement(run, sql);
    const now = Date.now();
    await run(
      `INSERT INTO ${db}.${MIGRATIONS_TABLE} (name, checksum, applied_at, applied_ms) ` +
        `VALUES (${str(file.name)}, ${str(sum)}, ${str(formatDateTime(now))}, ${now})`,
    );
    log.info({ migration: file.name, database: db, statements: statements.length, duration_ms: now - started }, 'clickhouse migration applied');
    applied.push(file.name);
  }
  return { applied, alreadyApplied };
}
