/**
 * A tiny runtime validator for wire messages: each schema is a TypeScript type plus a checker built from these
 * combinators, so producer and consumer share one definition and a bad message is rejected with the field path.
 */
import { InvalidInputError } from '../core/errors.js';

export class MessageDecodeError extends InvalidInputError {
  override readonly code = 'DALSTON_ERR_MESSAGE_DECODE';
}

export type Check<T> = (value: unknown, path: string) => T;

function fail(path: string, expected: string, value: unknown): never {
  const got = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  throw new MessageDecodeError(`${path}: expected ${expected}, got ${got}`);
}

export const str: Check<string> = (v, p) => (typeof v === 'string' ? v : fail(p, 'string', v));
export const num: Check<number> = (v, p) => (typeof v === 'number' && Number.isFinite(v) ? v : fail(p, 'finite number', v));
export const int: Check<number> = (v, p) => (typeof v === 'number' && Number.isInteger(v) ? v : fail(p, 'integer', v));
export const bool: Check<boolean> = (v, p) => (typeof v === 'boolean' ? v : fail(p, 'boolean', v));
/** Raw bytes (msgpack bin): audio rides as binary, not base64. Answers a Buffer view of the same memory. */
export const bytes: Check<Buffer> = (v, p) => {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return fail(p, 'bytes', v);
};

export function literal<const T extends string | number>(expected: T): Check<T> {
  return (v, p) => (v === expected ? expected : fail(p, JSON.stringify(expected), v));
}

export function oneOf<const T extends string>(values: readonly T[]): Check<T> {
  return (v, p) => (typeof v === 'string' && (values as readonly string[]).includes(v) ? (v as T) : fail(p, values.join('|'), v));
}

export function optional<T>(check: Check<T>): Check<T | undefined> {
  return (v, p) => (v === undefined || v === null ? undefined : check(v, p));
}

export function arrayOf<T>(check: Check<T>): Check<T[]> {
  return (v, p) => (Array.isArray(v) ? v.map((item, i) => check(item, `${p}[${i}]`)) : fail(p, 'array', v));
}

export function recordOf<T>(check: Check<T>): Check<Record<string, T>> {
  return (v, p) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(p, 'object', v);
    const out: Record<string, T> = {};
    for (const [k, item] of Object.entries(v as Record<string, unknown>)) out[k] = check(item, `${p}.${k}`);
    return out;
  };
}

type Shape = Record<string, Check<unknown>>;
type FromShape<S extends Shape> = { [K in keyof S as undefined extends ReturnType<S[K]> ? never : K]: ReturnType<S[K]> } & {
  [K in keyof S as undefined extends ReturnType<S[K]> ? K : never]?: ReturnType<S[K]>;
};

/** An object with exactly these fields checked; unknown extra fields are dropped so newer producers stay readable. */
export function object<S extends Shape>(shape: S): Check<FromShape<S>> {
  return (v, p) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(p, 'object', v);
    const src = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, check] of Object.entries(shape)) {
      const value = check(src[k], `${p}.${k}`);
      if (value !== undefined) out[k] = value;
    }
    return out as FromShape<S>;
  };
}

/** A discriminated union on `type`: picks the member schema by tag. */
export function union<const M extends Record<string, Check<unknown>>>(members: M): Check<ReturnType<M[keyof M]>> {
  return (v, p) => {
    if (typeof v !== 'object' || v === null) fail(p, 'object', v);
    const tag = (v as { type?: unknown }).type;
    const check = typeof tag === 'string' ? members[tag] : undefined;
    if (!check) throw new MessageDecodeError(`${p}.type: unknown message type ${JSON.stringify(tag)}`);
    return check(v, p) as ReturnType<M[keyof M]>;
  };
}
