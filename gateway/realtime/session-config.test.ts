import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveSessionConfig } from './session-config.js';

const format = { encoding: 'pcm_s16le', sampleRate: 16000, channels: 1 } as const;
const defaults = { model: 'moonshine-tiny', retention: true, retentionDays: (t: string) => (t === 'acme' ? 30 : 0) };

void test('a session\'s retention follows a job\'s rules: its own duration, else its tenant\'s retention_days, else kept; keep overrides the tenant', () => {
  assert.equal(resolveSessionConfig({}, format, 'native', defaults, 'acme').retentionSeconds, 30 * 86_400);
  assert.equal(resolveSessionConfig({}, format, 'native', defaults, 'globex').retentionSeconds, undefined);
  assert.equal(resolveSessionConfig({ retentionSeconds: 3600 }, format, 'native', defaults, 'acme').retentionSeconds, 3600);
  assert.equal(resolveSessionConfig({ retentionSeconds: -1 }, format, 'native', defaults, 'acme').retentionSeconds, undefined);
  const off = resolveSessionConfig({ retention: false }, format, 'native', defaults, 'acme');
  assert.deepEqual([off.retention, off.retentionSeconds], [false, undefined], 'nothing kept, nothing to purge');
});
