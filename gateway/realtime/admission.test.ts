import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admit } from './admission.js';

const base = { activeSessions: 0, liveEngines: 2, sessionsPerEngine: 4, keySessions: 0, maxSessionsPerKey: 3 };

void test('capacity is sessions per engine × live engines', () => {
  assert.deepEqual(admit({ ...base, activeSessions: 7 }), { admitted: true, capacity: 8 });
  const full = admit({ ...base, activeSessions: 8 });
  assert.ok(!full.admitted);
  assert.equal(full.closeCode, 4503);
  assert.equal(full.code, 'over_capacity');
});

void test('no live engine refuses every session', () => {
  const r = admit({ ...base, liveEngines: 0 });
  assert.ok(!r.admitted);
  assert.equal(r.closeCode, 4503);
  assert.equal(r.code, 'no_realtime_engine');
});

void test('the cluster-wide count counts when it is higher than this gateway\'s', () => {
  assert.ok(!admit({ ...base, activeSessions: 1, clusterActiveSessions: 8 }).admitted);
  assert.ok(admit({ ...base, activeSessions: 1, clusterActiveSessions: 7 }).admitted);
});

void test('per-key limit: 4429', () => {
  const r = admit({ ...base, keySessions: 3 });
  assert.ok(!r.admitted);
  assert.equal(r.closeCode, 4429);
  assert.equal(r.httpStatus, 429);
  assert.ok(admit({ ...base, keySessions: 2 }).admitted);
});
