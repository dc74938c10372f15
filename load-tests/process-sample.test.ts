import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { sampleFromProc } from './process-sample.js';

const STAT = '4242 (node main (x)) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 11 0 100 0 0';

test('sampleFromProc: CPU seconds from utime+stime (even with ") " in the command name) and peak RSS from VmHWM', () => {
  assert.deepEqual(sampleFromProc('gw', STAT, 'Name:\tnode\nVmHWM:\t  204800 kB\nVmRSS:\t 100000 kB\n'), { name: 'gw', cpuSeconds: 3, rssPeakMb: 200 });
});

test('sampleFromProc: a killed process not yet reaped (a zombie: no memory lines) counts as exited, not as NaN MB', () => {
  assert.equal(sampleFromProc('actors-0', STAT.replace(' S ', ' Z '), 'Name:\tnode\nState:\tZ (zombie)\nThreads:\t1\n'), undefined);
});

test('sampleFromProc reads this very process', async () => {
  const s = sampleFromProc('self', await readFile('/proc/self/stat', 'utf8'), await readFile('/proc/self/status', 'utf8'));
  assert.ok(s && s.rssPeakMb > 10 && s.cpuSeconds >= 0, JSON.stringify(s));
});
