import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputLedger, type LedgerKind } from './input-ledger.js';

function ledgerWith(entries: { offset: number; kind: LedgerKind; from?: number; to?: number; sentAt?: number }[]): { ledger: InputLedger; released: number[] } {
  const ledger = new InputLedger();
  const released: number[] = [];
  for (const e of entries) {
    ledger.add({
      offset: BigInt(e.offset), kind: e.kind, release: () => released.push(e.offset),
      ...(e.from !== undefined && { startSample: e.from }), ...(e.to !== undefined && { endSample: e.to }), ...(e.sentAt !== undefined && { sentAt: e.sentAt }),
    });
  }
  return { ledger, released };
}

test('the resume offset is the first held frame reaching past the end of the final utterance', () => {
  // Frames of 1600 samples at offsets 10, 12, 14, 16 (other sessions' messages in between); utterance ended at 2000.
  const { ledger } = ledgerWith([
    { offset: 3, kind: 'start' },
    { offset: 10, kind: 'audio', from: 0, to: 1600 },
    { offset: 12, kind: 'audio', from: 1600, to: 3200 },
    { offset: 14, kind: 'audio', from: 3200, to: 4800 },
    { offset: 16, kind: 'audio', from: 4800, to: 6400 },
  ]);
  assert.equal(ledger.resumeOffset(2000, 16n), 12n, 'the frame holding sample 2000 is still needed');
  assert.equal(ledger.resumeOffset(3200, 16n), 14n, 'a frame ending exactly at the utterance end is not needed');
});

test('a final that closed everything received (flush) resumes after the message that made it', () => {
  const { ledger } = ledgerWith([
    { offset: 10, kind: 'audio', from: 0, to: 1600 },
    { offset: 12, kind: 'control' },
  ]);
  assert.equal(ledger.resumeOffset(1600, 12n), 13n);
});

test('release follows the durable resume offset and never passes it', () => {
  const { ledger, released } = ledgerWith([
    { offset: 3, kind: 'start' },
    { offset: 10, kind: 'audio', from: 0, to: 1600 },
    { offset: 12, kind: 'audio', from: 1600, to: 3200 },
    { offset: 14, kind: 'audio', from: 3200, to: 4800 },
  ]);
  assert.equal(ledger.releaseBefore(12n), 2);
  assert.deepEqual(released, [3, 10]);
  assert.equal(ledger.releaseBefore(12n), 0, 'the same snapshot again releases nothing');
  assert.equal(ledger.size, 2);
  assert.equal(ledger.releaseAll(), 2);
  assert.deepEqual(released, [3, 10, 12, 14]);
  assert.equal(ledger.size, 0);
});

test('offsets must increase (one partition, read in order)', () => {
  const { ledger } = ledgerWith([{ offset: 5, kind: 'audio', from: 0, to: 10 }]);
  assert.throws(() => ledger.add({ offset: 5n, kind: 'audio', startSample: 10, endSample: 20, release: () => undefined }), RangeError);
});

test('sentAt of the frame holding a sample, and of the last frame at the end of the stream', () => {
  const { ledger } = ledgerWith([
    { offset: 1, kind: 'audio', from: 0, to: 1600, sentAt: 1000 },
    { offset: 2, kind: 'audio', from: 1600, to: 3200, sentAt: 1100 },
  ]);
  assert.equal(ledger.sentAtOfSample(1700), 1100);
  assert.equal(ledger.sentAtOfSample(3200), 1100);
  assert.equal(ledger.sentAtOfSample(9999), undefined);
});
