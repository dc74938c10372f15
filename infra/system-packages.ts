/**
 * The Debian packages Dalston needs, each with the file that proves it is installed. Installs only what is
 * missing (one apt-get update, one apt-get install), so a second run does nothing.
 */
import { existsSync } from 'node:fs';
import type { Logger } from '../core/logger.js';
import { commandExists, run, tail } from './exec.js';
import { SetupError } from './errors.js';

interface Requirement {
  readonly pkg: string;
  /** A command on PATH or an absolute path that exists once the package is installed. */
  readonly probe: string;
  readonly why: string;
}

export const SYSTEM_REQUIREMENTS: readonly Requirement[] = [
  { pkg: 'default-jre-headless', probe: 'java', why: 'runs Apache Kafka' },
  { pkg: 'maven', probe: 'mvn', why: 'resolves Kafka from Maven Central' },
  { pkg: 'clickhouse-server', probe: '/usr/sbin/clickhouse-server', why: 'task facts, job state, analytics' },
  { pkg: 'clickhouse-client', probe: 'clickhouse-client', why: 'operator queries' },
  { pkg: 'ffmpeg', probe: 'ffmpeg', why: 'decodes uploaded audio' },
  { pkg: 'sox', probe: 'sox', why: 'audio measurement and noise mixing in tests' },
  { pkg: 'espeak-ng', probe: 'espeak-ng', why: 'synthesises test speech' },
  { pkg: 'pocketsphinx', probe: 'pocketsphinx_continuous', why: 'baseline recogniser' },
  { pkg: 'pocketsphinx-en-us', probe: '/usr/share/pocketsphinx/model/en-us/en-us', why: 'baseline recogniser model' },
  { pkg: 'pocketsphinx-testdata', probe: '/usr/share/pocketsphinx/test/data/librivox', why: 'real recorded speech with references' },
  { pkg: 'sctk', probe: 'sctk', why: 'sclite word error rate scoring' },
  { pkg: 'prometheus', probe: 'promtool', why: 'alert rule tests and PromQL validation' },
  // No Docker engine runs here; the compose client still validates compose/docker-compose.yml.
  { pkg: 'docker-compose', probe: 'docker-compose', why: 'validates the compose file' },
];

function present(probe: string): boolean {
  return probe.startsWith('/') ? existsSync(probe) : commandExists(probe);
}

export async function ensureSystemPackages(log: Logger): Promise<{ installed: string[] }> {
  const missing = SYSTEM_REQUIREMENTS.filter((r) => !present(r.probe));
  if (missing.length === 0) return { installed: [] };
  const pkgs = missing.map((r) => r.pkg);
  if (process.getuid?.() !== 0) {
    throw new SetupError(`missing system packages (${pkgs.join(', ')}); run as root or install them with apt-get`);
  }
  log.info({ packages: pkgs }, 'installing system packages');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = await run('apt-get', ['update'], { env });
  if (update.code !== 0) throw new SetupError(`apt-get update failed: ${tail(update.stderr, 3).replace(/\n/g, ' | ')}`);
  const install = await run('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { env });
  if (install.code !== 0) {
    throw new SetupError(`apt-get install ${pkgs.join(' ')} failed: ${tail(install.stderr, 3).replace(/\n/g, ' | ')}`);
  }
  const still = missing.filter((r) => !present(r.probe));
  if (still.length > 0) {
    throw new SetupError(`installed ${pkgs.join(', ')} but still missing: ${still.map((r) => `${r.probe} (${r.pkg}, ${r.why})`).join(', ')}`);
  }
  return { installed: pkgs };
}
