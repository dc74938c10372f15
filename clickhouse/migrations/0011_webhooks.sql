-- Webhook endpoints' changes are audited (adding an Enum8 value rewrites no data).
ALTER TABLE {{db}}.audit_events MODIFY COLUMN event_type Enum8(
    'job.created' = 1,
    'job.completed' = 2,
    'job.failed' = 3,
    'job.cancelled' = 4,
    'job.deleted' = 5,
    'artifact.read' = 6,
    'transcript.exported' = 7,
    'pii.redaction_run' = 8,
    'data.deleted' = 9,
    'realtime.session.completed' = 10,
    'realtime.session.deleted' = 11,
    'api_key.created' = 12,
    'api_key.revoked' = 13,
    'access.denied' = 14,
    'webhook.changed' = 15
);
-- The webhook delivery log: one row per attempt, written by the webhook worker before the attempt's outcome is
-- committed to the retry schedule. body is the request body as sent (no transcript text), so a manual redelivery
-- can send it again.
CREATE TABLE IF NOT EXISTS {{db}}.webhook_deliveries
(
    time DateTime('UTC'),
    time_ms UInt64,
    delivery_id String,
    tenant_id String,
    endpoint_id String,
    url String,
    event_type String,
    subject_id String,
    attempt UInt32,
    status Enum8('delivered' = 1, 'failed' = 2, 'refused' = 3, 'dropped' = 4),
    http_status UInt16,
    error String,
    duration_ms UInt32,
    next_attempt_at_ms UInt64,
    body String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (tenant_id, endpoint_id, time, delivery_id)
