/**
 * Naming and tagging a job: the PATCH body's rules as plain values, and the route on the gateway (with the
 * in-memory job reader; test/e2e/job-listing.test.ts runs it on ClickHouse).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parseLabelPatch } from './transcriptions.js';
import { makeWav, startHarness } from './test-harness.js';

void test('parseLabelPatch: name and tags, either or both; null unnames; tags replace the set, deduplicated; bad input is a 400 naming the field', () => {
  assert.deepEqual(parseLabelPatch({ name: ' Board call ', tags: ['q4', 'sales', 'q4'] }, undefined), { name: 'Board call', tags: ['q4', 'sales'] });
  assert.deepEqual(parseLabelPatch({ tags: ['legal'] }, { name: 'kept', tags: ['old'] }), { name: 'kept', tags: ['legal'] });
  assert.deepEqual(parseLabelPatch({ name: null }, { name: 'gone', tags: ['kept'] }), { name: '', tags: ['kept'] });
  assert.deepEqual(parseLabelPatch({ tags: ['région:île-de-france', 'team/a b'] }, undefined).tags, ['région:île-de-france', 'team/a b']);
  assert.throws(() => parseLabelPatch({}, undefined), /nothing to change/);
  assert.throws(() => parseLabelPatch([], undefined), /JSON object/);
  assert.throws(() => parseLabelPatch({ title: 'x' }, undefined), /unknown field "title"/);
  assert.throws(() => parseLabelPatch({ name: 3 }, undefined), /name must be a string or null/);
  assert.throws(() => parseLabelPatch({ name: 'x'.repeat(257) }, undefined), /at most 256/);
  assert.throws(() => parseLabelPatch({ tags: 'a' }, undefined), /array of strings/);
  assert.throws(() => parseLabelPatch({ tags: [''] }, undefined), /must be 1–64/);
  assert.throws(() => parseLabelPatch({ tags: ['-x'] }, undefined), /must be 1–64/);
  assert.throws(() => parseLabelPatch({ tags: Array.from({ length: 33 }, (_, i) => `t${i}`) }, undefined), /at most 32 tags/);
});

void test('PATCH /v1/audio/transcriptions/{id}: the job answers with its name and tags from then on; an unknown job is a 404, a bad body a 400', async () => {
  const h = await startHarness();
  try {
    const form = new FormData();
    form.append('file', new Blob([await readFile(await makeWav(h.dir, 1))]), 'a.wav');
    const id = String(((await (await h.request('/v1/audio/transcriptions', { method: 'POST', body: form })).json()) as { id: string }).id);
    const before = (await (await h.request(`/v1/audio/transcriptions/${id}`)).json()) as { name: unknown; tags: unknown };
    assert.deepEqual([before.name, before.tags], [null, []]);
    const patch = (path: string, body: unknown) => h.request(path, { method: 'PATCH', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    const res = await patch(`/v1/audio/transcriptions/${id}`, { name: 'Board call', tags: ['q4', 'sales'] });
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { name: string }).name, 'Board call');
    const after = (await (await h.request(`/v1/audio/transcriptions/${id}`)).json()) as { name: unknown; tags: unknown };
    assert.deepEqual([after.name, after.tags], ['Board call', ['q4', 'sales']]);
    assert.equal((await patch('/v1/audio/transcriptions/job_01M0000000000000000000000', { name: 'x' })).status, 404);
    const bad = await patch(`/v1/audio/transcriptions/${id}`, { tags: [42] });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /array of strings/);
    assert.equal((await h.request(`/v1/audio/transcriptions/${id}`, { method: 'PATCH', body: '{nope' })).status, 400);
  } finally {
    await h.close();
  }
});
