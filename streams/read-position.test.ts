import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DependencyUnavailableError } from '../core/errors.js';
import { ReadPosition } from './read-position.js';

void test('read position: a wait resolves once the tail has read up to the target, at once if it has; too long is a dependency failure', async () => {
  const p = new ReadPosition();
  await p.reach(0n, 10, 'never');
  let done = false;
  const waiting = p.reach(3n, 1000, 'slow').then(() => (done = true));
  p.advance(2n);
  await new Promise((r) => setImmediate(r));
  assert.equal(done, false);
  p.advance(3n);
  await waiting;
  assert.equal(p.next, 3n);
  await assert.rejects(p.reach(10n, 20, 'the tail did not get there'), (e: unknown) => e instanceof DependencyUnavailableError && /did not get there/.test(e.message));
});
