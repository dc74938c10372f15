/**
 * Start-up check of a model's files: present, right size, right sha256. Engines call verifyModel before
 * loading weights so a missing or corrupt file is one clear ModelError naming model and file, never a
 * recogniser that silently returns empty text.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
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

/**
 * Throws ModelError (not retryable) naming the model and the first bad file; the message says how to repair.
 */
export async function verifyModel(id: string, homeDir: string): Promise<VerifiedModel> {
  const spec = findModel(id);
  if (spec === undefined) throw new ModelError(`model "${id}" is not in the catalogue`, { modelId: id });
  const dir = modelDir(spec, homeDir);
  const paths = new Map<string, string>();
  for (const file of spec.files) {
    const path = join(dir, file.name);
    const problem = await checkFile(path, file);
    if (problem !== undefined) {
      const repair = spec.systemDir !== undefined
        ? `install the Debian package ${spec.sources.map((s) => s.name).join(' or ')}`
        : 'run set-up: node dist/engines/models/install-main.js';
      throw new ModelError(`model ${spec.id}: file ${file.name} is ${problem} (${path}); ${repair}`, { modelId: spec.id, file: file.name });
    }
    paths.set(file.name, path);
  }
  return { spec, dir, paths };
}

/** The verified path of one declared file (after verifyModel). */
export function modelPath(model: VerifiedModel, name: string): string {
  const path = model.paths.get(name);
  if (path === undefined) throw new ModelError(`model ${model.spec.id} declares no file ${name}`, { modelId: model.spec.id, file: name });
  return path;
}
