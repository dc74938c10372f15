-- Session history: what the history API lists and shows, written by the session sink from the session actor's
-- snapshots (a row per revision; the highest version wins). One ALTER per column: 18.16 has no ADD COLUMN IF NOT
-- EXISTS, so the runner skips a column that already exists (code 44) and an interrupted file can run again.
ALTER TABLE {{db}}.realtime_sessions ADD COLUMN started_ms UInt64 DEFAULT 0;
ALTER TABLE {{db}}.realtime_sessions ADD COLUMN ended_ms UInt64 DEFAULT 0;
ALTER TABLE {{db}}.realtime_sessions ADD COLUMN key_id String DEFAULT '';
ALTER TABLE {{db}}.realtime_sessions ADD COLUMN dialect String DEFAULT '';
ALTER TABLE {{db}}.realtime_sessions ADD COLUMN close_code Int32 DEFAULT 0;
ALTER TABLE {{db}}.realtime_sessions ADD COLUMN close_reason String DEFAULT '';
ALTER TABLE {{db}}.realtime_sessions ADD COLUMN retention UInt8 DEFAULT 1;
ALTER TABLE {{db}}.realtime_sessions ADD COLUMN audio_key String DEFAULT '';
ALTER TABLE {{db}}.realtime_sessions ADD COLUMN transcript_key String DEFAULT '';
ALTER TABLE {{db}}.realtime_sessions ADD COLUMN enhance_job_id String DEFAULT '';
ALTER TABLE {{db}}.realtime_sessions ADD COLUMN deleted UInt8 DEFAULT 0;
ALTER TABLE {{db}}.realtime_sessions ADD COLUMN deleted_ms UInt64 DEFAULT 0;
-- Audit event types of real-time sessions (adding Enum8 values rewrites no data).
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
    'realtime.session.deleted' = 11
)
