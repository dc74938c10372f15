/**
 * Start-up check of a model's files: present, right size, right sha256. Engines call verifyModel before
 * loading weights so a missing or corrupt file is one clear ModelError naming model and file, never a
 * recogniser that silently returns empty text.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../../core/config.js';
import { findModel, type ModelFile, type ModelSpec } from './catalogue.js';
import { ModelError } from './model-error.js';

export interface VerifiedModel {
  readonly spec: ModelSpec;
  readonly dir: string;
  /** Absolute path of each declared file, by its catalogue name. */
  readonly paths: ReadonlyMap<string, string>;
}

/** `<homeDir>/models`: where set-up puts every registry-fetched model. */
export function modelsRoot(homeDir: string): string {
  return join(homeDir, 'models');
}

/** Directory holding the model's files: `<homeDir>/models/<id>`, or the system directory of a Debian model. */
export function modelDir(spec: ModelSpec, homeDir: string): string {
  return spec.systemDir ?? join(modelsRoot(homeDir), spec.id);
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Describes what is wrong with one file, or undefined when it is sound. */
export async function checkFile(path: string, file: ModelFile): Promise<string | undefined> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return 'missing';
  }
  if (size !== file.bytes) return `size ${size} bytes, expected ${file.bytes}`;
  const digest = await sha256File(path);
  if (digest !== file.sha256) return `sha256 ${digest}, expected ${file.sha256}`;
  return undefined;
}

/** Written beside converted outputs by set-up: what they were made from and their checksums. */
export const CONVERSION_MANIFEST = 'conversion.json';

export interface ConversionManifest {
  readonly script: string;
  readonly scriptSha256: string;
  readonly requirements: readonly string[];
  /** sha256 of each registry file the outputs were made from. */
  readonly inputs: Readonly<Record<string, string>>;
  readonly outputs: Readonly<Record<string, { readonly sha256: string; readonly bytes: number }>>;
}

function repairHint(spec: ModelSpec): string {
  return spec.systemDir !== undefined
    ? `install the Debian package ${spec.sources.map((s) => s.name).join(' or ')}`
    : 'run set-up: node dist/engines/models/install-main.js';
}

/** Checks the registry-declared files only (not conversion outputs). */
export async function verifyFiles(spec: ModelSpec, homeDir: string): Promise<Map<string, string>> {
  const dir = modelDir(spec, homeDir);
  const paths = new Map<string, string>();
  for (const file of spec.files) {
    const path = join(dir, file.name);
    const problem = await checkFile(path, file);
    if (problem !== undefined) {
      throw new ModelError(`model ${spec.id}: file ${file.name} is ${problem} (${path}); ${repairHint(spec)}`, { modelId: spec.id, file: file.name });
    }
    paths.set(file.name, path);
  }
  return paths;
}

async function verifyConversion(spec: ModelSpec, dir: string, paths: Map<string, string>): Promise<void> {
  const conversion = spec.conversion;
  if (conversion === undefined) return;
  const manifestPath = join(dir, CONVERSION_MANIFEST);
  let manifest: ConversionManifest;
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as ConversionManifest;
  } catch {
    throw new ModelError(`model ${spec.id}: file ${CONVERSION_MANIFEST} is missing or unreadable (${manifestPath}): not converted yet; ${repairHint(spec)}`, { modelId: spec.id, file: CONVERSION_MANIFEST });
  }
  // Outputs of an older conversion script are stale even when their checksums still match.
  const script = join(REPO_ROOT, conversion.script);
  if (existsSync(script) && manifest.scriptSha256 !== (await sha256File(script))) {
    throw new ModelError(`model ${spec.id}: ${CONVERSION_MANIFEST} was made by an older ${conversion.script}; ${repairHint(spec)}`, { modelId: spec.id, file: CONVERSION_MANIFEST });
  }
  for (const f of spec.files) {
    if (manifest.inputs?.[f.name] !== f.sha256) {
      throw new ModelError(`model ${spec.id}: ${CONVERSION_MANIFEST} was made from a different ${f.name}; ${repairHint(spec)}`, { modelId: spec.id, file: CONVERSION_MANIFEST });
    }
  }
  for (const name of conversion.outputs) {
    const recorded = manifest.outputs?.[name];
    const path = join(dir, name);
    const problem = recorded === undefined ? 'not recorded in conversion.json' : await checkFile(path, { name, sha256: recorded.sha256, bytes: recorded.bytes });
    if (problem !== undefined) throw new ModelError(`model ${spec.id}: file ${name} is ${problem} (${path}); ${repairHint(spec)}`, { modelId: spec.id, file: name });
    paths.set(name, path);
  }
}

/**
 * Throws ModelError (not retryable) naming the model and the first bad file; the message says how to repair.
 */
export async function verifyModel(id: string, homeDir: string): Promise<VerifiedModel> {
  const spec = findModel(id);
  if (spec === undefined) throw new ModelError(`model "${id}" is not in the catalogue`, { modelId: id });
  return verifySpec(spec, homeDir);
}

/** verifyModel for a spec in hand (set-up, tests with their own catalogue). */
export async function verifySpec(spec: ModelSpec, homeDir: string): Promise<VerifiedModel> {
  const dir = modelDir(spec, homeDir);
  const paths = await verifyFiles(spec, homeDir);
  await verifyConversion(spec, dir, paths);
  return { spec, dir, paths };
}

/** The verified path of one declared file (after verifyModel). */
export function modelPath(model: VerifiedModel, name: string): string {
  const path = model.paths.get(name);
  if (path === undefined) throw new ModelError(`model ${model.spec.id} declares no file ${name}`, { modelId: model.spec.id, file: name });
  return path;
}
