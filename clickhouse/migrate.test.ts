import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, InvalidInputError } from '../core/errors.js';
import { listMigrations, renderStatements } from './migrate.js';

void test('renderStatements splits on line-ending semicolons, substitutes {{db}} and drops comment-only pieces', () => {
  const text = `-- header comment
CREATE TABLE IF NOT EXISTS {{db}}.a (x String) ENGINE = MergeTree ORDER BY x;

-- between
CREATE MATERIALIZED VIEW IF NOT EXISTS {{ db }}.v TO {{db}}.a AS SELECT 'a;b' AS x FROM {{db}}.b;
-- trailing comment only
`;
  assert.deepEqual(renderStatements(text, 'dalston'), [
    '-- header comment\nCREATE TABLE IF NOT EXISTS dalston.a (x String) ENGINE = MergeTree ORDER BY x',
    "-- between\nCREATE MATERIALIZED VIEW IF NOT EXISTS dalston.v TO dalston.a AS SELECT 'a;b' AS x FROM dalston.b",
  ]);
});

void test('renderStatements refuses unknown placeholders and unsafe database names', () => {
  assert.throws(() => renderStatements('SELECT 1 FROM {{schema}}.t', 'dalston'), ConfigError);
  assert.throws(() => renderStatements('SELECT 1 FROM {{db}}.t', 'x; DROP DATABASE y'), InvalidInputError);
});

void test('the repository migrations are numbered once each and all render', async () => {
  const files = await listMigrations();
  assert.deepEqual(files.map((f) => f.number), files.map((_, i) => i + 1), 'numbered 1..n without gaps');
  assert.ok(files.some((f) => f.name === '0003_task_facts'));
  for (const f of files) {
    const statements = renderStatements(await readFile(f.path, 'utf8'), 'dalston');
    assert.ok(statements.length >= 1, `${f.name} has a statement`);
    for (const sql of statements) assert.ok(!sql.includes('{{') && /\bdalston\./.test(sql), `${f.name}: ${sql.slice(0, 60)}`);
  }
});

void test('listMigrations orders numerically, ignores other files and refuses a repeated number', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dalston-migrations-'));
  try {
    await writeFile(join(dir, '0010_later.sql'), 'SELECT 1');
    await writeFile(join(dir, '0002_first.sql'), 'SELECT 1');
    await writeFile(join(dir, 'README.md'), 'not a migration');
    await writeFile(join(dir, '0003_Bad-Name.sql'), 'ignored: name does not follow the pattern');
    assert.deepEqual((await listMigrations(dir)).map((f) => f.name), ['0002_first', '0010_later']);
    await writeFile(join(dir, '0002_again.sql'), 'SELECT 1');
    await assert.rejects(listMigrations(dir), ConfigError);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
