/**
 * The runtime schema checkers of every wire message, table-driven: for each message kind (and each nested object
 * with fields of its own) a valid sample is accepted unchanged, every required field missing or of the wrong type is
 * refused with MessageDecodeError naming its path, every optional field may be left out, closed sets refuse values
 * outside them, and unknown extra fields are dropped (a newer producer stays readable).
 *
 * The sample tables are typed per union ({ [type]: message }), so a message kind added to a schema without a sample
 * here fails the type-check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SCHEMA_VERSION, checkAnalyticsMessage, checkControlMessage, checkJobEvent, checkJobProgress, checkJobRequest, checkJobResult,
  checkStateMessage, checkTaskMessage,
  type AnalyticsMessage, type Check, type ControlMessage, type JobEvent, type JobRequest, type JobResult, type JobState, type StateMessage,
  type TaskMessage, type TranscriptProgress,
} from './messages.js';
import {
  checkRealtimeEvent, checkRealtimeInput, checkRealtimeReply, checkSessionStateMessage,
  type RealtimeCheckpoint, type RealtimeEvent, type RealtimeFinal, type RealtimeInput, type RealtimeReply, type RealtimeSessionConfig,
  type RealtimeSessionState,
} from './realtime-messages.js';
import { MessageDecodeError } from './validate.js';

const T = 1_700_000_000_000;
const v = SCHEMA_VERSION;
const failure = { name: 'TimeoutError', code: 'DALSTON_ERR_TIMEOUT', message: 'too slow', retryable: true };

/** Samples of one union, one per message type: the mapped type makes a missing kind a compile error. */
type SamplesOf<M extends { readonly type: string }> = { readonly [K in M['type']]: Extract<M, { readonly type: K }> };

const jobEvents: SamplesOf<JobEvent> = {
  'job.created': {
    v, type: 'job.created', jobId: 'job_1', tenantId: 't1', keyId: 'key1', createdAt: T,
    audio: { key: 'jobs/job_1/audio/original.wav', filename: 'a.wav', bytes: 1234, contentType: 'audio/wav' },
    params: {
      language: 'en', model: 'auto', timestampsGranularity: 'word', vad: true, perChannel: false, task: 'transcribe', api: 'native', sessionId: 'sess_1',
    },
  },
  'job.cancel_requested': { v, type: 'job.cancel_requested', jobId: 'job_1', at: T },
  'task.started': { v, type: 'task.started', jobId: 'job_1', taskId: 'job_1_prepare', attempt: 1, engineId: 'e', instanceId: 'i', at: T, queueWaitMs: 3 },
  'task.heartbeat': { v, type: 'task.heartbeat', jobId: 'job_1', taskId: 'job_1_prepare', attempt: 1, instanceId: 'i', at: T },
  'task.completed': {
    v, type: 'task.completed', jobId: 'job_1', taskId: 'job_1_prepare', attempt: 1, engineId: 'e', instanceId: 'i', at: T, outputKey: 'o',
    metrics: { processingMs: 5, queueWaitMs: 1, modelLoadMs: 0, audioDurationSeconds: 2.5, language: 'en', model: 'm' },
  },
  'task.failed': {
    v, type: 'task.failed', jobId: 'job_1', taskId: 'job_1_prepare', attempt: 2, engineId: 'e', instanceId: 'i', at: T, error: failure, processingMs: 9,
  },
  'task.released': { v, type: 'task.released', jobId: 'job_1', taskId: 'job_1_prepare', attempt: 1, engineId: 'e', instanceId: 'i', at: T, reason: 'shutdown' },
  'job.deleted': { v, type: 'job.deleted', jobId: 'job_1', at: T },
};

const taskMessages: SamplesOf<TaskMessage> = {
  'task.dispatch': {
    v, type: 'task.dispatch', jobId: 'job_1', taskId: 'job_1_transcribe', stage: 'transcribe', engineId: 'e', attempt: 1, enqueuedAt: T,
    deadlineAt: T + 60_000, inputs: { audio: 'jobs/job_1/audio/original.wav', prepare: 'jobs/job_1/tasks/p/output.json' },
    config: { language: 'en', model: 'm', channel: 1, timestampsGranularity: 'word', task: 'translate', perChannel: true }, audioDurationSeconds: 2.5,
  },
};

