/**
 * What is announced, to whom, and in what words: the webhook event of a job's outcome or a session's end, the
 * targets it goes to (the tenant's subscribed endpoints and the job's own URL), the delivery id of each (stable:
 * the same event to the same target always has the same `webhook-id`, so an outcome read twice is de-duplicated by
 * the receiver), and the JSON body. Pure.
 */
import { createHash } from 'node:crypto';
import type { AuditEvent, JobOutcome, JobWebhook, WebhookEndpointRecord, WebhookEventType } from '../streams/index.js';

export interface WebhookEvent {
  readonly eventType: WebhookEventType;
  readonly tenantId: string;
  /** The job or session it is about. */
  readonly subjectId: string;
  /** When it happened (epoch ms). */
  readonly at: number;
  readonly data: Readonly<Record<string, unknown>>;
  /** Absent: the tenant's subscribed endpoints, nobody else. */
  readonly webhook?: JobWebhook;
}

export interface WebhookTarget {
  readonly endpointId?: string;
  readonly url?: string;
}

const JOB_EVENT = { completed: 'transcription.completed', failed: 'transcription.failed', cancelled: 'transcription.cancelled' } as const;

function metadataOf(webhook: JobWebhook | undefined): unknown {
  if (webhook?.metadata === undefined) return undefined;
  try {
    return JSON.parse(Buffer.from(webhook.metadata, 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** The event of a job's outcome (no transcript text: receivers fetch it with their key). */
export function eventOfOutcome(o: JobOutcome): WebhookEvent {
  const metadata = metadataOf(o.webhook);
  return {
    eventType: JOB_EVENT[o.status], tenantId: o.tenantId, subjectId: o.jobId, at: o.completedAt,
    ...(o.webhook !== undefined ? { webhook: o.webhook } : {}),
    data: {
      transcription_id: o.jobId, status: o.status, request_id: o.requestId,
      created_at: new Date(o.createdAt).toISOString(), completed_at: new Date(o.completedAt).toISOString(),
      audio_duration_seconds: o.audioDurationSeconds ?? null, language: o.language ?? null,
      ...(o.error ? { error: { code: o.error.code, message: o.error.message } } : {}),
      ...(metadata !== undefined ? { webhook_metadata: metadata } : {}),
      links: { transcription: `/v1/audio/transcriptions/${o.jobId}` },
    },
  };
}

/** The event of a real-time session's end, from its completion audit event; undefined for any other event. */
export function eventOfAudit(a: AuditEvent): WebhookEvent | undefined {
  if (a.eventType !== 'realtime.session.completed') return undefined;
  let details: Record<string, unknown> = {};
  try {
    details = JSON.parse(a.details) as Record<string, unknown>;
  } catch {
    // details are informational here
  }
  return {
    eventType: 'realtime.session.ended', tenantId: a.tenantId, subjectId: a.sessionId, at: a.time,
    data: {
      session_id: a.sessionId, status: details['status'] ?? null, request_id: a.requestId,
      ended_at: new Date(a.time).toISOString(), audio_duration_seconds: a.audioDurationSeconds,
      utterances: details['utterances'] ?? null, model: details['model'] ?? null,
      ...(a.jobId !== '' ? { enhance_job_id: a.jobId } : {}),
      links: { session: `/v1/realtime/sessions/${a.sessionId}` },
    },
  };
}

export function subscribes(endpoint: WebhookEndpointRecord, eventType: WebhookEventType): boolean {
  return endpoint.enabled && endpoint.deletedAt === undefined && (endpoint.events.includes('*') || endpoint.events.includes(eventType));
}

/** Who hears of the event, among the tenant's endpoints (`endpoints`, any tenant's: filtered here). */
export function targetsOf(event: WebhookEvent, endpoints: readonly WebhookEndpointRecord[]): WebhookTarget[] {
  const mode = event.webhook?.endpoints ?? 'all';
  const targets: WebhookTarget[] = endpoints
    .filter((e) => e.tenantId === event.tenantId && subscribes(e, event.eventType))
    .filter((e) => mode === 'all' || (mode === 'one' && e.endpointId === event.webhook?.endpointId))
    .map((e) => ({ endpointId: e.endpointId }));
  if (event.webhook?.url !== undefined) targets.push({ url: event.webhook.url });
  return targets;
}

function digest(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0'), 'utf8').digest('hex').slice(0, 24);
}

/** `msg_…`: the same for the same event and target however often the event is read. */
export function deliveryIdOf(event: WebhookEvent, target: WebhookTarget): string {
  return `msg_${digest(event.subjectId, event.eventType, target.endpointId ?? `url:${target.url ?? ''}`)}`;
}

/** The request body: `{object, id, type, created_at, data}` (the event id is the same for every target). */
export function bodyOf(event: WebhookEvent): string {
  return JSON.stringify({
    object: 'event', id: `evt_${digest(event.subjectId, event.eventType)}`, type: event.eventType,
    created_at: new Date(event.at).toISOString(), data: event.data,
  });
}
