-- One row per finished task attempt (status success | failure | cancelled). Real-time factor, per-language and
-- per-model performance and audio minutes per hour are queries on this table and on the rollups fed from it.
CREATE TABLE IF NOT EXISTS {{db}}.task_facts
(
    time DateTime('UTC'),
    time_ms UInt64,
    job_id String,
    task_id String,
    tenant_id String,
    stage String,
    engine_id String,
    model String,
    language String,
    status String,
    audio_duration_seconds Float64,
    processing_ms UInt64,
    queue_wait_ms UInt64,
    model_load_ms UInt64,
    retries UInt32,
    attempt UInt32,
    trace_id String,
    request_id String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (stage, engine_id, time)
