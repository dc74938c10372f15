/**
 * Reads this gateway's reply topic and hands each reply to the session bridge, which routes it to its socket.
 * Latency-tuned: a short fetch wait, no offsets committed (a reply is only worth anything to the socket that is open
 * now, so a restarted gateway starts at the end), and its own group per process.
 */
import type { Logger } from '../../core/logger.js';
import { StreamConsumer, checkRealtimeReply, decodeMessage, type DeadLetterWriter, type Kafka, type RealtimeReply } from '../../streams/index.js';

export function createReplyConsumer(o: {
  kafka: Kafka; topic: string; groupId: string; deadLetter: DeadLetterWriter; log: Logger; onReply: (r: RealtimeReply, arrivedAt: number) => void;
}): StreamConsumer<RealtimeReply> {
  return new StreamConsumer<RealtimeReply>({
    kafka: o.kafka, groupId: o.groupId, topics: [o.topic], deadLetter: o.deadLetter, log: o.log,
    decode: (value) => decodeMessage(checkRealtimeReply, value),
    commitOffsets: false, fromBeginning: false, maxWaitTimeMs: 20, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000,
    retry: { maxAttempts: 1 },
    handler: async (m) => {
      o.onReply(m.value, Date.now());
    },
  });
}
