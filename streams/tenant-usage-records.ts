/**
 * Records of `tenants.usage` (UTF-8 JSON): what each gateway has counted against a tenant's limits, so limits hold
 * across every gateway process. A record carries the gateway's running total for one tenant and one window, so a
 * lost or repeated record costs nothing (the latest total per gateway wins).
 */
import { int, literal, object, oneOf, str, union } from './validate.js';
import { SCHEMA_VERSION } from './messages.js';

const v = literal(SCHEMA_VERSION);

const requestCount = object({
  v, type: literal('usage.requests'), gatewayId: str, tenantId: str,
  /** The UTC minute (ms since the epoch / 60,000). */
  window: int,
  /** Requests this gateway counted for the tenant in the window so far. */
  count: int,
});

/** What a concurrency limit counts. */
export const ADMISSION_KINDS = ['job', 'session'] as const;
export type AdmissionKind = (typeof ADMISSION_KINDS)[number];

/**
 * A claim on one of a tenant's concurrent slots, appended before the job or session starts; the topic's order
 * decides between claims made at the same moment on different gateways.
 */
const admission = object({ v, type: literal('usage.admission'), gatewayId: str, tenantId: str, kind: oneOf(ADMISSION_KINDS), id: str, at: int });
/** A claim given back because its admission was refused. */
const withdrawn = object({ v, type: literal('usage.withdrawn'), tenantId: str, kind: oneOf(ADMISSION_KINDS), id: str });

export const checkUsageRecord = union({ 'usage.requests': requestCount, 'usage.admission': admission, 'usage.withdrawn': withdrawn });
export type UsageRecord = ReturnType<typeof checkUsageRecord>;

export function encodeUsageRecord(r: UsageRecord): Buffer {
  return Buffer.from(JSON.stringify(r), 'utf8');
}

export function decodeUsageRecord(value: Buffer): UsageRecord {
  return checkUsageRecord(JSON.parse(value.toString('utf8')) as unknown, 'tenants.usage');
}
