-- A job's name and tags (PATCH /v1/audio/transcriptions/{id}): one row per change, the newest (updated_ms) wins.
-- Apart from `jobs` because the gateway writes them while the job's actor owns the jobs row.
CREATE TABLE IF NOT EXISTS {{db}}.job_labels
(
    tenant_id String,
    job_id String,
    name String,
    tags Array(String),
    updated_ms UInt64
)
ENGINE = ReplacingMergeTree(updated_ms)
ORDER BY (tenant_id, job_id);
