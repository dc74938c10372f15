import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDag, planStages } from './dag.js';

const engines = { engineFor: (stage: string, model: string | undefined) => `${stage}${model ? `:${model}` : ''}` };

test('the DAG: prepare → transcribe → merge; vad beside transcribe when asked; per-channel nodes; stable task ids', () => {
  assert.deepEqual(planStages({}).map((n) => `${n.stage}<${n.dependsOn.join(',')}`), ['prepare<', 'transcribe<prepare', 'merge<prepare,transcribe']);
  assert.deepEqual(planStages({ vad: true }).map((n) => `${n.stage}<${n.dependsOn.join(',')}`), ['prepare<', 'vad<prepare', 'transcribe<prepare', 'merge<prepare,vad,transcribe']);
  assert.deepEqual(planStages({ perChannel: true }, 2).map((n) => n.stage), ['prepare', 'transcribe_ch0', 'transcribe_ch1', 'merge']);
  const tasks = buildDag('job_X', { model: 'moonshine-tiny', language: 'en', perChannel: true }, engines);
  assert.deepEqual(tasks.map((t) => t.taskId), ['task_X_prepare', 'task_X_transcribe', 'task_X_merge']);
  assert.equal(tasks[1]?.engineId, 'transcribe:moonshine-tiny');
  assert.equal(tasks[0]?.config.perChannel, true, 'prepare learns to split channels');
  assert.deepEqual(buildDag('job_X', { model: 'moonshine-tiny' }, engines), buildDag('job_X', { model: 'moonshine-tiny' }, engines), 'a replayed job.created builds the same graph');
});
