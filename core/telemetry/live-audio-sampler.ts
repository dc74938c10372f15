/**
 * The sampler of every Dalston process: parent-based, always on, except that a Kafka span of a real-time audio frame
 * (`send`/`process <prefix>realtime.input`) starting a trace of its own is dropped. Audio frames carry no trace context
 * (a span per 100 ms frame would bury the session trace), so without this each frame was a two-span trace of its own:
 * hundreds per minute of streaming, noise in every trace search. A session's controls on the same topic carry the
 * session's context and stay in its trace (their parent decides).
 */
import type { Attributes, Context, Link, SpanKind } from '@opentelemetry/api';
import { AlwaysOnSampler, ParentBasedSampler, SamplingDecision, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace-base';

/** `send e2e-x.realtime.input`, `process realtime.input`: kafkajs' span names for the audio topic (any prefix). */
const AUDIO_FRAME_SPAN = /^(send|process) (\S*\.)?realtime\.input$/;

class LiveAudioRootSampler implements Sampler {
  readonly #on = new AlwaysOnSampler();

  shouldSample(_context: Context, _traceId: string, spanName: string, _spanKind: SpanKind, _attributes: Attributes, _links: Link[]): SamplingResult {
    if (AUDIO_FRAME_SPAN.test(spanName)) return { decision: SamplingDecision.NOT_RECORD };
    return this.#on.shouldSample();
  }

  toString(): string {
    return 'LiveAudioRootSampler';
  }
}

export function liveAudioSampler(): Sampler {
  return new ParentBasedSampler({ root: new LiveAudioRootSampler() });
}
