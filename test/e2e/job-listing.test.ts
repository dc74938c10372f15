/**
 * `GET /v1/audio/transcriptions` on the real stack (gateway, Kafka, ClickHouse): 250 jobs listed in pages of 50 while
 * new jobs keep arriving, none missed or repeated; filters and the oldest-first order; bad parameters are 400s.
 * No engine runs, so the jobs stay pending: the listing is what is tested, not the pipeline.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeWav } from '../../gateway/test-harness.js';
import { startHarness, type Harness } from '../../harness/pipeline-harness.js';

let h: Harness;
let dir: string;
let wav = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dalston-listing-'));
  h = await startHarness({ name: 'listing', engines: [] });
  wav = await makeWav(dir, 0.2);
});
after(async () => {
  await h?.stop();
  await rm(dir, { recursive: true, force: true });
});

interface Page { data: { id: string; status: string; created_at: string }[]; has_more: boolean; next_cursor: string | null }

async function submitMany(n: number, fields: Record<string, string> = {}): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 10) {
    const batch = await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => h.submit(wav, fields)));
    for (const r of batch) {
      assert.equal(r.status, 201, JSON.stringify(r.body));
      ids.push(r.body.id);
    }
  }
  return ids;
}

async function page(query: string): Promise<Page> {
  const res = await h.api(`/v1/audio/transcriptions?${query}`);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as Page;
}

test('250 jobs in pages of 50 while new jobs arrive: every one listed once, newest first, none repeated', async (t) => {
  const existing = await submitMany(250);
  const seen: string[] = [];
  const arrivedMeanwhile: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const p: Page = await page(`limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    pages++;
    assert.ok(p.data.length <= 50);
    seen.push(...p.data.map((j) => j.id));
    const times = p.data.map((j) => Date.parse(j.created_at));
    assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first within a page');
    cursor = p.next_cursor;
    // New jobs arrive between pages: they are newer than the cursor, so they never enter a later page.
    arrivedMeanwhile.push(...(await submitMany(5)));
  } while (cursor && pages < 20);
  assert.equal(new Set(seen).size, seen.length, 'no job listed twice');
  const missing = existing.filter((id) => !seen.includes(id));
  assert.deepEqual(missing, [], 'no job missed');
  assert.equal(seen.filter((id) => arrivedMeanwhile.includes(id)).length, 0, 'jobs created after the first page do not shift later pages');
  assert.equal(pages, 5, `250 jobs in 5 pages of 50 (${pages})`);
  t.diagnostic(`${seen.length} jobs in ${pages} pages; ${arrivedMeanwhile.length} arrived meanwhile`);

  // The first page now starts with the newest of them.
  const first = await page('limit=5');
  assert.deepEqual(first.data.map((j) => j.id).sort(), arrivedMeanwhile.slice(-5).sort());
});

test('oldest first, filters by status, model and creation time; bad parameters and foreign cursors are 400s', async () => {
  const before = Date.now();
  const tagged = await submitMany(3, { model: 'moonshine-tiny' });
  const asc = await page(`sort=created_asc&model=moonshine-tiny&created_after=${new Date(before - 1000).toISOString()}`);
  assert.deepEqual(asc.data.map((j) => j.id).sort(), [...tagged].sort(), 'only the model asked for');
  const times = asc.data.map((j) => Date.parse(j.created_at));
  assert.deepEqual(times, [...times].sort((a, b) => a - b), 'oldest first');
  const pending = await page('status=pending,running&limit=100');
  assert.ok(pending.data.length > 0 && pending.data.every((j) => j.status === 'pending' || j.status === 'running'));
  assert.equal((await page(`created_before=${before - 60 * 60 * 1000}`)).data.length, 0, 'nothing created an hour before the test');
  const desc = await page('limit=2');
  for (const q of ['limit=0', 'limit=101', 'sort=name', 'status=done', 'cursor=garbage', 'created_after=yesterday', `sort=created_asc&cursor=${encodeURIComponent(desc.next_cursor ?? '')}`]) {
    const res = await h.api(`/v1/audio/transcriptions?${q}`);
    assert.equal(res.status, 400, q);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'invalid_request', q);
  }
});

test('PATCH names and tags a job in ClickHouse: the job and the listing show them, a second PATCH replaces them, ?tag= filters by them', async () => {
  const [id] = await submitMany(1);
  const patch = (body: unknown) => h.api(`/v1/audio/transcriptions/${id}`, { method: 'PATCH', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  assert.equal((await patch({ name: 'Board call', tags: ['q4', 'sales'] })).status, 200);
  const job = (await (await h.api(`/v1/audio/transcriptions/${id}`)).json()) as { name: unknown; tags: unknown };
  assert.deepEqual([job.name, job.tags], ['Board call', ['q4', 'sales']]);
  assert.equal((await patch({ tags: ['legal'] })).status, 200);
  const page = (await (await h.api('/v1/audio/transcriptions?limit=5')).json()) as { data: { id: string; name: unknown; tags: unknown }[] };
  const listed = page.data.find((j) => j.id === id);
  assert.deepEqual([listed?.name, listed?.tags], ['Board call', ['legal']], 'the newest change wins; the name is kept');
  const byTag = async (tag: string) => ((await (await h.api(`/v1/audio/transcriptions?tag=${encodeURIComponent(tag)}`)).json()) as { data: { id: string }[] }).data.map((j) => j.id);
  assert.deepEqual(await byTag('legal'), [id], 'the tag filter finds the job by its current tag');
  assert.deepEqual(await byTag('q4'), [], 'a tag it no longer has does not');
});
