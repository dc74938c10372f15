-- Append-only audit trail. event_type is a closed set, so an unknown type is rejected at insert time.
-- details is a JSON object as String (read with visitParamExtract*).
CREATE TABLE IF NOT EXISTS {{db}}.audit_events
(
    time DateTime('UTC'),
    time_ms UInt64,
    event_id String,
    event_type Enum8(
        'job.created' = 1,
        'job.completed' = 2,
        'job.failed' = 3,
        'job.cancelled' = 4,
        'job.deleted' = 5,
        'artifact.read' = 6,
        'transcript.exported' = 7,
        'pii.redaction_run' = 8,
        'data.deleted' = 9
    ),
    tenant_id String,
    actor_key_id String,
    job_id String,
    session_id String,
    audio_duration_seconds Float64,
    request_id String,
    trace_id String,
    details String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (tenant_id, time, event_id)
