-- One row per real-time session (rewritten as it progresses; the highest version wins).
CREATE TABLE IF NOT EXISTS {{db}}.realtime_sessions
(
    session_id String,
    tenant_id String,
    started_at DateTime('UTC'),
    ended_at DateTime('UTC'),
    duration_seconds Float64,
    audio_seconds Float64,
    status String,
    engine_id String,
    model String,
    language String,
    utterances UInt32,
    first_partial_p50_ms Float64,
    first_partial_p95_ms Float64,
    final_p50_ms Float64,
    final_p95_ms Float64,
    trace_id String,
    request_id String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(started_at)
ORDER BY session_id
