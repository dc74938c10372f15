-- Optional trace store written by a span exporter. job_id is copied from the dalston.job_id attribute so a job's
-- spans are found without scanning the attribute bag. Drop old days by partition for retention.
CREATE TABLE IF NOT EXISTS {{db}}.spans
(
    trace_id String,
    span_id String,
    parent_span_id String,
    name String,
    service String,
    kind String,
    start_time DateTime('UTC'),
    start_us UInt64,
    duration_us UInt64,
    status_code String,
    status_message String,
    job_id String,
    attributes Nested(key String, value String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(start_time)
ORDER BY (trace_id, start_us)
