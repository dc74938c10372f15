/** JobEventPublisher over Kafka: job events keyed by job id on jobs.events, audit events on analytics. */
import {
  ANALYTICS, JOB_EVENTS, encodeMessage, newMessageHeaders, prefixed, type AuditEvent, type JobCreated, type StreamProducer,
} from '../../streams/index.js';
import type { JobCancelRequested, JobDeleted, JobEventPublisher, PublishHeaders } from '../ports.js';

export class KafkaJobPublisher implements JobEventPublisher {
  constructor(private readonly producer: StreamProducer, private readonly topicPrefix: string) {}

  private async send(topic: string, key: string, value: Buffer, h: PublishHeaders): Promise<void> {
    await this.producer.send(prefixed(this.topicPrefix, topic), { key, value, headers: newMessageHeaders(h) });
  }

  publishJobCreated(msg: JobCreated, headers: PublishHeaders): Promise<void> {
    return this.send(JOB_EVENTS.name, msg.jobId, encodeMessage(msg), headers);
  }

  publishCancelRequested(msg: JobCancelRequested, headers: PublishHeaders): Promise<void> {
    return this.send(JOB_EVENTS.name, msg.jobId, encodeMessage(msg), headers);
  }

  publishJobDeleted(msg: JobDeleted, headers: PublishHeaders): Promise<void> {
    return this.send(JOB_EVENTS.name, msg.jobId, encodeMessage(msg), headers);
  }

  publishAudit(event: AuditEvent): Promise<void> {
    return this.send(ANALYTICS.name, event.jobId || event.eventId, encodeMessage(event), { requestId: event.requestId, tenantId: event.tenantId });
  }
}
