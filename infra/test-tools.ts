/**
 * Tools only the test suite needs, installed by `./dalston test` (never by `up`) from PyPI into the project's own
 * venv: an S3 protocol server (moto) for the S3 artifact store's conformance tests, since no real S3 is reachable
 * from this machine, and schemathesis, which fuzzes the running gateway from its OpenAPI document.
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

/** schemathesis, the OpenAPI fuzzer `./dalston test` runs against the stack (test/e2e/openapi-fuzz.test.ts). */
export const SCHEMATHESIS_REQUIREMENT = 'schemathesis==4.32.5';

export function schemathesisPath(homeDir: string): string {
  return join(homeDir, 'cache', 'pyenv', 'bin', 'st');
}

export async function ensureTestTools(homeDir: string, log: Logger): Promise<void> {
  const wanted: [string, string, string][] = [
    [MOTO_REQUIREMENT, motoServerPath(homeDir), 'installing the S3 test server'],
    [SCHEMATHESIS_REQUIREMENT, schemathesisPath(homeDir), 'installing the OpenAPI fuzzer'],
  ];
  for (const [requirement, binary, what] of wanted) {
    if (existsSync(binary)) continue;
    const pip = await ensurePip(homeDir);
    log.info({ package: requirement }, what);
    const r = await run(pip, ['install', '--quiet', requirement]);
    if (r.code !== 0 || !existsSync(binary)) {
      throw new SetupError(`pip install ${requirement} failed: ${tail(r.stderr, 3).replace(/\n/g, ' | ')}`);
    }
  }
}
