-- Task state per job, one row per state change; the highest version wins.
CREATE TABLE IF NOT EXISTS {{db}}.tasks
(
    job_id String,
    task_id String,
    stage String,
    engine_id String,
    status String,
    retries UInt32,
    ready_ms UInt64,
    started_ms UInt64,
    completed_ms UInt64,
    queue_wait_ms UInt64,
    duration_ms UInt64,
    error_json String,
    created_at DateTime('UTC'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(created_at)
ORDER BY (job_id, task_id)
