/**
 * The msgpack codec of wire messages: what goes in comes out (binary audio included), a message written by any
 * msgpack encoder decodes, and everything that is not a current-version message of the topic's schema is refused
 * with a MessageDecodeError (not retryable, so the consumer dead-letters it) that says what was wrong.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Packr } from 'msgpackr';
import { decodeMessage, encodeMessage } from './codec.js';
import {
  SCHEMA_VERSION, checkAnalyticsMessage, checkControlMessage, checkJobEvent, checkJobResult, checkStateMessage, checkTaskMessage,
  type AnyMessage, type Check,
} from './messages.js';
import { checkRealtimeInput } from './realtime-messages.js';
import { MessageDecodeError } from './validate.js';

const NOW = 1_700_000_000_123;

/** One message per topic schema, with optional fields set and unset, numbers beyond 32 bits, and raw bytes. */
const ROUND_TRIPS: readonly [string, Check<unknown>, AnyMessage][] = [
  ['jobs.events job.created', checkJobEvent, {
    v: SCHEMA_VERSION, type: 'job.created', jobId: 'job_1', tenantId: 't', keyId: 'k', createdAt: NOW,
    audio: { key: 'jobs/job_1/audio/original.wav', filename: 'a b.wav', bytes: 5_000_000_000, contentType: 'audio/wav' },
    params: { language: 'auto', vad: true, timestampsGranularity: 'word', api: 'openai' },
  }],
  ['jobs.events task.failed', checkJobEvent, {
    v: SCHEMA_VERSION, type: 'task.failed', jobId: 'job_1', taskId: 'job_1_transcribe', attempt: 2, engineId: 'e', instanceId: 'i', at: NOW,
    error: { name: 'TimeoutError', code: 'DALSTON_ERR_TIMEOUT', message: 'slow — ünïcödé', retryable: true }, processingMs: 0,
  }],
  ['tasks.<stage>.<engine_id> task.dispatch', checkTaskMessage, {
    v: SCHEMA_VERSION, type: 'task.dispatch', jobId: 'job_1', taskId: 'job_1_merge', stage: 'merge', engineId: 'merge', attempt: 1,
    enqueuedAt: NOW, deadlineAt: NOW + 60_000, inputs: { audio: 'jobs/job_1/a.wav', transcribe: 'jobs/job_1/t.json' }, config: { channel: 0 },
    audioDurationSeconds: 1.25,
  }],
  ['tasks.control task.cancel', checkControlMessage, { v: SCHEMA_VERSION, type: 'task.cancel', jobId: 'job_1', taskId: 'x', attempt: 3, at: NOW }],
  ['analytics task_fact', checkAnalyticsMessage, {
    v: SCHEMA_VERSION, type: 'analytics.task_fact', time: NOW, jobId: 'j', taskId: 't', tenantId: 'te', stage: 'prepare', engineId: 'e',
    model: '', language: 'en', status: 'failure', audioDurationSeconds: 0.1, processingMs: 1, queueWaitMs: 2, modelLoadMs: 3, retries: 1,
    attempt: 2, traceId: '', requestId: 'r',
  }],
  ['jobs.results job.outcome', checkJobResult, {
    v: SCHEMA_VERSION, type: 'job.outcome', jobId: 'j', tenantId: 't', requestId: 'r', status: 'completed', createdAt: NOW, completedAt: NOW + 1,
    transcriptKey: 'jobs/j/transcript.json',
  }],
  ['jobs.state partition.claim', checkStateMessage, { v: SCHEMA_VERSION, type: 'partition.claim', partition: 5, epoch: 12, owner: 'host-a', at: NOW }],
  ['realtime.input rt.audio', checkRealtimeInput, {
    v: SCHEMA_VERSION, type: 'rt.audio', sessionId: 's', seq: 0, offset: 0, pcm: Buffer.from([0, 1, 0x7f, 0x80, 0xff]), sentAt: NOW,
  }],
];

for (const [name, check, message] of ROUND_TRIPS) {
  void test(`round trip: ${name} decodes to exactly what was encoded`, () => {
    const wire = encodeMessage(message);
    assert.ok(Buffer.isBuffer(wire));
    assert.deepEqual(decodeMessage(check, wire), message);
  });
}

void test('audio rides as msgpack bin (not base64 text) and comes back as a Buffer', () => {
  const pcm = Buffer.alloc(3200, 0xab);
  const wire = encodeMessage({ v: SCHEMA_VERSION, type: 'rt.audio', sessionId: 's', seq: 1, offset: 1600, pcm, sentAt: NOW });
  assert.ok(wire.length < pcm.length + 100, `${wire.length} bytes for ${pcm.length} bytes of audio`);
  const back = decodeMessage(checkRealtimeInput, wire);
  assert.equal(back.type, 'rt.audio');
  assert.ok(back.type === 'rt.audio' && Buffer.isBuffer(back.pcm) && back.pcm.equals(pcm));
});

