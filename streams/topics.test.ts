import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SHARED_TOPICS, allTopics, engineTaskTopic, taskTopicFor } from './topics.js';

test('a task goes to its engine\'s queue tasks.<stage>.<engine_id>; channels of a stage share that engine\'s queue', () => {
  assert.equal(taskTopicFor('transcribe', 'stt-a'), 'tasks.transcribe.stt-a');
  assert.equal(taskTopicFor('transcribe_ch1', 'stt-a'), 'tasks.transcribe.stt-a');
  assert.notEqual(taskTopicFor('transcribe', 'stt-a'), taskTopicFor('transcribe', 'stt-b'), 'two engines of one stage never share a queue');
  assert.equal(engineTaskTopic('prepare', 'audio-prepare').name, 'tasks.prepare.audio-prepare');
});

test('allTopics: the shared topics plus one queue per engine, however often an engine is listed', () => {
  const engines = [
    { stage: 'prepare', engineId: 'audio-prepare' }, { stage: 'transcribe', engineId: 'stt-a' }, { stage: 'transcribe', engineId: 'stt-a' },
    { stage: 'transcribe', engineId: 'stt-b' },
  ];
  const names = allTopics(engines).map((t) => t.name);
  assert.deepEqual(names.slice(0, SHARED_TOPICS.length), SHARED_TOPICS.map((t) => t.name));
  assert.deepEqual(names.slice(SHARED_TOPICS.length), ['tasks.prepare.audio-prepare', 'tasks.transcribe.stt-a', 'tasks.transcribe.stt-b']);
  assert.equal(new Set(names).size, names.length, 'no topic twice');
  assert.ok(names.every((n) => /^[A-Za-z0-9._-]{1,249}$/.test(n)), 'every name is a legal Kafka topic name');
});
