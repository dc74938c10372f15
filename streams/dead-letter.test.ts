import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEAD_LETTER_PAYLOAD_MAX_BASE64, withinRecordSize, type DeadLetterRecord } from './dead-letter.js';

const record = (payloadBase64: string | null): DeadLetterRecord => ({
  v: 1, type: 'dead_letter', reason: 'handler_rejected', error: { name: 'InvalidInputError', code: 'DALSTON_ERR_INVALID_INPUT', message: 'no', retryable: false },
  attempts: 1, source: { topic: 't', partition: 0, offset: '0', timestamp: '0', groupId: 'g' }, key: null, headers: {}, payloadBase64, deadLetteredAt: 0,
});

test('a dead letter keeps the original value up to the limit, and notes the size of one too large to copy (or Kafka would refuse it)', () => {
  const small = record('a'.repeat(100));
  assert.equal(withinRecordSize(small), small);
  assert.equal(withinRecordSize(record(null)).payloadBase64, null);
  const big = withinRecordSize(record('a'.repeat(DEAD_LETTER_PAYLOAD_MAX_BASE64 + 4)));
  assert.equal(big.payloadBase64, null);
  assert.equal(big.payloadOmittedBytes, Math.floor(((DEAD_LETTER_PAYLOAD_MAX_BASE64 + 4) * 3) / 4));
});
