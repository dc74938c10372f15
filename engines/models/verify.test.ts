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

void test('converted outputs are checked against conversion.json; a changed output or input names the file', async () => {
  const { createHash } = await import('node:crypto');
  const { verifySpec, CONVERSION_MANIFEST } = await import('./verify.js');
  const dir = await mkdtemp(join(tmpdir(), 'dalston-conv-'));
  const src = Buffer.from('source weights');
  const out = Buffer.from('converted graph');
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  const spec = {
    ...SILERO_VAD_V5,
    id: 'fake-converted',
    files: [{ name: 'model.bin', bytes: src.length, sha256: sha(src) }],
    conversion: { script: 'x.py', requirements: [], outputs: ['graph.onnx'] },
  };
  const mdir = modelDir(spec, dir);
  try {
    await mkdir(mdir, { recursive: true });
    await writeFile(join(mdir, 'model.bin'), src);
    await assert.rejects(verifySpec(spec, dir), (e: unknown) => e instanceof ModelError && e.file === CONVERSION_MANIFEST && /not converted yet/.test(e.message));
    await writeFile(join(mdir, 'graph.onnx'), out);
    const manifest = { script: 'x.py', scriptSha256: '', requirements: [], inputs: { 'model.bin': sha(src) }, outputs: { 'graph.onnx': { sha256: sha(out), bytes: out.length } } };
    await writeFile(join(mdir, CONVERSION_MANIFEST), JSON.stringify(manifest));
    const ok = await verifySpec(spec, dir);
    assert.equal(ok.paths.get('graph.onnx'), join(mdir, 'graph.onnx'));
    await writeFile(join(mdir, 'graph.onnx'), Buffer.from('converted grapH'));
    await assert.rejects(verifySpec(spec, dir), (e: unknown) => e instanceof ModelError && e.file === 'graph.onnx' && /fake-converted: file graph\.onnx is sha256/.test(e.message));
    await writeFile(join(mdir, CONVERSION_MANIFEST), JSON.stringify({ ...manifest, inputs: { 'model.bin': 'f'.repeat(64) } }));
    await assert.rejects(verifySpec(spec, dir), /made from a different model\.bin/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
