/** SessionEventPublisher over Kafka: rt.session.deleted keyed by session id on realtime.events, audit events on analytics. */
import {
  ANALYTICS, REALTIME_EVENTS, SCHEMA_VERSION, encodeMessage, newMessageHeaders, prefixed, type AuditEvent, type RealtimeEvent, type StreamProducer,
} from '../../streams/index.js';
import type { PublishHeaders } from '../ports.js';
import type { SessionEventPublisher } from '../realtime-sessions.js';

export class KafkaSessionPublisher implements SessionEventPublisher {
  constructor(private readonly producer: StreamProducer, private readonly topicPrefix: string) {}

  async publishSessionDeleted(sessionId: string, at: number, h: PublishHeaders): Promise<void> {
    const msg: RealtimeEvent = { v: SCHEMA_VERSION, type: 'rt.session.deleted', sessionId, at };
    await this.producer.send(prefixed(this.topicPrefix, REALTIME_EVENTS.name), { key: sessionId, value: encodeMessage(msg), headers: newMessageHeaders(h) });
  }

  async publishAudit(event: AuditEvent): Promise<void> {
    await this.producer.send(prefixed(this.topicPrefix, ANALYTICS.name), {
      key: event.sessionId || event.eventId, value: encodeMessage(event), headers: newMessageHeaders({ requestId: event.requestId, tenantId: event.tenantId }),
    });
  }
}
