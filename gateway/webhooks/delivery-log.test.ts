import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupDeliveries, type DeliveryAttemptRow } from './delivery-log.js';

const row = (deliveryId: string, attempt: number, status: DeliveryAttemptRow['status'], o: Partial<DeliveryAttemptRow> = {}): DeliveryAttemptRow => ({
  deliveryId, tenantId: 'acme', endpointId: 'wh_1', eventType: 'transcription.completed', subjectId: 'job_1', attempt, status,
  httpStatus: status === 'delivered' ? 200 : 500, error: status === 'delivered' ? '' : 'answered 500', durationMs: 3, timeMs: 1000 * attempt, nextAttemptAtMs: 0, body: '{}', ...o,
});

void test('attempt rows group into deliveries: latest state, attempts in order, pending while a retry is scheduled', () => {
  const views = groupDeliveries([
    row('msg_a', 2, 'delivered', { timeMs: 9000 }), row('msg_a', 1, 'failed', { nextAttemptAtMs: 8000 }),
    row('msg_b', 1, 'failed', { timeMs: 5000, nextAttemptAtMs: 15_000 }),
  ]);
  assert.deepEqual(views.map((v) => [v.id, v.status, v.attempts]), [['msg_a', 'delivered', 2], ['msg_b', 'pending', 1]]);
  assert.deepEqual(views[0]?.attempt_log.map((a) => [a.attempt, a.status, a.http_status, a.error]), [[1, 'failed', 500, 'answered 500'], [2, 'delivered', 200, null]]);
  assert.equal(views[1]?.next_attempt_at, new Date(15_000).toISOString());
  assert.equal(groupDeliveries([row('msg_c', 3, 'failed')])[0]?.status, 'failed', 'no retry left: failed');
});
