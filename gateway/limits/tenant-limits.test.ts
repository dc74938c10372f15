import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../core/errors.js';
import { LocalRequestCounter, RequestLimiter } from './request-limiter.js';
import { WINDOW_MS, decideRequest, rateHeaders } from './request-window.js';
import { NO_LIMITS, parseTenantLimits } from './tenant-limits.js';

void test('DALSTON_TENANT_LIMITS: a line per tenant, * for the rest, unset or 0 for none; mistakes are named', () => {
  const t = parseTenantLimits(' *:requests_per_minute=600 ; acme:requests_per_minute=6000;free:requests_per_minute=0 ');
  assert.equal(t.limitsFor('acme').requestsPerMinute, 6000);
  assert.equal(t.limitsFor('other').requestsPerMinute, 600);
  assert.equal(t.limitsFor('free').requestsPerMinute, 0);
  assert.equal(t.any, true);
  assert.deepEqual(parseTenantLimits('').limitsFor('x'), NO_LIMITS);
  assert.equal(parseTenantLimits('').any, false);
  for (const [bad, message] of [['acme', /tenant id or \*/], ['acme:rpm=1', /unknown limit "rpm"/], ['acme:requests_per_minute=x', /whole number/], ['a:requests_per_minute=1;a:requests_per_minute=2', /given twice/]] as const) {
    assert.throws(() => parseTenantLimits(bad), (e: unknown) => e instanceof ConfigError && message.test(e.message) && e.message.startsWith('DALSTON_TENANT_LIMITS'), bad);
  }
});

void test('request window: the limit-th request passes with 0 left, the next is refused until the minute ends', () => {
  const now = 10 * WINDOW_MS + 45_500;
  assert.deepEqual(decideRequest(0, 3, now), { allowed: true, limit: 3, remaining: 2, resetSeconds: 15 });
  assert.deepEqual(decideRequest(2, 3, now), { allowed: true, limit: 3, remaining: 0, resetSeconds: 15 });
  assert.deepEqual(decideRequest(3, 3, now), { allowed: false, limit: 3, remaining: 0, resetSeconds: 15 });
  assert.equal(decideRequest(9, 3, 11 * WINDOW_MS - 1).resetSeconds, 1, 'never a Retry-After of 0');
  assert.deepEqual(rateHeaders(decideRequest(0, 3, now)), { 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '2', 'x-ratelimit-reset': '15' });
});

void test('limiter: counts only allowed requests of limited tenants; a new minute starts afresh', () => {
  const counter = new LocalRequestCounter();
  const limiter = new RequestLimiter(parseTenantLimits('acme:requests_per_minute=2'), counter);
  const t0 = 5 * WINDOW_MS;
  assert.equal(limiter.take('other', t0), undefined, 'no limit, no counting');
  assert.equal(limiter.take('acme', t0)?.allowed, true);
  assert.equal(limiter.take('acme', t0 + 1)?.allowed, true);
  assert.equal(limiter.take('acme', t0 + 2)?.allowed, false);
  assert.equal(limiter.take('acme', t0 + 3)?.allowed, false);
  assert.equal(counter.counted('acme', 5), 2, 'refusals are not counted');
  assert.equal(limiter.take('acme', t0 + WINDOW_MS)?.allowed, true);
});
