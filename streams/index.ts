/** The streams area: the only place that knows Kafka. Message schemas, topics, codec and transport. */
export * from './messages.js';
export * from './topics.js';
export { encodeMessage, decodeMessage } from './codec.js';
export { MessageDecodeError } from './validate.js';
export { createKafka, ensureTopics, describeCluster, type Kafka, type TopicSpec, type Admin } from './kafka-client.js';
export { StreamProducer, type OutgoingMessage } from './producer.js';
export { StreamConsumer, type ConsumedMessage, type TopicPartitions, type MessageHandler } from './consumer.js';
export { DeadLetterWriter, decodeDeadLetter, type DeadLetterCounter, type DeadLetterRecord } from './dead-letter.js';
export { newMessageHeaders, type MessageHeaders } from './headers.js';
export { consumerGroupLag, type TopicLag } from './consumer-lag.js';
export { connectStreams, type ConnectStreamsOptions, type StreamRuntime } from './stream-runtime.js';