void test('the wire form is a plain msgpack map any decoder reads (no msgpackr record extension)', () => {
  const message: AnyMessage = { v: SCHEMA_VERSION, type: 'job.cancel_requested', jobId: 'job_1', at: NOW };
  // A decoder with msgpackr's defaults and no knowledge of our options.
  const generic = new Packr({ useRecords: false, mapsAsObjects: true });
  assert.deepEqual(generic.unpack(encodeMessage(message)), message);
});

void test('a golden message from another encoder (fixmap, uint64 time) still decodes, times as numbers not BigInts', () => {
  // {v:1, type:"job.cancel_requested", jobId:"job_1", at:1700000000123} as Python's msgpack writes it.
  const golden = Buffer.from('84a17601a474797065b46a6f622e63616e63656c5f726571756573746564a56a6f624964a56a6f625f31a26174cf0000018bcfe5687b', 'hex');
  const decoded = decodeMessage(checkJobEvent, golden);
  assert.deepEqual(decoded, { v: 1, type: 'job.cancel_requested', jobId: 'job_1', at: NOW });
  assert.equal(typeof (decoded as { at: unknown }).at, 'number');
});

/** Asserts a decode is refused with MessageDecodeError, not retryable, its message matching `why`. */
function refused(value: Buffer | null, why: RegExp, check: Check<unknown> = checkJobEvent): void {
  assert.throws(
    () => decodeMessage(check, value),
    (err: unknown) => {
      assert.ok(err instanceof MessageDecodeError, `a MessageDecodeError, got ${String(err)}`);
      assert.equal(err.code, 'DALSTON_ERR_MESSAGE_DECODE');
      assert.equal(err.retryable, false);
      assert.match(err.message, why);
      return true;
    },
  );
}

const pack = (value: unknown): Buffer => new Packr({ useRecords: false }).pack(value);
const cancel = { v: SCHEMA_VERSION, type: 'job.cancel_requested', jobId: 'job_1', at: NOW } as const;

void test('malformed bytes are refused: empty, null, truncated, trailing garbage, JSON text', () => {
  refused(null, /^empty message value$/);
  refused(Buffer.alloc(0), /^empty message value$/);
  const whole = encodeMessage(cancel);
  refused(whole.subarray(0, whole.length - 3), /^not msgpack: /);
  refused(Buffer.concat([whole, Buffer.from([0x01])]), /^not msgpack: .*end of buffer not reached/);
  refused(Buffer.from(JSON.stringify(cancel)), /^not msgpack: /);
});

void test('a value that is not a current-version message is refused with the version it carried', () => {
  refused(pack({ ...cancel, v: 2 }), /^unsupported schema version 2 \(this build reads 1\)$/);
  refused(pack({ ...cancel, v: 0 }), /^unsupported schema version 0 /);
  refused(pack({ ...cancel, v: '1' }), /^unsupported schema version "1" /);
  refused(pack({ type: cancel.type, jobId: 'job_1', at: NOW }), /^unsupported schema version undefined /);
  refused(pack('job.cancel_requested'), /^unsupported schema version undefined /);
  refused(pack([1, 'job.cancel_requested']), /^unsupported schema version undefined /);
  refused(pack(null), /^unsupported schema version undefined /);
});

void test('an unknown message type, or one of another topic, is refused naming the type', () => {
  refused(pack({ ...cancel, type: 'job.exploded' }), /^\$\.type: unknown message type "job\.exploded"$/);
  refused(pack({ ...cancel, type: undefined }), /^\$\.type: unknown message type undefined$/);
  // A task cancel is a valid message, but not on jobs.events.
  refused(encodeMessage({ v: SCHEMA_VERSION, type: 'task.cancel', jobId: 'j', taskId: 't', attempt: 1, at: NOW }), /unknown message type "task\.cancel"/);
  refused(encodeMessage(cancel), /unknown message type "job\.cancel_requested"/, checkControlMessage);
});

void test('a field missing or of the wrong type is refused with its path', () => {
  refused(pack({ v: 1, type: 'job.cancel_requested', at: NOW }), /^\$\.jobId: expected string, got undefined$/);
  refused(pack({ ...cancel, at: 'yesterday' }), /^\$\.at: expected integer, got string$/);
  refused(pack({ ...cancel, at: 1.5 }), /^\$\.at: expected integer, got number$/);
  refused(pack({
    v: 1, type: 'job.created', jobId: 'j', tenantId: 't', keyId: 'k', createdAt: NOW,
    audio: { key: 'a', filename: 'f', bytes: '10', contentType: 'audio/wav' }, params: {},
  }), /^\$\.audio\.bytes: expected integer, got string$/);
});
