import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../core/logger.js';
import { SCHEMA_VERSION, checkRealtimeInput, decodeMessage, type MessageSender, type RealtimeInput, type TopicBatch } from '../../streams/index.js';
import { RealtimePublisher } from './realtime-publisher.js';

/** Records each request's messages (decoded seq and traceparent) and holds the first until released. */
class GatedSender implements MessageSender {
  readonly requests: { seq: number; traceparent: string | undefined }[][] = [];
  release: () => void = () => undefined;
  readonly #gate = new Promise<void>((r) => (this.release = r));
  send(): Promise<never> {
    return Promise.reject(new Error('not used'));
  }
  async sendBatch(batches: readonly TopicBatch[]) {
    const first = this.requests.length === 0;
    this.requests.push(batches.flatMap((b) => b.messages.map((m) => {
      const input = m.value ? decodeMessage(checkRealtimeInput, m.value) : undefined;
      return { seq: input?.type === 'rt.control' || input?.type === 'rt.audio' ? input.seq : -1, traceparent: m.headers.traceparent };
    })));
    if (first) await this.#gate;
    return [];
  }
}

const audio = (seq: number): RealtimeInput => ({ v: SCHEMA_VERSION, type: 'rt.audio', sessionId: 's1', seq, offset: seq * 1600, pcm: Buffer.alloc(4), sentAt: 1 });
const end = (seq: number): RealtimeInput => ({ v: SCHEMA_VERSION, type: 'rt.control', sessionId: 's1', action: 'end', seq, sentAt: 1 });
const TP = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const headers = (traceparent?: string) => ({ messageId: 'm', enqueuedAt: 1, ...(traceparent !== undefined && { traceparent }) });

test('a traced control between untraced audio frames goes in a request of its own, and every message keeps its order', async () => {
  const sender = new GatedSender();
  const p = new RealtimePublisher({ sender, inputTopic: 'in', eventsTopic: 'ev', log: silentLogger });
  const sent = [p.input(audio(0), headers())];
  // Queued while the first request is in flight: two frames, the traced end, one more frame.
  sent.push(p.input(audio(1), headers()), p.input(audio(2), headers()), p.input(end(3), headers(TP)), p.input(audio(4), headers()));
  sender.release();
  await Promise.all(sent);
  assert.deepEqual(sender.requests.map((r) => r.map((m) => m.seq)), [[0], [1, 2], [3], [4]]);
  assert.deepEqual(sender.requests.flat().map((m) => m.traceparent), [undefined, undefined, undefined, TP, undefined]);
});