const controlMessages: SamplesOf<ControlMessage> = {
  'task.cancel': { v, type: 'task.cancel', jobId: 'job_1', taskId: 'job_1_transcribe', attempt: 2, at: T },
};

const analyticsMessages: SamplesOf<AnalyticsMessage> = {
  'analytics.task_fact': {
    v, type: 'analytics.task_fact', time: T, jobId: 'job_1', taskId: 'job_1_prepare', tenantId: 't1', stage: 'prepare', engineId: 'e', model: 'm',
    language: 'en', status: 'success', audioDurationSeconds: 2.5, processingMs: 5, queueWaitMs: 1, modelLoadMs: 0, retries: 0, attempt: 1,
    traceId: 'ab', requestId: 'req',
  },
  'analytics.audit_event': {
    v, type: 'analytics.audit_event', time: T, eventId: 'job_1:job.created', eventType: 'job.created', tenantId: 't1', actorKeyId: 'key1',
    jobId: 'job_1', sessionId: '', audioDurationSeconds: 0, requestId: 'req', traceId: '', details: '{}',
  },
};

const jobRequests: SamplesOf<JobRequest> = {
  'job.request': {
    v, type: 'job.request', requestId: 'ext-1',
    audio: { base64: 'AAAA', url: 'https://example.invalid/a.wav', key: 'incoming/a.wav', filename: 'a.wav' },
    params: { language: 'en', model: 'auto', timestampsGranularity: 'segment', vad: false },
  },
};

const jobResults: SamplesOf<JobResult> = {
  'job.outcome': {
    v, type: 'job.outcome', jobId: 'job_1', tenantId: 't1', requestId: 'req', status: 'failed', createdAt: T, completedAt: T + 5,
    audioDurationSeconds: 2.5, language: 'en', transcriptKey: 'jobs/job_1/transcript.json', error: failure,
  },
};

const jobProgress: SamplesOf<TranscriptProgress> = {
  'transcript.progress': { v, type: 'transcript.progress', jobId: 'job_1', taskId: 'job_1_transcribe', stage: 'transcribe', seq: 0, start: 0, end: 1.5, text: 'hello' },
};

