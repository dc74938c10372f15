import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidInputError } from '../core/errors.js';
import { column, dateTime, formatDateTime, ident, inList, lit, num, qualified, str } from './sql.js';

void test('str escapes backslash and quote so a hostile value stays one literal', () => {
  assert.equal(str("it's"), "'it\\'s'");
  assert.equal(str('a\\b'), "'a\\\\b'");
  // A classic injection attempt: the quote is escaped, so the closing quote and the DROP remain inside the literal.
  assert.equal(str("x'); DROP TABLE jobs; --"), "'x\\'); DROP TABLE jobs; --'");
  // A trailing backslash must not escape the closing quote.
  assert.equal(str('ends with \\'), "'ends with \\\\'");
  assert.equal(str("\\'"), "'\\\\\\''");
});

void test('str writes control characters as escapes and keeps unicode', () => {
  assert.equal(str('a\nb\r\tc\0d'), "'a\\nb\\r\\tc\\0d'");
  assert.equal(str('\x01\x1f\x7f'), "'\\x01\\x1f\\x7f'");
  assert.equal(str('é 😀 中'), "'é 😀 中'");
  assert.equal(str(''), "''");
});

void test('a rendered string contains no unescaped quote and no raw newline', () => {
  const hostile = ["'", "''", "\\'", "\\\\'", "'\n--", '\u0000\'\u0001', "a'||'b", '`"\'\\'];
  for (const h of hostile) {
    const body = str(h).slice(1, -1);
    assert.ok(!/\n|\r|\0/.test(body), `raw control character in ${JSON.stringify(body)}`);
    // Every quote inside the body is preceded by an odd number of backslashes.
    for (let i = body.indexOf("'"); i !== -1; i = body.indexOf("'", i + 1)) {
      let slashes = 0;
      for (let j = i - 1; j >= 0 && body[j] === '\\'; j--) slashes++;
      assert.equal(slashes % 2, 1, `unescaped quote in ${JSON.stringify(body)}`);
    }
  }
});

void test('num renders finite numbers and refuses NaN and infinities', () => {
  assert.equal(num(42), '42');
  assert.equal(num(0.25), '0.25');
  assert.equal(num(-3), '(-3)');
  assert.equal(num(12345678901234567890n), '12345678901234567890');
  assert.throws(() => num(Number.NaN), InvalidInputError);
  assert.throws(() => num(Number.POSITIVE_INFINITY), InvalidInputError);
});

void test('lit handles null, booleans and nested arrays', () => {
  assert.equal(lit(null), 'NULL');
  assert.equal(lit(true), '1');
  assert.equal(lit(false), '0');
  assert.equal(lit(['a', "b'c"]), "['a', 'b\\'c']");
  assert.equal(lit([[1, 2], [-1]]), '[[1, 2], [(-1)]]');
  assert.equal(lit([]), '[]');
});

void test('inList never renders an empty IN ()', () => {
  assert.equal(inList(['x', 'y']), "('x', 'y')");
  assert.equal(inList([]), '(NULL)');
});

void test('formatDateTime renders UTC YYYY-MM-DD hh:mm:ss and drops milliseconds', () => {
  assert.equal(formatDateTime(0), '1970-01-01 00:00:00');
  assert.equal(formatDateTime(Date.UTC(2026, 0, 2, 3, 4, 5, 999)), '2026-01-02 03:04:05');
  assert.equal(formatDateTime(Date.UTC(2024, 1, 29, 23, 59, 59)), '2024-02-29 23:59:59');
  assert.throws(() => formatDateTime(Number.NaN), InvalidInputError);
  assert.throws(() => formatDateTime(-1), InvalidInputError);
  assert.throws(() => formatDateTime(Date.UTC(2106, 0, 1)), InvalidInputError);
  assert.equal(formatDateTime(Date.UTC(2106, 0, 1) - 1), '2105-12-31 23:59:59');
  assert.equal(dateTime(Date.UTC(2026, 10, 28, 12, 0, 0)), "toDateTime('2026-11-28 12:00:00', 'UTC')");
});

void test('identifiers are accepted only when plain', () => {
  assert.equal(ident('dalston_test'), 'dalston_test');
  assert.equal(qualified('db', 'jobs'), 'db.jobs');
  assert.equal(column('attributes.key'), 'attributes.key');
  for (const bad of ['', '1abc', 'a-b', 'a b', 'a;DROP', '`x`', 'db.jobs']) assert.throws(() => ident(bad), InvalidInputError, bad);
  for (const bad of ['a.b.c', 'a.', '.a', "a'"]) assert.throws(() => column(bad), InvalidInputError, bad);
});
