/** The streams area: the only place that knows Kafka. Message schemas, topics, codec and transport. */
export * from './messages.js';
export * from './topics.js';
export { encodeMessage, decodeMessage } from './codec.js';
export { MessageDecodeError } from './validate.js';
