/**
 * Set-up only: runs a model's conversion script (e.g. CTranslate2 Whisper → ONNX) in the project's venv with
 * pinned PyPI requirements, then records what it was made from and the outputs' checksums in
 * conversion.json, which verifyModel checks at engine start.
 */
import { execFile } from 'node:child_process';
import { rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../../core/logger.js';
import type { ModelSpec } from './catalogue.js';
import { ModelError } from './model-error.js';
import { ensurePip } from './package-fetch.js';
import { CONVERSION_MANIFEST, modelDir, sha256File, type ConversionManifest } from './verify.js';

const run = promisify(execFile);
const CONVERT_TIMEOUT_MS = 15 * 60 * 1000;

export async function runConversion(spec: ModelSpec, homeDir: string, repoRoot: string, log: Logger): Promise<void> {
  const conversion = spec.conversion;
  if (conversion === undefined) return;
  const dir = modelDir(spec, homeDir);
  const script = join(repoRoot, conversion.script);
  const pip = await ensurePip(homeDir);
  const python = join(dirname(pip), 'python');
  await rm(join(dir, CONVERSION_MANIFEST), { force: true });
  log.info({ model: spec.id, requirements: conversion.requirements }, 'installing conversion requirements');
  await run(pip, ['install', '--disable-pip-version-check', '--only-binary=:all:', ...conversion.requirements], { timeout: CONVERT_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
  log.info({ model: spec.id, script: conversion.script }, 'converting model');
  try {
    await run(python, [script, dir, dir], { timeout: CONVERT_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const stderr = (err as { stderr?: unknown }).stderr;
    throw new ModelError(`model ${spec.id}: conversion by ${conversion.script} failed: ${typeof stderr === 'string' ? stderr.trim().split('\n').slice(-3).join(' ') : String(err)}`, { modelId: spec.id }, { cause: err });
  }
  const outputs: Record<string, { sha256: string; bytes: number }> = {};
  for (const name of conversion.outputs) {
    const path = join(dir, name);
    try {
      outputs[name] = { sha256: await sha256File(path), bytes: (await stat(path)).size };
    } catch (err) {
      throw new ModelError(`model ${spec.id}: conversion wrote no ${name}`, { modelId: spec.id, file: name }, { cause: err });
    }
  }
  const manifest: ConversionManifest = {
    script: conversion.script,
    scriptSha256: await sha256File(script),
    requirements: conversion.requirements,
    inputs: Object.fromEntries(spec.files.map((f) => [f.name, f.sha256])),
    outputs,
  };
  await writeFile(join(dir, CONVERSION_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
}
