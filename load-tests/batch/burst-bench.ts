/**
 * Burst benchmark (not a test): `--jobs` short jobs (default 5,000) submitted as fast as `--concurrency` clients can
 * against a stack of two actor hosts and the default engine, with DALSTON_MAX_QUEUED_TASKS at `--max-queued`; a third
 * of the way in one actor host is SIGKILLed and another added (`--no-kill` skips it). Prints and writes JSON: accepted
 * and refused submissions (each refusal's Retry-After), exactly-once of the terminal audit rows, drain time and every
 * process's peak RSS.
 *
 *   npm run bench:burst -- [--jobs 5000] [--concurrency 64] [--max-queued 2000] [--no-kill]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, loadConfig } from '../../core/config.js';
import { synthesizeFile } from '../../harness/speech-fixtures.js';
import { startHarness } from '../../harness/pipeline-harness.js';
import { runBurst } from './burst.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      jobs: { type: 'string', default: '5000' }, concurrency: { type: 'string', default: '64' },
      'max-queued': { type: 'string', default: '2000' }, 'no-kill': { type: 'boolean', default: false },
    },
  });
  const jobs = Number(values.jobs);
  const engineId = loadConfig().transcribeEngine;
  const h = await startHarness({
    name: 'burst', actorHosts: 2,
    engines: ['audio-prepare', engineId, 'merge'],
    env: { DALSTON_LOG_LEVEL: 'warn', DALSTON_TRANSCRIBE_ENGINE: engineId, DALSTON_MAX_QUEUED_TASKS: String(values['max-queued']) },
  });
  try {
    const audio = await synthesizeFile('go forward ten meters', { padBefore: 0.1, padAfter: 0.1 });
    const report = await runBurst(h, {
      jobs, concurrency: Number(values.concurrency), audio,
      ...(values['no-kill'] ? {} : { killActorHostAfter: Math.floor(jobs / 3) }),
    });
    const result = { date: new Date().toISOString(), engineId, maxQueuedTasks: Number(values['max-queued']), ...report };
    const dir = join(REPO_ROOT, 'load-tests', 'results');
    await mkdir(dir, { recursive: true });
    const file = join(dir, `batch-burst-${result.date.replace(/[:.]/g, '-')}.json`);
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write([
      `burst: ${report.accepted}/${jobs} accepted, ${report.refusals} refusals (${report.refusalsWithoutRetryAfter} without Retry-After; Retry-After p50/p95 ${report.retryAfterSeconds.p50}/${report.retryAfterSeconds.p95} s)`,
      `  submitted in ${report.submitSeconds.toFixed(1)} s, all ended after ${report.drainSeconds.toFixed(1)} s (${report.jobsPerSecond.toFixed(2)} jobs/s); outcomes ${JSON.stringify(report.outcomes)}; stuck ${report.stuck.length}`,
      `  submissions without an answer (connection failed, retried): ${report.networkErrors}`,
      `  exactly once: ${report.duplicateTerminalAudits.length} jobs with two terminal audit rows, ${report.missingTerminalAudits.length} with none`,
      `  actor host killed: ${report.actorHostKilled ?? '-'}, added: ${report.actorHostAdded ?? '-'}`,
      `  peak RSS: ${report.processes.map((p) => `${p.name} ${p.rssPeakMb.toFixed(0)} MB`).join(', ')}`,
      ...report.otherFailures.slice(0, 10).map((f) => `  other failure: ${f}`),
      `results: ${file}`, '',
    ].join('\n'));
  } finally {
    await h.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
