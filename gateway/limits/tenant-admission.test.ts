import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AdmissionKind } from '../../streams/index.js';
import { TenantAdmission, countRunning, type ActiveWork, type AdmissionLedger } from './tenant-admission.js';
import { parseTenantLimits } from './tenant-limits.js';

/** The topic's order as a list: claims in arrival order, withdrawals removing them. */
class ListLedger implements AdmissionLedger {
  readonly claims: { tenantId: string; kind: AdmissionKind; id: string }[] = [];
  async claim(tenantId: string, kind: AdmissionKind, id: string): Promise<readonly string[]> {
    const before = this.claims.filter((c) => c.tenantId === tenantId && c.kind === kind).map((c) => c.id);
    this.claims.push({ tenantId, kind, id });
    return before;
  }
  withdraw(tenantId: string, kind: AdmissionKind, id: string): void {
    const i = this.claims.findIndex((c) => c.tenantId === tenantId && c.kind === kind && c.id === id);
    if (i >= 0) this.claims.splice(i, 1);
  }
}

/** ClickHouse as a map of rows: id → running or not. */
class RowWork implements ActiveWork {
  readonly rows = new Map<string, boolean>();
  audioToday = 0;
  async audioSecondsSince(): Promise<number> {
    return this.audioToday;
  }
  async active(_t: string, _k: AdmissionKind, candidates: readonly string[]) {
    const running = new Set([...this.rows].filter(([, r]) => r).map(([id]) => id));
    const known = new Set(candidates.filter((id) => this.rows.has(id)));
    return { running, known };
  }
}

void test('running = ClickHouse running ∪ earlier claims it has no row for; an ended job frees its slot', () => {
  assert.equal(countRunning(new Set(['a']), new Set(['a', 'b']), ['a', 'b', 'c']), 2, 'a runs, b ended (known, not running), c not in ClickHouse yet');
  assert.equal(countRunning(new Set(), new Set(), []), 0);
});

void test('concurrency admission: up to the limit, then 429 with the claim withdrawn; other tenants and kinds are apart; no limit, no claim', async () => {
  const ledger = new ListLedger();
  const work = new RowWork();
  const admission = new TenantAdmission(parseTenantLimits('acme:concurrent_jobs=2,concurrent_sessions=1'), ledger, work);
  assert.equal(await admission.admit('acme', 'job', 'j1'), undefined);
  assert.equal(await admission.admit('acme', 'job', 'j2'), undefined);
  const refused = await admission.admit('acme', 'job', 'j3');
  assert.deepEqual(refused, { kind: 'job', reason: 'concurrency', retryAfterSeconds: 10, message: 'tenant acme already has 2 jobs queued or running (limit 2)' });
  assert.deepEqual(ledger.claims.map((c) => c.id), ['j1', 'j2'], 'the refused claim is withdrawn');
  assert.equal(await admission.admit('acme', 'session', 's1'), undefined, 'sessions count apart from jobs');
  assert.match((await admission.admit('acme', 'session', 's2'))?.message ?? '', /2 real-time sessions open \(limit 1\)|1 real-time sessions open \(limit 1\)/);
  assert.equal(await admission.admit('other', 'job', 'o1'), undefined);
  assert.equal(ledger.claims.some((c) => c.tenantId === 'other'), false, 'a tenant without a limit claims nothing');
  // j1 reached ClickHouse and ended; j2 runs: one slot is free again.
  work.rows.set('j1', false);
  work.rows.set('j2', true);
  assert.equal(await admission.admit('acme', 'job', 'j4'), undefined);
  assert.match((await admission.admit('acme', 'job', 'j5'))?.message ?? '', /already has 2 jobs/);
  admission.release('acme', 'job', 'j4');
  assert.equal(ledger.claims.some((c) => c.id === 'j4'), false);
});

void test('audio allowance: once the day\'s audio reaches the limit, new jobs and sessions wait for the next UTC day', async () => {
  const work = new RowWork();
  const admission = new TenantAdmission(parseTenantLimits('metered:audio_hours_per_day=0.5'), new ListLedger(), work);
  const now = Date.UTC(2026, 11, 7, 23, 0, 0);
  work.audioToday = 1799;
  assert.equal(await admission.admit('metered', 'job', 'j1', now), undefined);
  work.audioToday = 1800;
  const refused = await admission.admit('metered', 'session', 's1', now);
  assert.equal(refused?.reason, 'audio_quota');
  assert.equal(refused?.retryAfterSeconds, 3600, 'until midnight UTC');
  assert.match(refused?.message ?? '', /used its 0.5 hours of audio for today \(UTC\): 0.500 h/);
});
