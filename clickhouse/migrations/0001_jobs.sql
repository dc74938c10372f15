-- Job state for the status API and history. One row per state change; the highest version wins (read with FINAL
-- or argMax). stages_json holds the observability contract's `stages` array as JSON.
CREATE TABLE IF NOT EXISTS {{db}}.jobs
(
    job_id String,
    tenant_id String,
    status String,
    created_at DateTime('UTC'),
    created_ms UInt64,
    started_ms UInt64,
    completed_ms UInt64,
    audio_duration_seconds Float64,
    language String,
    model String,
    request_id String,
    trace_id String,
    error_code String,
    error_message String,
    stages_json String,
    params_json String,
    transcript_key String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(created_at)
ORDER BY job_id
