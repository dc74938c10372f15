/**
 * The ports of the webhook delivery log as the API sees it: the attempts the worker logged (ClickHouse), grouped by
 * delivery, and the schedule a manual redelivery is put on (Kafka). Pure grouping lives here.
 */
import type { WebhookDeliveryScheduled } from '../../streams/index.js';

export interface DeliveryAttemptRow {
  readonly deliveryId: string;
  readonly tenantId: string;
  readonly endpointId: string;
  readonly eventType: string;
  readonly subjectId: string;
  readonly attempt: number;
  readonly status: 'delivered' | 'failed' | 'refused' | 'dropped';
  readonly httpStatus: number;
  readonly error: string;
  readonly durationMs: number;
  readonly timeMs: number;
  readonly nextAttemptAtMs: number;
  readonly body: string;
}

export interface DeliveryLogReader {
  /** Attempts of one endpoint's deliveries (one delivery's, when `deliveryId` is given), newest first. */
  attempts(q: { readonly tenantId: string; readonly endpointId: string; readonly deliveryId?: string; readonly limit: number }): Promise<DeliveryAttemptRow[]>;
}

export interface DeliveryScheduler {
  schedule(record: WebhookDeliveryScheduled): Promise<void>;
}

/** A delivery as listed: its latest state and every attempt. `pending`: it failed and another attempt is scheduled. */
export interface DeliveryView {
  readonly id: string;
  readonly event_type: string;
  readonly subject_id: string;
  readonly status: 'delivered' | 'pending' | 'failed' | 'refused' | 'dropped';
  readonly attempts: number;
  readonly next_attempt_at: string | null;
  readonly first_attempt_at: string;
  readonly last_attempt_at: string;
  readonly attempt_log: readonly {
    readonly attempt: number; readonly status: string; readonly http_status: number | null; readonly error: string | null;
    readonly duration_ms: number; readonly attempted_at: string;
  }[];
}

/** Attempt rows → deliveries, newest delivery first; attempts in order. Pure. */
export function groupDeliveries(rows: readonly DeliveryAttemptRow[]): DeliveryView[] {
  const byId = new Map<string, DeliveryAttemptRow[]>();
  for (const r of rows) byId.set(r.deliveryId, [...(byId.get(r.deliveryId) ?? []), r]);
  const views = [...byId.values()].map((attempts): DeliveryView => {
    const sorted = [...attempts].sort((a, b) => a.attempt - b.attempt || a.timeMs - b.timeMs);
    const first = sorted[0] as DeliveryAttemptRow;
    const last = sorted[sorted.length - 1] as DeliveryAttemptRow;
    const pending = last.status === 'failed' && last.nextAttemptAtMs > 0;
    return {
      id: last.deliveryId, event_type: last.eventType, subject_id: last.subjectId, status: pending ? 'pending' : last.status,
      attempts: sorted.length, next_attempt_at: pending ? new Date(last.nextAttemptAtMs).toISOString() : null,
      first_attempt_at: new Date(first.timeMs).toISOString(), last_attempt_at: new Date(last.timeMs).toISOString(),
      attempt_log: sorted.map((a) => ({
        attempt: a.attempt, status: a.status, http_status: a.httpStatus === 0 ? null : a.httpStatus, error: a.error === '' ? null : a.error,
        duration_ms: a.durationMs, attempted_at: new Date(a.timeMs).toISOString(),
      })),
    };
  });
  return views.sort((a, b) => b.last_attempt_at.localeCompare(a.last_attempt_at));
}
