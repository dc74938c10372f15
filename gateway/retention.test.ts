import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpError } from './errors.js';
import { KEEP, effectiveRetention, parseRetention } from './retention.js';
import { parseSubmitFields } from './transcriptions.js';

void test('retention: keep, none, or a duration (bare numbers are days); anything else is a 400 naming the forms', () => {
  assert.equal(parseRetention('keep'), KEEP);
  assert.equal(parseRetention(' NONE '), 0);
  assert.equal(parseRetention('30d'), 30 * 86_400);
  assert.equal(parseRetention('7'), 7 * 86_400);
  assert.equal(parseRetention('12h'), 12 * 3600);
  assert.equal(parseRetention('90m'), 5400);
  assert.equal(parseRetention('45s'), 45);
  for (const bad of ['0', '0s', '-1d', '1w', '1.5d', '3651d', 'forever', '']) {
    assert.throws(() => parseRetention(bad), (e: unknown) => e instanceof HttpError && e.status === 400 && /keep, none, or a duration/.test(e.message), bad);
  }
  assert.equal(parseSubmitFields([['retention', '2d']]).params.retentionSeconds, 172_800);
});

void test('effective retention: the job asks, else the tenant default; keep overrides a default', () => {
  assert.equal(effectiveRetention(undefined, 0), undefined);
  assert.equal(effectiveRetention(undefined, 30), 30 * 86_400);
  assert.equal(effectiveRetention(KEEP, 30), undefined);
  assert.equal(effectiveRetention(0, 30), 0);
  assert.equal(effectiveRetention(60, 30), 60);
});
