-- Audit event types of API keys and refused requests (adding Enum8 values rewrites no data).
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
    'access.denied' = 14
)
