import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_CONTEXT, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import { SamplingDecision } from '@opentelemetry/sdk-trace-base';
import { liveAudioSampler } from './live-audio-sampler.js';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const sampledParent = trace.setSpanContext(ROOT_CONTEXT, { traceId: TRACE, spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED, isRemote: true });
const decide = (name: string, ctx = ROOT_CONTEXT) => liveAudioSampler().shouldSample(ctx, TRACE, name, SpanKind.PRODUCER, {}, []).decision;

test('an audio frame starting a trace of its own is dropped, under any topic prefix', () => {
  assert.equal(decide('send e2e-rtobs_1a2b3c.realtime.input'), SamplingDecision.NOT_RECORD);
  assert.equal(decide('process realtime.input'), SamplingDecision.NOT_RECORD);
});

test('everything else is recorded: other roots, and realtime.input spans in a sampled trace (a session control)', () => {
  assert.equal(decide('send e2e-x.realtime.events'), SamplingDecision.RECORD_AND_SAMPLED);
  assert.equal(decide('process e2e-x.realtime.replies.gw-1'), SamplingDecision.RECORD_AND_SAMPLED);
  assert.equal(decide('POST /v1/audio/transcriptions'), SamplingDecision.RECORD_AND_SAMPLED);
  assert.equal(decide('send e2e-x.realtime.input', sampledParent), SamplingDecision.RECORD_AND_SAMPLED);
  assert.equal(decide('send e2e-x.realtime.input.extra'), SamplingDecision.RECORD_AND_SAMPLED, 'only the audio topic itself');
});
