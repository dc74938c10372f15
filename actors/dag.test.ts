import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDag, planStages, taskIdFor } from './dag.js';
import { createEngineSelection } from './engine-selection.js';

const engines = { engineFor: (stage: string, model: string | undefined) => `${stage}${model ? `:${model}` : ''}` };

/** The actor host's own selection: a job's model picks the transcribe engine, `auto` or none the default. */
const selection = createEngineSelection({ defaultTranscribeEngine: 'asr-default', transcribeEngines: { 'moonshine-tiny': 'asr-moonshine' } });

/** A task of a fresh DAG as the actor stores it: only stage-specific fields vary. */
const fresh = { required: true, status: 'pending', attempt: 0, retries: 0, attempts: [] } as const;

test('the DAG: prepare → transcribe → merge; vad beside transcribe when asked; per-channel nodes; stable task ids', () => {
  assert.deepEqual(planStages({}).map((n) => `${n.stage}<${n.dependsOn.join(',')}`), ['prepare<', 'transcribe<prepare', 'merge<prepare,transcribe']);
  assert.deepEqual(planStages({ vad: true }).map((n) => `${n.stage}<${n.dependsOn.join(',')}`), ['prepare<', 'vad<prepare', 'transcribe<prepare', 'merge<prepare,vad,transcribe']);
  assert.deepEqual(planStages({ perChannel: true }, 2).map((n) => n.stage), ['prepare', 'transcribe_ch0', 'transcribe_ch1', 'merge']);
  assert.deepEqual(planStages({ perChannel: true }, 1).map((n) => n.stage), ['prepare', 'transcribe', 'merge'], 'one channel: no fan-out');
  assert.equal(taskIdFor('job_X', 'transcribe_ch1'), 'task_X_transcribe_ch1');
  const tasks = buildDag('job_X', { model: 'moonshine-tiny', language: 'en', perChannel: true }, engines);
  assert.deepEqual(tasks.map((t) => t.taskId), ['task_X_prepare', 'task_X_transcribe', 'task_X_merge']);
  assert.equal(tasks[1]?.engineId, 'transcribe:moonshine-tiny');
  assert.equal(tasks[0]?.config.perChannel, true, 'prepare learns to split channels');
});

test('buildDag: the whole graph of a job, in order, with ids derived from the job (a replayed job.created builds these again)', () => {
  assert.deepEqual(buildDag('job_X', { model: 'moonshine-tiny', language: 'en', timestampsGranularity: 'segment' }, selection), [
    { ...fresh, taskId: 'task_X_prepare', stage: 'prepare', engineId: 'audio-prepare', dependsOn: [],
      config: { language: 'en', model: 'moonshine-tiny', timestampsGranularity: 'segment' } },
    { ...fresh, taskId: 'task_X_transcribe', stage: 'transcribe', engineId: 'asr-moonshine', dependsOn: ['prepare'],
      config: { language: 'en', model: 'moonshine-tiny', timestampsGranularity: 'segment' } },
    { ...fresh, taskId: 'task_X_merge', stage: 'merge', engineId: 'merge', dependsOn: ['prepare', 'transcribe'],
      config: { language: 'en', model: 'moonshine-tiny', timestampsGranularity: 'segment' } },
  ]);
});

test('buildDag: vad and two channels; channel nodes use the stage\'s engine and carry their channel; auto is left to the default', () => {
  const tasks = buildDag('job_Y', { vad: true, perChannel: true, model: 'auto', language: 'auto', task: 'translate' }, selection, 2);
  assert.deepEqual(tasks.map((t) => [t.taskId, t.engineId, t.dependsOn.join(',')]), [
    ['task_Y_prepare', 'audio-prepare', ''],
    ['task_Y_vad', 'silero-vad-v5', 'prepare'],
    ['task_Y_transcribe_ch0', 'asr-default', 'prepare'],
    ['task_Y_transcribe_ch1', 'asr-default', 'prepare'],
    ['task_Y_merge', 'merge', 'prepare,vad,transcribe_ch0,transcribe_ch1'],
  ]);
  assert.deepEqual(tasks.map((t) => t.config), [
    { perChannel: true },
    {},
    { channel: 0, task: 'translate' },
    { channel: 1, task: 'translate' },
    {},
  ], 'no model or language for auto; only transcribe nodes translate; only prepare splits');
  assert.ok(tasks.every((t) => t.status === 'pending' && t.attempt === 0 && t.attempts.length === 0));
});
