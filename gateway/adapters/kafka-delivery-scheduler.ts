/** DeliveryScheduler on `webhooks.deliveries`: a manual redelivery is one more scheduled record of its delivery. */
import { WEBHOOK_DELIVERIES, encodeJsonRecord, newMessageHeaders, prefixed, type StreamProducer, type WebhookDeliveryScheduled } from '../../streams/index.js';
import type { DeliveryScheduler } from '../webhooks/delivery-log.js';

export class KafkaDeliveryScheduler implements DeliveryScheduler {
  readonly #topic: string;

  constructor(private readonly producer: StreamProducer, topicPrefix: string) {
    this.#topic = prefixed(topicPrefix, WEBHOOK_DELIVERIES.name);
  }

  async schedule(record: WebhookDeliveryScheduled): Promise<void> {
    await this.producer.send(this.#topic, { key: record.deliveryId, value: encodeJsonRecord(record), headers: newMessageHeaders() });
  }
}
