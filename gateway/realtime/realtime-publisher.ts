/**
 * Publishes the live path's messages: realtime.input (audio, controls, session starts) and realtime.events
 * (opened/closed/resumed), keyed by session id. No batching delay: a message goes out at once when nothing is in
 * flight; while a send is in flight, what arrives meanwhile is queued and leaves in the next request as soon as the
 * broker acknowledges. One request at a time keeps each key's order (the idempotent producer allows one anyway),
 * and under load the batches grow by themselves instead of queueing one request per frame.
 */
import { ROOT_CONTEXT, context as otelContext, defaultTextMapGetter, propagation, type Context } from '@opentelemetry/api';
import type { Logger } from '../../core/logger.js';
import { encodeMessage, newMessageHeaders, type MessageHeaders, type MessageSender, type OutgoingMessage, type RealtimeEvent, type RealtimeInput } from '../../streams/index.js';

interface Queued {
  readonly topic: string;
  readonly message: OutgoingMessage;
  readonly done: (err: unknown) => void;
}

export interface RealtimePublisherOptions {
  readonly sender: MessageSender;
  /** Prefixed topic names. */
  readonly inputTopic: string;
  readonly eventsTopic: string;
  readonly log: Logger;
}

export class RealtimePublisher {
  #queue: Queued[] = [];
  #sending = false;
  #idle: (() => void)[] = [];

  constructor(private readonly o: RealtimePublisherOptions) {}

  /** Resolves when acknowledged; rejects when the send failed (the session then closes 1011). */
  input(msg: RealtimeInput, headers?: MessageHeaders): Promise<void> {
    return this.#enqueue(this.o.inputTopic, msg.sessionId, msg, headers);
  }

  event(msg: RealtimeEvent, headers?: MessageHeaders): Promise<void> {
    return this.#enqueue(this.o.eventsTopic, msg.sessionId, msg, headers);
  }

  /** Resolves once everything queued so far was sent (or failed). */
  flushed(): Promise<void> {
    if (!this.#sending && this.#queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  #enqueue(topic: string, key: string, msg: RealtimeInput | RealtimeEvent, headers?: MessageHeaders): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({
        topic,
        message: { key, value: encodeMessage(msg), headers: headers ?? newMessageHeaders() },
        done: (err) => (err === undefined ? resolve() : reject(err instanceof Error ? err : new Error('send failed'))),
      });
      if (!this.#sending) void this.#pump();
    });
  }

  async #pump(): Promise<void> {
    this.#sending = true;
    while (this.#queue.length > 0) {
      const queued = this.#queue;
      this.#queue = [];
      for (const batch of runsByTrace(queued)) {
        const byTopic = new Map<string, OutgoingMessage[]>();
        for (const q of batch) {
          let list = byTopic.get(q.topic);
          if (!list) byTopic.set(q.topic, (list = []));
          list.push(q.message);
        }
        let error: unknown;
        try {
          // A Kafka instrumentation parents its `send` span on the active context (and rewrites traceparent): a run
          // of one session's traced messages is sent in that session's context so its consumers join the session trace.
          const traceparent = batch[0]?.message.headers.traceparent;
          const ctx: Context = traceparent === undefined ? otelContext.active() : propagation.extract(ROOT_CONTEXT, { traceparent }, defaultTextMapGetter);
          await otelContext.with(ctx, () => this.o.sender.sendBatch([...byTopic].map(([topic, messages]) => ({ topic, messages }))));
        } catch (err) {
          error = err ?? new Error('send failed');
          this.o.log.error({ err: err instanceof Error ? err.message : String(err), messages: batch.length }, 'real-time publish failed');
        }
        for (const q of batch) q.done(error);
      }
    }
    this.#sending = false;
    for (const r of this.#idle.splice(0)) r();
  }
}

/**
 * Consecutive runs of messages with the same traceparent (usually one run: audio frames carry none). Sent one run
 * after another, so each key's order holds; a session's rare events and controls cost an extra request at most.
 */
function runsByTrace(queued: readonly Queued[]): Queued[][] {
  const runs: Queued[][] = [];
  let last: string | undefined;
  for (const q of queued) {
    const tp = q.message.headers.traceparent;
    const run = runs[runs.length - 1];
    if (run && tp === last) run.push(q);
    else runs.push([q]);
    last = tp;
  }
  return runs;
}
