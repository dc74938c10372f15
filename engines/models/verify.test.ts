import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../core/config.js';
import { SILERO_VAD_V5 } from './catalogue.js';
import { ModelError } from './model-error.js';
import { modelDir, verifyModel } from './verify.js';

const home = loadConfig().homeDir;

async function scratchHome(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dalston-models-'));
  const dest = modelDir(SILERO_VAD_V5, dir);
  await mkdir(dest, { recursive: true });
  const file = SILERO_VAD_V5.files[0];
  assert.ok(file);
  await copyFile(join(modelDir(SILERO_VAD_V5, home), file.name), join(dest, file.name));
  return dir;
}

void test('an installed model verifies and exposes its file paths', async () => {
  const model = await verifyModel(SILERO_VAD_V5.id, home);
  assert.equal(model.spec.id, 'silero-vad-v5');
  assert.match(model.paths.get('silero_vad_v5.onnx') ?? '', /models\/silero-vad-v5\/silero_vad_v5\.onnx$/);
});

void test('a missing file is one ModelError naming model and file, not retryable', async () => {
  const dir = await scratchHome();
  try {
    await rm(join(modelDir(SILERO_VAD_V5, dir), 'silero_vad_v5.onnx'));
    await assert.rejects(verifyModel('silero-vad-v5', dir), (err: unknown) => {
      assert.ok(err instanceof ModelError);
      assert.equal(err.modelId, 'silero-vad-v5');
      assert.equal(err.file, 'silero_vad_v5.onnx');
      assert.equal(err.retryable, false);
      assert.equal(err.code, 'DALSTON_ERR_MODEL');
      assert.match(err.message, /silero-vad-v5.*silero_vad_v5\.onnx is missing/);
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('a truncated or same-size corrupted file is rejected by size or checksum', async () => {
  const dir = await scratchHome();
  const path = join(modelDir(SILERO_VAD_V5, dir), 'silero_vad_v5.onnx');
  try {
    await truncate(path, 1000);
    await assert.rejects(verifyModel('silero-vad-v5', dir), /size 1000 bytes, expected 2327524/);
    await writeFile(path, Buffer.alloc(2_327_524));
    await assert.rejects(verifyModel('silero-vad-v5', dir), /silero_vad_v5\.onnx is sha256 [0-9a-f]{64}, expected 2623a295/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('an id outside the catalogue is a ModelError', async () => {
  await assert.rejects(verifyModel('no-such-model', home), (err: unknown) => err instanceof ModelError && err.modelId === 'no-such-model');
});