const jobState: JobState = {
  jobId: 'job_1', tenantId: 't1', keyId: 'key1', requestId: 'req', traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`, status: 'running',
  createdAt: T, startedAt: T + 1, completedAt: T + 9, cancelRequestedAt: T + 8, params: { language: 'en' },
  audio: { key: 'jobs/job_1/audio/original.wav', filename: 'a.wav', bytes: 1234, contentType: 'audio/wav' },
  audioDurationSeconds: 2.5, language: 'en', transcriptKey: 'jobs/job_1/transcript.json', error: failure,
  tasks: [{
    taskId: 'job_1_prepare', stage: 'prepare', engineId: 'e', dependsOn: [], required: true, status: 'completed', attempt: 1, retries: 0,
    config: {}, readyAt: T, enqueuedAt: T, startedAt: T + 1, completedAt: T + 2, lastHeartbeatAt: T + 1, deadlineAt: T + 60_000, retryAt: T + 3,
    instanceId: 'i', queueWaitMs: 1, processingMs: 1, modelLoadMs: 0, outputKey: 'o', error: failure,
    attempts: [{ attempt: 1, engineId: 'e', instanceId: 'i', startedAt: T + 1, endedAt: T + 2, outcome: 'completed', error: failure }],
  }],
  revision: 4, epoch: 2,
  outbox: [
    { type: 'dispatch', topic: 'tasks.transcribe.stt-batch-transcribe-onnx-moonshine-tiny', task: taskMessages['task.dispatch'] },
    { type: 'cancel', cancel: controlMessages['task.cancel'] },
    { type: 'analytics', message: analyticsMessages['analytics.task_fact'] },
    { type: 'outcome', outcome: jobResults['job.outcome'] },
  ],
  persistedAt: T + 10,
};

const stateMessages: SamplesOf<StateMessage> = {
  'job.snapshot': { v, type: 'job.snapshot', state: jobState },
  'partition.claim': { v, type: 'partition.claim', partition: 3, epoch: 7, owner: 'host-a', at: T },
};

const sessionConfig: RealtimeSessionConfig = {
  model: 'm', language: 'en', commitStrategy: 'vad', partials: true, vadThreshold: 0.5, minSpeechMs: 250, minSilenceMs: 500, speechPadMs: 30,
  maxUtteranceMs: 30_000, retention: true, enhanceOnEnd: false, enhanceModel: 'big', inputFormat: 'pcm_s16le/16000/1', dialect: 'native',
};
const finalUtterance: RealtimeFinal = {
  utterance: 0, text: 'hello world', start: 0.5, end: 1.5, reason: 'pause',
  words: [{ text: 'hello', start: 0.5, end: 0.9, confidence: 0.9 }, { text: 'world', start: 1, end: 1.5 }],
};
const checkpoint: RealtimeCheckpoint = { version: 1, audioOffsetSamples: 16_000, nextUtterance: 1, finalizedCount: 1 };
const latency = { firstPartialP50Ms: 10, firstPartialP95Ms: 20, finalP50Ms: 30, finalP95Ms: 40 };

const realtimeInput: SamplesOf<RealtimeInput> = {
  'rt.session.start': {
    v, type: 'rt.session.start', sessionId: 's1', tenantId: 't1', keyId: 'key1', requestId: 'req', gatewayId: 'g1', replyTopic: 'realtime.replies.g1',
    config: sessionConfig, startedAt: T, traceparent: '00-x',
  },
  'rt.audio': { v, type: 'rt.audio', sessionId: 's1', seq: 4, offset: 6400, pcm: Buffer.from([1, 2, 3, 4]), sentAt: T },
  'rt.control': { v, type: 'rt.control', sessionId: 's1', action: 'flush', seq: 5, sentAt: T },
  'rt.reply_to': { v, type: 'rt.reply_to', sessionId: 's1', gatewayId: 'g2', replyTopic: 'realtime.replies.g2', at: T },
};

const realtimeReplies: SamplesOf<RealtimeReply> = {
  'rt.vad': { v, type: 'rt.vad', sessionId: 's1', event: 'speech_end', utterance: 0, start: 0.5, end: 1.5, at: T },
  'rt.partial': { v, type: 'rt.partial', sessionId: 's1', utterance: 0, text: 'hel', start: 0.5, end: 0.8, at: T, receivedAt: T - 5 },
  'rt.final': { v, type: 'rt.final', sessionId: 's1', final: finalUtterance, at: T, receivedAt: T - 5, speechEndAt: T - 100 },
  'rt.progress': { v, type: 'rt.progress', sessionId: 's1', processedSeconds: 1.5, at: T },
  'rt.ended': { v, type: 'rt.ended', sessionId: 's1', audioSeconds: 3, finals: 2, at: T },
  'rt.error': { v, type: 'rt.error', sessionId: 's1', code: 'unknown_model', message: 'no such model', retryable: false, at: T },
};

const realtimeEvents: SamplesOf<RealtimeEvent> = {
  'rt.session.opened': {
    v, type: 'rt.session.opened', sessionId: 's1', tenantId: 't1', keyId: 'key1', requestId: 'req', gatewayId: 'g1', replyTopic: 'r',
    config: sessionConfig, startedAt: T, traceparent: '00-x',
  },
  'rt.utterance.final': {
    v, type: 'rt.utterance.final', sessionId: 's1', final: finalUtterance, checkpoint, partition: 2, resumeOffset: '17', engineInstance: 'eng-1', at: T,
  },
  'rt.session.ended': { v, type: 'rt.session.ended', sessionId: 's1', audioSeconds: 3, checkpoint, engineInstance: 'eng-1', at: T },
  'rt.session.closed': {
    v, type: 'rt.session.closed', sessionId: 's1', closeCode: 1000, reason: 'client closed', audioSeconds: 3, audioKey: 'sessions/s1/audio.wav', at: T, latency,
  },
  'rt.session.resumed': { v, type: 'rt.session.resumed', sessionId: 's1', gatewayId: 'g2', replyTopic: 'r2', at: T },
  'rt.session.deleted': { v, type: 'rt.session.deleted', sessionId: 's1', at: T },
  'rt.session.configured': { v, type: 'rt.session.configured', sessionId: 's1', config: sessionConfig, at: T },
};

const sessionState: RealtimeSessionState = {
  sessionId: 's1', tenantId: 't1', keyId: 'key1', requestId: 'req', traceparent: '00-x', status: 'completed', startedAt: T, endedAt: T + 9,
  updatedAt: T + 9, gatewayId: 'g1', replyTopic: 'r', config: sessionConfig, finals: [finalUtterance], checkpoint, partition: 2, resumeOffset: '17',
  audioSeconds: 3, engineEnded: true, gatewayClosed: true, closeCode: 1000, closeReason: 'done', audioKey: 'a', transcriptKey: 't',
  enhanceJobId: 'job_9', revision: 6, closingSince: T + 8, latency, epoch: 1,
  outbox: [
    { type: 'transcript', key: 'sessions/s1/transcript.json' },
    { type: 'analytics', message: analyticsMessages['analytics.audit_event'] },
    { type: 'job', event: jobEvents['job.created'] },
  ],
  persistedAt: T + 9,
};

const sessionStateMessages: SamplesOf<ReturnType<typeof checkSessionStateMessage>> = {
  'rt.session.snapshot': { v, type: 'rt.session.snapshot', state: sessionState },
  'partition.claim': { v, type: 'partition.claim', partition: 1, epoch: 2, owner: 'host-b', at: T },
};

type Path = readonly (string | number)[];

interface SchemaCase {
  readonly name: string;
  readonly check: Check<unknown>;
  readonly sample: object;
  /** Where the object whose fields are tried sits inside the sample. @default the message itself */
  readonly at?: Path;
  /** Fields that may be absent; every other field of the object is required. */
  readonly optional?: readonly string[];
  /** Fields holding a closed set of strings: a value outside it is refused. */
  readonly closed?: readonly string[];
}

/** One case per message kind of a union (top level only; nested objects get their own rows below). */
function kinds(topic: string, check: Check<unknown>, samples: Readonly<Record<string, object>>, extra: Readonly<Record<string, Partial<SchemaCase>>> = {}): SchemaCase[] {
  return Object.entries(samples).map(([type, sample]) => ({ name: `${topic} ${type}`, check, sample, ...extra[type] }));
}

const CASES: readonly SchemaCase[] = [
  ...kinds('jobs.events', checkJobEvent, jobEvents),
  { name: 'jobs.events job.created › audio', check: checkJobEvent, sample: jobEvents['job.created'], at: ['audio'] },
  {
    name: 'jobs.events job.created › params', check: checkJobEvent, sample: jobEvents['job.created'], at: ['params'],
    optional: ['language', 'model', 'timestampsGranularity', 'vad', 'perChannel', 'task', 'api', 'sessionId'], closed: ['timestampsGranularity', 'task', 'api'],
  },
  {
    name: 'jobs.events task.completed › metrics', check: checkJobEvent, sample: jobEvents['task.completed'], at: ['metrics'],
    optional: ['audioDurationSeconds', 'language', 'model'],
  },
  { name: 'jobs.events task.failed › error', check: checkJobEvent, sample: jobEvents['task.failed'], at: ['error'] },
  ...kinds('tasks.<stage>.<engine_id>', checkTaskMessage, taskMessages, { 'task.dispatch': { optional: ['audioDurationSeconds'] } }),
  {
    name: 'tasks.<stage>.<engine_id> task.dispatch › config', check: checkTaskMessage, sample: taskMessages['task.dispatch'], at: ['config'],
    optional: ['language', 'model', 'channel', 'timestampsGranularity', 'task', 'perChannel'], closed: ['task'],
  },
  ...kinds('tasks.control', checkControlMessage, controlMessages),
  ...kinds('analytics', checkAnalyticsMessage, analyticsMessages, {
    'analytics.task_fact': { closed: ['status'] }, 'analytics.audit_event': { closed: ['eventType'] },
  }),
  ...kinds('jobs.requests', checkJobRequest, jobRequests, { 'job.request': { optional: ['params'] } }),
  { name: 'jobs.requests job.request › audio', check: checkJobRequest, sample: jobRequests['job.request'], at: ['audio'], optional: ['base64', 'url', 'key', 'filename'] },
  {
    name: 'jobs.requests job.request › params', check: checkJobRequest, sample: jobRequests['job.request'], at: ['params'],
    optional: ['language', 'model', 'timestampsGranularity', 'vad'], closed: ['timestampsGranularity'],
  },
  ...kinds('jobs.results', checkJobResult, jobResults, {
    'job.outcome': { optional: ['audioDurationSeconds', 'language', 'transcriptKey', 'error'], closed: ['status'] },
  }),
  ...kinds('jobs.progress', checkJobProgress, jobProgress),
  ...kinds('jobs.state', checkStateMessage, stateMessages),
  {
    name: 'jobs.state job.snapshot › state', check: checkStateMessage, sample: stateMessages['job.snapshot'], at: ['state'],
    optional: ['traceparent', 'startedAt', 'completedAt', 'cancelRequestedAt', 'audioDurationSeconds', 'language', 'transcriptKey', 'error', 'epoch', 'outbox', 'persistedAt'],
    closed: ['status'],
  },
  {
    name: 'jobs.state job.snapshot › state.tasks[0]', check: checkStateMessage, sample: stateMessages['job.snapshot'], at: ['state', 'tasks', 0],
    optional: [
      'readyAt', 'enqueuedAt', 'startedAt', 'completedAt', 'lastHeartbeatAt', 'deadlineAt', 'retryAt', 'instanceId', 'queueWaitMs', 'processingMs',
      'modelLoadMs', 'outputKey', 'error',
    ],
    closed: ['status'],
  },
  {
    name: 'jobs.state job.snapshot › state.tasks[0].attempts[0]', check: checkStateMessage, sample: stateMessages['job.snapshot'],
    at: ['state', 'tasks', 0, 'attempts', 0], optional: ['instanceId', 'startedAt', 'error'], closed: ['outcome'],
  },
  ...[0, 1, 2, 3].map((i): SchemaCase => ({
    name: `jobs.state job.snapshot › state.outbox[${i}] (${jobState.outbox?.[i]?.type ?? '?'})`, check: checkStateMessage,
    sample: stateMessages['job.snapshot'], at: ['state', 'outbox', i],
  })),
  ...kinds('realtime.input', checkRealtimeInput, realtimeInput, { 'rt.session.start': { optional: ['traceparent'] }, 'rt.control': { closed: ['action'] } }),
  {
    name: 'realtime.input rt.session.start › config', check: checkRealtimeInput, sample: realtimeInput['rt.session.start'], at: ['config'],
    optional: ['language', 'vadThreshold', 'minSpeechMs', 'minSilenceMs', 'speechPadMs', 'maxUtteranceMs', 'enhanceModel'], closed: ['commitStrategy', 'dialect'],
  },
  ...kinds('realtime.replies', checkRealtimeReply, realtimeReplies, { 'rt.vad': { optional: ['end'], closed: ['event'] }, 'rt.final': { optional: ['speechEndAt'] } }),
  { name: 'realtime.replies rt.final › final', check: checkRealtimeReply, sample: realtimeReplies['rt.final'], at: ['final'], closed: ['reason'] },
  { name: 'realtime.replies rt.final › final.words[0]', check: checkRealtimeReply, sample: realtimeReplies['rt.final'], at: ['final', 'words', 0], optional: ['confidence'] },
  ...kinds('realtime.events', checkRealtimeEvent, realtimeEvents, {
    'rt.session.opened': { optional: ['traceparent'] }, 'rt.session.closed': { optional: ['audioKey', 'latency'] },
  }),
  { name: 'realtime.events rt.utterance.final › checkpoint', check: checkRealtimeEvent, sample: realtimeEvents['rt.utterance.final'], at: ['checkpoint'] },
  { name: 'realtime.events rt.session.closed › latency', check: checkRealtimeEvent, sample: realtimeEvents['rt.session.closed'], at: ['latency'] },
  ...kinds('sessions.state', checkSessionStateMessage, sessionStateMessages),
  {
    name: 'sessions.state rt.session.snapshot › state', check: checkSessionStateMessage, sample: sessionStateMessages['rt.session.snapshot'], at: ['state'],
    optional: [
      'traceparent', 'endedAt', 'partition', 'resumeOffset', 'closeCode', 'closeReason', 'audioKey', 'transcriptKey', 'enhanceJobId', 'closingSince',
      'latency', 'epoch', 'outbox', 'persistedAt',
    ],
    closed: ['status'],
  },
  ...[0, 1, 2].map((i): SchemaCase => ({
    name: `sessions.state rt.session.snapshot › state.outbox[${i}] (${sessionState.outbox?.[i]?.type ?? '?'})`, check: checkSessionStateMessage,
    sample: sessionStateMessages['rt.session.snapshot'], at: ['state', 'outbox', i],
  })),
];

/** A deep copy that keeps Buffers as Buffers (structuredClone would turn them into plain Uint8Arrays). */
function clone<V>(value: V): V {
  if (Buffer.isBuffer(value)) return Buffer.from(value) as V;
  if (Array.isArray(value)) return value.map((x: unknown) => clone(x)) as V;
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, x]) => [k, clone(x)])) as V;
  }
  return value;
}

function objectAt(root: object, at: Path): Record<string, unknown> {
  let node: unknown = root;
  for (const step of at) node = (node as Record<string | number, unknown>)[step];
  assert.ok(typeof node === 'object' && node !== null && !Array.isArray(node), `sample has an object at ${at.join('.')}`);
  return node as Record<string, unknown>;
}

/** The sample with one field of the object at `at` replaced (or deleted when `value` is DELETE). */
const DELETE = Symbol('delete');
function withField(sample: object, at: Path, field: string, value: unknown): object {
  const copy = clone(sample);
  const target = objectAt(copy, at);
  if (value === DELETE) delete target[field];
  else target[field] = value;
  return copy;
}

function pathOf(at: Path, field: string): string {
  return `$${at.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('')}.${field}`;
}

/** A value of another JSON/msgpack type than `value`. */
function wrongType(value: unknown): unknown {
  if (typeof value === 'string') return 42;
  if (typeof value === 'number') return 'forty-two';
  if (typeof value === 'boolean') return 'yes';
  if (Buffer.isBuffer(value)) return 'AAEC';
  if (Array.isArray(value)) return 'a list';
  return 'an object';
}

function assertRefused(check: Check<unknown>, value: unknown, path: string, what: string): void {
  assert.throws(
    () => check(value, '$'),
    (err: unknown) => {
      assert.ok(err instanceof MessageDecodeError, `${what}: MessageDecodeError expected, got ${String(err)}`);
      assert.ok(err.message.startsWith(`${path}: `), `${what}: the error names ${path}: "${err.message}"`);
      return true;
    },
    what,
  );
}

for (const c of CASES) {
  void test(`schema ${c.name}: valid accepted; each field missing or mistyped refused with its path`, () => {
    const at = c.at ?? [];
    assert.deepEqual(c.check(clone(c.sample), '$'), c.sample, 'the valid sample is accepted unchanged');

    const fields = Object.keys(objectAt(c.sample, at));
    const optional = new Set(c.optional ?? []);
    for (const name of optional) assert.ok(fields.includes(name), `the sample sets optional field ${name}, so leaving it out is tried`);
    for (const field of fields) {
      const path = pathOf(at, field);
      const original = objectAt(c.sample, at)[field];
      if (optional.has(field)) {
        const accepted = c.check(withField(c.sample, at, field, DELETE), '$') as object;
        assert.equal(field in objectAt(accepted, at), false, `optional ${path} may be left out`);
        // null is how some encoders write "absent".
        const fromNull = c.check(withField(c.sample, at, field, null), '$') as object;
        assert.equal(field in objectAt(fromNull, at), false, `optional ${path} may be null`);
      } else {
        assertRefused(c.check, withField(c.sample, at, field, DELETE), path, `required ${path} missing`);
        assertRefused(c.check, withField(c.sample, at, field, null), path, `required ${path} null`);
      }
      assertRefused(c.check, withField(c.sample, at, field, wrongType(original)), path, `${path} of the wrong type`);
    }
    for (const field of c.closed ?? []) {
      assertRefused(c.check, withField(c.sample, at, field, 'not-in-the-set'), pathOf(at, field), `${pathOf(at, field)} outside its closed set`);
    }

    const extended = c.check(withField(c.sample, at, 'addedByANewerProducer', 1), '$') as object;
    assert.equal('addedByANewerProducer' in objectAt(extended, at), false, 'unknown fields are dropped');
  });
}

void test('schema details the table does not reach: integers, finite numbers, record values, list items, the checkpoint version', () => {
  const started = jobEvents['task.started'];
  assertRefused(checkJobEvent, { ...started, attempt: 1.5 }, '$.attempt', 'a fractional attempt');
  assertRefused(checkJobEvent, { ...started, at: Number.NaN }, '$.at', 'NaN time');
  const progress = jobProgress['transcript.progress'];
  assertRefused(checkJobProgress, { ...progress, end: Number.POSITIVE_INFINITY }, '$.end', 'an infinite end');
  assert.equal(checkJobProgress({ ...progress, end: 2.75 }, '$').end, 2.75, 'fractions are fine where a number (not an integer) is asked');
  const dispatch = taskMessages['task.dispatch'];
  assertRefused(checkTaskMessage, { ...dispatch, inputs: { audio: 7 } }, '$.inputs.audio', 'a non-string input key');
  assertRefused(checkTaskMessage, { ...dispatch, inputs: ['a'] }, '$.inputs', 'inputs as a list');
  assert.deepEqual(checkTaskMessage({ ...dispatch, inputs: {} }, '$'), { ...dispatch, inputs: {} }, 'a task may have no inputs');
  const snapshot = stateMessages['job.snapshot'];
  assertRefused(checkStateMessage, { ...snapshot, state: { ...jobState, tasks: [{ ...jobState.tasks[0], dependsOn: ['a', 3] }] } }, '$.state.tasks[0].dependsOn[1]', 'a non-string dependency');
  assertRefused(checkStateMessage, { ...snapshot, state: { ...jobState, outbox: [{ type: 'launch' }] } }, '$.state.outbox[0].type', 'an unknown outbox entry');
  const final = realtimeEvents['rt.utterance.final'];
  assertRefused(checkRealtimeEvent, { ...final, checkpoint: { ...checkpoint, version: 2 } }, '$.checkpoint.version', 'a checkpoint of another version');
  const audio = realtimeInput['rt.audio'];
  const fromUint8 = checkRealtimeInput({ ...audio, pcm: new Uint8Array([9, 8, 7]) }, '$');
  assert.ok(fromUint8.type === 'rt.audio' && Buffer.isBuffer(fromUint8.pcm) && fromUint8.pcm.equals(Buffer.from([9, 8, 7])), 'a Uint8Array is read as bytes');
  assertRefused(checkRealtimeInput, { ...audio, pcm: [1, 2, 3] }, '$.pcm', 'audio as a list of numbers');
});
