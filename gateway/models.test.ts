import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../core/config.js';
import { CATALOGUE } from '../engines/models/catalogue.js';
import { HttpError } from './errors.js';
import { checkedAliases, type ModelListing } from './models.js';
import { startHarness } from './test-harness.js';
import { UnknownModelError, parseSubmitFields } from './transcriptions.js';

test('a job may name a catalogue model; an unknown model is a 400, never a silent fallback', () => {
  assert.equal(parseSubmitFields([['model', 'moonshine-tiny']]).params.model, 'moonshine-tiny');
  assert.equal(parseSubmitFields([['model', 'auto']]).params.model, 'auto');
  assert.throws(() => parseSubmitFields([['model', 'whisper-huge-v9']]), (e: unknown) => e instanceof HttpError && e.status === 400 && /GET \/v1\/models/.test(e.message));
});

test('GET /v1/models answers every catalogue recogniser with its engine and installed flag, behind the API key', async () => {
  const asr = CATALOGUE.filter((m) => m.task === 'asr');
  // Set-up installed the default models into the data directory before the suite.
  const h = await startHarness({ modelsHomeDir: process.env['DALSTON_HOME'] ?? join(REPO_ROOT, '.dalston') });
  const bareHome = await mkdtemp(join(tmpdir(), 'dalston-no-models-'));
  const bare = await startHarness({ modelsHomeDir: bareHome });
  try {
    const res = await h.request('/v1/models');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const { models } = (await res.json()) as { models: ModelListing[] };
    assert.deepEqual(models.map((m) => m.id), asr.map((m) => m.id), 'every recogniser of the catalogue, in its order, and nothing else');
    const byId = new Map(models.map((m) => [m.id, m]));
    assert.deepEqual(byId.get('pocketsphinx-en-us'), {
      id: 'pocketsphinx-en-us', engine_id: 'stt-batch-transcribe-pocketsphinx-en-us', backend: 'pocketsphinx', languages: ['en'],
      capabilities: asr.find((m) => m.id === 'pocketsphinx-en-us')?.capabilities, installed: true,
      description: asr.find((m) => m.id === 'pocketsphinx-en-us')?.description,
    });
    assert.equal(byId.get('moonshine-tiny')?.engine_id, 'stt-batch-transcribe-onnx-moonshine-tiny');
    assert.equal(byId.get('moonshine-tiny')?.installed, true);
    assert.equal(byId.get('whisper-tiny.en')?.installed, true);
    assert.ok(models.every((m) => m.languages.length > 0 && m.engine_id.startsWith('stt-batch-transcribe-')));

    // The flag is what this server has: in an empty data directory only the Debian-packaged recogniser is there.
    const none = (await (await bare.request('/v1/models')).json()) as { models: ModelListing[] };
    assert.deepEqual(none.models.filter((m) => m.installed).map((m) => m.id), ['pocketsphinx-en-us']);
    assert.equal(none.models.length, asr.length);

    const anon = await h.request('/v1/models', { auth: false });
    assert.equal(anon.status, 401);
    assert.equal(((await anon.json()) as { error: { code: string } }).error.code, 'unauthorized');
  } finally {
    await h.close();
    await bare.close();
    await rm(bareHome, { recursive: true, force: true });
  }
});

test('OpenAI names follow the alias table: auto leaves the model to the default, a target names it; targets are checked at start-up', () => {
  const aliases = new Map([['whisper-1', 'auto'], ['fast', 'moonshine-tiny']]);
  assert.deepEqual(parseSubmitFields([['model', 'whisper-1']], aliases).params, { api: 'openai' });
  const fast = parseSubmitFields([['model', 'fast']], aliases);
  assert.equal(fast.openAiMode, true);
  assert.deepEqual(fast.params, { api: 'openai', model: 'moonshine-tiny' });
  assert.throws(() => parseSubmitFields([['model', 'gpt-4o-transcribe']], aliases), (e: unknown) => e instanceof UnknownModelError && e.status === 400 && /whisper-1, fast/.test(e.message));
  assert.equal(checkedAliases(aliases), aliases);
  assert.throws(() => checkedAliases(new Map([['whisper-1', 'whisper-giant']])), /maps "whisper-1" to "whisper-giant", which is not a model id/);
  assert.throws(() => checkedAliases(new Map([['moonshine-tiny', 'auto']])), /already a model id/);
});
