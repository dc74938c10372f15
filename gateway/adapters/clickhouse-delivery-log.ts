/** DeliveryLogReader over ClickHouse `webhook_deliveries` (the rows the webhook worker writes, one per attempt). */
import type { ClickHouse } from '../../clickhouse/client.js';
import { qualified, str } from '../../clickhouse/sql.js';
import type { DeliveryAttemptRow, DeliveryLogReader } from '../webhooks/delivery-log.js';

interface Selected {
  delivery_id: string; tenant_id: string; endpoint_id: string; event_type: string; subject_id: string; attempt: number | string; status: string;
  http_status: number | string; error: string; duration_ms: number | string; time_ms: number | string; next_attempt_at_ms: number | string; body: string;
}

export class ClickHouseDeliveryLog implements DeliveryLogReader {
  constructor(private readonly ch: ClickHouse) {}

  async attempts(q: { tenantId: string; endpointId: string; deliveryId?: string; limit: number }): Promise<DeliveryAttemptRow[]> {
    const where = [`tenant_id = ${str(q.tenantId)}`, `endpoint_id = ${str(q.endpointId)}`];
    if (q.deliveryId !== undefined) where.push(`delivery_id = ${str(q.deliveryId)}`);
    const rows = await this.ch.query<Selected>(
      `SELECT delivery_id, tenant_id, endpoint_id, event_type, subject_id, attempt, toString(status) AS status, http_status, error, duration_ms,
              time_ms, next_attempt_at_ms, body
       FROM ${qualified(this.ch.database, 'webhook_deliveries')}
       WHERE ${where.join(' AND ')}
       ORDER BY time_ms DESC
       LIMIT ${Math.max(1, Math.floor(q.limit))}`,
    );
    return rows.map((r) => ({
      deliveryId: r.delivery_id, tenantId: r.tenant_id, endpointId: r.endpoint_id, eventType: r.event_type, subjectId: r.subject_id,
      attempt: Number(r.attempt), status: r.status as DeliveryAttemptRow['status'], httpStatus: Number(r.http_status), error: r.error,
      durationMs: Number(r.duration_ms), timeMs: Number(r.time_ms), nextAttemptAtMs: Number(r.next_attempt_at_ms), body: r.body,
    }));
  }
}
