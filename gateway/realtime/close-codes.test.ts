import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLOSE, closeStatus } from './close-codes.js';

test('closeStatus: 1000 and 1005 (a close frame without a code, as the ElevenLabs SDK sends) are a normal end', () => {
  assert.equal(closeStatus(CLOSE.normal), 'completed');
  assert.equal(closeStatus(1005), 'completed');
});

test('closeStatus: going away, abnormal and resumable closes are interruptions; capacity refusals and the rest are not', () => {
  for (const code of [1001, 1006, CLOSE.resumable]) assert.equal(closeStatus(code), 'interrupted', String(code));
  for (const code of [CLOSE.overCapacity, CLOSE.perKeyLimit]) assert.equal(closeStatus(code), 'refused', String(code));
  for (const code of [CLOSE.internal, CLOSE.lag, CLOSE.badMessage, CLOSE.idle]) assert.equal(closeStatus(code), 'failed', String(code));
});
