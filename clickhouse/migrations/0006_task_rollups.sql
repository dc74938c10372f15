-- Hourly rollups of task_facts, filled by materialized views as rows arrive (rows inserted before a view existed
-- are not back-filled). Target columns never reuse a source column's name (18.16 resolves such an alias inside
-- the aggregate and fails). Sums merge in the background: always read with sum(...) GROUP BY, never raw rows.
CREATE TABLE IF NOT EXISTS {{db}}.task_hourly
(
    hour DateTime('UTC'),
    stage String,
    engine_id String,
    model String,
    language String,
    status String,
    audio_seconds Float64,
    processing_ms_total UInt64,
    task_count UInt64
)
ENGINE = SummingMergeTree((audio_seconds, processing_ms_total, task_count))
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, stage, engine_id, model, language, status);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.task_hourly_mv TO {{db}}.task_hourly
AS SELECT
    toStartOfHour(time) AS hour,
    stage,
    engine_id,
    model,
    language,
    status,
    sum(audio_duration_seconds) AS audio_seconds,
    sum(processing_ms) AS processing_ms_total,
    count() AS task_count
FROM {{db}}.task_facts
GROUP BY hour, stage, engine_id, model, language, status;

-- Real-time factor (processing seconds per audio second) of successful tasks with known audio duration, as
-- quantile states: read with quantilesMerge(0.5, 0.95, 0.99)(rtf_quantiles); the levels must match.
CREATE TABLE IF NOT EXISTS {{db}}.rtf_hourly
(
    hour DateTime('UTC'),
    engine_id String,
    model String,
    language String,
    rtf_quantiles AggregateFunction(quantiles(0.5, 0.95, 0.99), Float64),
    audio_seconds AggregateFunction(sum, Float64),
    processing_ms_total AggregateFunction(sum, UInt64),
    task_count AggregateFunction(count)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, engine_id, model, language);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.rtf_hourly_mv TO {{db}}.rtf_hourly
AS SELECT
    toStartOfHour(time) AS hour,
    engine_id,
    model,
    language,
    quantilesState(0.5, 0.95, 0.99)(processing_ms / 1000 / audio_duration_seconds) AS rtf_quantiles,
    sumState(audio_duration_seconds) AS audio_seconds,
    sumState(processing_ms) AS processing_ms_total,
    countState() AS task_count
FROM {{db}}.task_facts
WHERE status = 'success' AND audio_duration_seconds > 0
GROUP BY hour, engine_id, model, language
