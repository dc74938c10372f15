/**
 * CLI: `node dist/engines/models/install-main.js [--check] [--only id,id] [--json]`.
 * Installs (or with --check only verifies) the catalogue's models and prints which are installed.
 * Exit code 1 when a requested model is missing, so `./dalston test` can stop early with the reason.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { CATALOGUE } from './catalogue.js';
import { installModels, type ModelInstallReport } from './install.js';
import { modelDir, verifyModel } from './verify.js';

async function check(homeDir: string, only: readonly string[] | undefined): Promise<ModelInstallReport[]> {
  const out: ModelInstallReport[] = [];
  for (const spec of CATALOGUE.filter((m) => only === undefined || only.includes(m.id))) {
    try {
      await verifyModel(spec.id, homeDir);
      out.push({ id: spec.id, status: 'already-installed', dir: modelDir(spec, homeDir), attempts: [] });
    } catch (err) {
      out.push({ id: spec.id, status: 'missing', dir: modelDir(spec, homeDir), attempts: [], error: err instanceof Error ? err.message : String(err) });
    }
  }
  return out;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { check: { type: 'boolean' }, only: { type: 'string' }, json: { type: 'boolean' } } });
  const config = loadConfig();
  const only = values.only?.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const log = createLogger({ service: 'dalston-setup', level: values.json === true ? 'warn' : config.logLevel });
  const reports = values.check === true ? await check(config.homeDir, only) : await installModels({ homeDir: config.homeDir, log, ...(only ? { only } : {}) });
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
  } else {
    for (const r of reports) {
      const state = r.status === 'missing' ? 'MISSING' : 'installed';
      process.stdout.write(`${state.padEnd(9)}  ${r.id.padEnd(20)}  ${r.source ?? r.dir}\n`);
      for (const a of r.attempts.filter((x) => x.outcome !== 'used')) {
        process.stdout.write(`           tried ${a.source}: ${a.outcome}${a.detail ? ` (${a.detail})` : ''}${a.found && a.found.length > 0 ? `; package holds ${a.found.slice(0, 8).join(', ')}` : ''}\n`);
      }
      if (r.error !== undefined) process.stdout.write(`           ${r.error}\n`);
    }
  }
  return reports.some((r) => r.status === 'missing') ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`model set-up failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
