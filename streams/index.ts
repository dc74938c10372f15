/** The streams area: the only place that knows Kafka. Message schemas, topics, codec and transport. */
export * from './messages.js';
export * from './topics.js';
export * from './realtime-messages.js';
export { encodeMessage, decodeMessage } from './codec.js';
export { MessageDecodeError } from './validate.js';
export { createKafka, ensureTopics, describeCluster, fetchTopicOffsets, waitForGroupCoordinator, type Kafka, type TopicSpec, type Admin } from './kafka-client.js';
export { StreamProducer, type MessageSender, type OutgoingMessage, type SendResult, type TopicBatch } from './producer.js';
export { StreamConsumer, type ConsumedMessage, type DeferredDurability, type TopicPartitions, type MessageHandler } from './consumer.js';
export { DeadLetterWriter, decodeDeadLetter, type DeadLetterCounter, type DeadLetterRecord } from './dead-letter.js';
export { newMessageHeaders, type MessageHeaders } from './headers.js';
export { consumerGroupLag, groupsWithMembers, type TopicLag } from './consumer-lag.js';
export { REQUEST_HEADERS, SIGNATURE_WINDOW_MS, requestHeaders, requestSigningSecret, signRequest, signatureProblem } from './request-signature.js';
export { connectStreams, type ConnectStreamsOptions, type StreamRuntime } from './stream-runtime.js';
export { SCOPES, checkKeyStoreRecord, decodeKeyStoreRecord, encodeKeyStoreRecord, keyStoreRecordKey, type ApiKeyRecord, type ApiKeyUsed, type KeyStoreRecord, type Scope } from './api-key-records.js';
export { ADMISSION_KINDS, checkUsageRecord, decodeUsageRecord, encodeUsageRecord, type AdmissionKind, type UsageRecord } from './tenant-usage-records.js';
export { ReadPosition } from './read-position.js';
export {
  WEBHOOK_EVENTS, checkWebhookDeliveryRecord, checkWebhookEndpointRecord, decodeWebhookDeliveryRecord, decodeWebhookEndpointRecord, encodeJsonRecord,
  type SealedWebhookSecret, type WebhookDeliveryFinished, type WebhookDeliveryRecord, type WebhookDeliveryScheduled, type WebhookEndpointRecord, type WebhookEventType,
} from './webhook-records.js';
export { CompactedTopicTail, tailConnection, type CompactedTopicTailOptions, type TailConnection } from './compacted-topic-tail.js';
export { startNewGroupAtEnd } from './group-start.js';
