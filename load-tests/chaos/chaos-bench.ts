/**
 * Chaos benchmark (not a test): 500 jobs while actor hosts and engine instances are SIGKILLed, restarted, added and
 * removed at random and the Kafka broker restarts once; then exactly-once checks from ClickHouse and the restore time
 * of a takeover, before and after 10,000 finished jobs are in jobs.state history. Prints a summary and writes JSON to
 * load-tests/results/.
 *
 *   npm run bench:chaos -- [--jobs 500] [--concurrency 8] [--interval-ms 4000] [--history 10000] [--seed 12345]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, loadConfig } from '../../core/config.js';
import { runChaos } from './chaos-driver.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      jobs: { type: 'string', default: '500' }, concurrency: { type: 'string', default: '8' }, 'interval-ms': { type: 'string', default: '4000' },
      history: { type: 'string', default: '10000' }, seed: { type: 'string', default: '12345' }, 'clickhouse-url': { type: 'string' },
    },
  });
  const config = loadConfig();
  const report = await runChaos({
    jobs: Number(values.jobs), concurrency: Number(values.concurrency), actionIntervalMs: Number(values['interval-ms']),
    historyJobs: Number(values.history), seed: Number(values.seed), homeDir: config.homeDir,
    ...(values['clickhouse-url'] ? { clickhouseUrl: values['clickhouse-url'] } : {}),
    note: (m) => process.stdout.write(`# ${m}\n`),
  });
  const exactlyOnce = report.stuck.length === 0 && report.duplicateTerminalAudits.length === 0 && report.missingTerminalAudits.length === 0
    && report.duplicateFacts === 0 && report.completedWithoutFacts.length === 0;
  process.stdout.write([
    '',
    `jobs accepted            ${report.accepted}/${report.jobs} (${report.submitRetries} submission retries)`,
    `outcomes                 ${JSON.stringify(report.outcomes)}`,
    `stuck                    ${report.stuck.length}`,
    `terminal audit rows      duplicates ${report.duplicateTerminalAudits.length}, missing ${report.missingTerminalAudits.length}`,
    `task facts               duplicate (task, attempt, outcome) ${report.duplicateFacts}; completed jobs missing a fact ${report.completedWithoutFacts.length}`,
    `chaos actions            ${JSON.stringify(report.actions)}`,
    `broker restart           ${JSON.stringify(report.brokerRestart)}`,
    `restore after the run    ${JSON.stringify(report.restore.afterRun)}`,
    `restore with history     ${JSON.stringify(report.restore.withHistory)}`,
    `throughput               ${report.jobsPerSecond} jobs/s during the chaos`,
    `wall                     ${report.wallSeconds} s`,
    `exactly once             ${exactlyOnce ? 'yes' : 'NO'}`,
    '',
  ].join('\n'));
  const dir = join(REPO_ROOT, 'load-tests', 'results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `chaos-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify({ ...report, exactlyOnce }, null, 2));
  process.stdout.write(`wrote ${file}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos benchmark failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
