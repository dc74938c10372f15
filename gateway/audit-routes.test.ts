import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpError } from './errors.js';
import { parseAuditQuery } from './audit-routes.js';

void test('audit query: filters checked and passed on, one row more than the page, a cursor is a position', () => {
  const q = parseAuditQuery(new URLSearchParams('event_type=access.denied,api_key.revoked&job_id=job_1&key_id=key_ab&since=2026-12-01T00:00:00Z&until=1800000000000&limit=10'), 'acme');
  assert.deepEqual(q, {
    tenantId: 'acme', limit: 11, eventTypes: ['access.denied', 'api_key.revoked'], jobId: 'job_1', keyId: 'key_ab',
    since: Date.parse('2026-12-01T00:00:00Z'), until: 1_800_000_000_000,
  });
  const cursor = Buffer.from(JSON.stringify({ t: 5, e: 'evt_1' })).toString('base64url');
  assert.deepEqual(parseAuditQuery(new URLSearchParams(`cursor=${cursor}`), undefined).before, { timeMs: 5, eventId: 'evt_1' });
  for (const bad of ['event_type=nope', 'limit=0', 'limit=501', 'job_id=a%20b', 'since=yesterday', 'cursor=xyz']) {
    assert.throws(() => parseAuditQuery(new URLSearchParams(bad), 'acme'), (e: unknown) => e instanceof HttpError && e.status === 400, bad);
  }
});
