/**
 * msgpack encoding of wire messages. Decoding validates against the topic's schema and rejects unknown schema
 * versions with a MessageDecodeError, which consumers route to the dead-letter topic.
 */
import { Packr } from 'msgpackr';
import { SCHEMA_VERSION, type AnyMessage, type Check } from './messages.js';
import { MessageDecodeError } from './validate.js';

// Plain maps, no record extension: messages must stay readable by any msgpack decoder and by older builds.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

export function encodeMessage(message: AnyMessage): Buffer {
  return packr.pack(message);
}

export function decodeMessage<T>(check: Check<T>, value: Buffer | null): T {
  if (value === null || value.length === 0) throw new MessageDecodeError('empty message value');
  let raw: unknown;
  try {
    raw = packr.unpack(value);
  } catch (err) {
    throw new MessageDecodeError(`not msgpack: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const version = typeof raw === 'object' && raw !== null ? (raw as { v?: unknown }).v : undefined;
  if (version !== SCHEMA_VERSION) {
    throw new MessageDecodeError(`unsupported schema version ${JSON.stringify(version)} (this build reads ${SCHEMA_VERSION})`);
  }
  return check(raw, '$');
}
