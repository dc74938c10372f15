/**
 * Client text messages of the JSON dialects: parsed into a plain object or a reason why not, and base64 audio
 * decoded strictly (Node's decoder silently skips bad characters, which would turn a corrupt chunk into noise).
 */

export type JsonObject = Readonly<Record<string, unknown>>;

export type ParsedJson = { readonly ok: true; readonly value: JsonObject } | { readonly ok: false; readonly message: string };

export function parseJsonObject(data: Buffer): ParsedJson {
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch {
    return { ok: false, message: 'message is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, message: 'message must be a JSON object' };
  return { ok: true, value: value as JsonObject };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The bytes, or undefined when `text` is not canonical base64. */
export function decodeBase64(text: string): Buffer | undefined {
  return BASE64.test(text) ? Buffer.from(text, 'base64') : undefined;
}

/** A field as an object (not null or an array), or undefined. */
export function objectField(o: JsonObject, name: string): JsonObject | undefined {
  const v = o[name];
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as JsonObject) : undefined;
}
