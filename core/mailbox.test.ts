import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedMailbox, MailboxFullError } from './mailbox.js';

test('mailbox runs one item per key at a time, keys concurrently, and bounds each queue', async () => {
  const mb = new KeyedMailbox(3);
  const order: string[] = [];
  let open!: () => void;
  const gate = { promise: new Promise<void>((r) => (open = r)), resolve: () => open() };
  const a1 = mb.run('a', async () => { order.push('a1-start'); await gate.promise; order.push('a1-end'); });
  const a2 = mb.run('a', async () => { order.push('a2'); });
  const b1 = mb.run('b', async () => { order.push('b1'); });
  await b1;
  assert.deepEqual(order, ['a1-start', 'b1'], 'b ran while a was busy; a2 waits for a1');
  const a3 = mb.run('a', async () => { throw new Error('a3 fails'); });
  await assert.rejects(mb.run('a', async () => undefined), MailboxFullError);
  gate.resolve();
  await a1; await a2;
  await assert.rejects(a3, /a3 fails/);
  assert.deepEqual(order, ['a1-start', 'b1', 'a1-end', 'a2']);
  await mb.run('a', async () => undefined);
  assert.equal(mb.activeKeys, 0);
});
