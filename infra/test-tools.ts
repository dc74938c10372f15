/**
 * Tools only the test suite needs, installed by `./dalston test` (never by `up`): an S3 protocol server (moto,
 * from PyPI, in the project's own venv) for the S3 artifact store's conformance tests, since no real S3 is
 * reachable from this machine.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../core/logger.js';
import { ensurePip } from '../engines/models/package-fetch.js';
import { run, tail } from './exec.js';
import { SetupError } from './errors.js';

export const MOTO_REQUIREMENT = 'moto[server]==5.2.5';

export function motoServerPath(homeDir: string): string {
  return join(homeDir, 'cache', 'pyenv', 'bin', 'moto_server');
}

export async function ensureTestTools(homeDir: string, log: Logger): Promise<void> {
  if (existsSync(motoServerPath(homeDir))) return;
  const pip = await ensurePip(homeDir);
  log.info({ package: MOTO_REQUIREMENT }, 'installing the S3 test server');
  const r = await run(pip, ['install', '--quiet', MOTO_REQUIREMENT]);
  if (r.code !== 0 || !existsSync(motoServerPath(homeDir))) {
    throw new SetupError(`pip install ${MOTO_REQUIREMENT} failed: ${tail(r.stderr, 3).replace(/\n/g, ' | ')}`);
  }
}
