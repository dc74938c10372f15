import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCHEMA_VERSION, type AuditEvent, type JobOutcome, type WebhookEndpointRecord } from '../streams/index.js';
import { bodyOf, deliveryIdOf, eventOfAudit, eventOfOutcome, targetsOf } from './webhook-events.js';

const outcome = (o: Partial<JobOutcome> = {}): JobOutcome => ({
  v: SCHEMA_VERSION, type: 'job.outcome', jobId: 'job_1', tenantId: 'acme', requestId: 'req_1', status: 'completed', createdAt: 1_000, completedAt: 5_000,
  audioDurationSeconds: 3.5, language: 'en', ...o,
});
const endpoint = (id: string, o: Partial<WebhookEndpointRecord> = {}): WebhookEndpointRecord => ({
  v: SCHEMA_VERSION, type: 'webhook.endpoint', endpointId: id, tenantId: 'acme', url: `https://hooks.example/${id}`, events: ['*'], description: '',
  enabled: true, secrets: [], createdAt: 1, updatedAt: 1, createdBy: 'key_x', ...o,
});

void test('a job outcome becomes transcription.<status> for the tenant\'s subscribed, enabled, live endpoints and its own URL; no transcript text', () => {
  const endpoints = [
    endpoint('wh_all'), endpoint('wh_failed_only', { events: ['transcription.failed'] }), endpoint('wh_off', { enabled: false }),
    endpoint('wh_gone', { deletedAt: 2 }), endpoint('wh_other', { tenantId: 'globex' }),
  ];
  const done = eventOfOutcome(outcome({ transcriptKey: 'jobs/job_1/transcript.json' }));
  assert.equal(done.eventType, 'transcription.completed');
  assert.deepEqual(targetsOf(done, endpoints), [{ endpointId: 'wh_all' }]);
  const failed = eventOfOutcome(outcome({ status: 'failed', error: { name: 'E', code: 'audio_invalid', message: 'no audio stream', retryable: false } }));
  assert.deepEqual(targetsOf(failed, endpoints), [{ endpointId: 'wh_all' }, { endpointId: 'wh_failed_only' }]);
  const own = eventOfOutcome(outcome({ webhook: { url: 'https://me.example/cb', endpoints: 'all', metadata: Buffer.from('{"order":7}').toString('base64url') } }));
  assert.deepEqual(targetsOf(own, endpoints), [{ endpointId: 'wh_all' }, { url: 'https://me.example/cb' }]);
  const body = JSON.parse(bodyOf(own)) as { type: string; data: Record<string, unknown> };
  assert.equal(body.type, 'transcription.completed');
  assert.deepEqual(body.data['webhook_metadata'], { order: 7 });
  assert.equal(body.data['transcription_id'], 'job_1');
  assert.equal('text' in body.data, false);
  // ElevenLabs: webhook_id picks one endpoint; without webhook=true none.
  assert.deepEqual(targetsOf(eventOfOutcome(outcome({ webhook: { endpoints: 'one', endpointId: 'wh_failed_only' } })), endpoints), []);
  assert.deepEqual(targetsOf(eventOfOutcome(outcome({ status: 'failed', webhook: { endpoints: 'one', endpointId: 'wh_failed_only' } })), endpoints), [{ endpointId: 'wh_failed_only' }]);
  assert.deepEqual(targetsOf(eventOfOutcome(outcome({ webhook: { endpoints: 'none' } })), endpoints), []);
});

void test('delivery ids are stable per event and target, and differ between targets and events', () => {
  const e = eventOfOutcome(outcome());
  assert.equal(deliveryIdOf(e, { endpointId: 'wh_a' }), deliveryIdOf(eventOfOutcome(outcome()), { endpointId: 'wh_a' }));
  assert.notEqual(deliveryIdOf(e, { endpointId: 'wh_a' }), deliveryIdOf(e, { endpointId: 'wh_b' }));
  assert.notEqual(deliveryIdOf(e, { endpointId: 'wh_a' }), deliveryIdOf(eventOfOutcome(outcome({ status: 'cancelled' })), { endpointId: 'wh_a' }));
  assert.match(deliveryIdOf(e, { url: 'https://me.example/cb' }), /^msg_[0-9a-f]{24}$/);
  assert.equal(bodyOf(e), bodyOf(eventOfOutcome(outcome())), 'the same body on every read');
});

void test('a session\'s completion audit event becomes realtime.session.ended; other audit events are no webhook event', () => {
  const audit: AuditEvent = {
    v: SCHEMA_VERSION, type: 'analytics.audit_event', time: 9_000, eventId: 'sess_1:realtime.session.completed', eventType: 'realtime.session.completed',
    tenantId: 'acme', actorKeyId: 'key_x', jobId: '', sessionId: 'sess_1', audioDurationSeconds: 12.5, requestId: 'req_2', traceId: '',
    details: JSON.stringify({ status: 'completed', utterances: 3, model: 'moonshine-tiny' }),
  };
  const e = eventOfAudit(audit);
  assert.equal(e?.eventType, 'realtime.session.ended');
  assert.deepEqual({ id: e?.data['session_id'], status: e?.data['status'], utterances: e?.data['utterances'] }, { id: 'sess_1', status: 'completed', utterances: 3 });
  assert.equal(eventOfAudit({ ...audit, eventType: 'job.created' }), undefined);
});
