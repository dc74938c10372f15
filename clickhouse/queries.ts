/**
 * The analytic questions Dalston asks of ClickHouse, as functions returning SQL that runs on 18.16 and current
 * releases. Dashboards, the CLI and tests reuse them, so a panel and its test run the very same text.
 * Time buckets are UTC (the tables' columns are DateTime('UTC')) and are also returned as epoch milliseconds (`*_ms`).
 */
import { dateTime, ident, str } from './sql.js';

/** A half-open interval [fromMs, toMs) in epoch milliseconds. */
export interface TimeRange {
  readonly fromMs: number;
  readonly toMs: number;
}

export interface QueryScope extends TimeRange {
  /** Database holding the Dalston tables. */
  readonly database: string;
}

/** Quantile levels stored in rtf_hourly.rtf_quantiles (0006_task_rollups.sql); quantilesMerge must use the same. */
const RTF_LEVELS = '0.5, 0.95, 0.99';

// Output aliases never repeat a column name used inside an aggregate: 18.16 would substitute the alias there.

/**
 * Rollup tables are bucketed by hour: a bucket is included when its hour starts inside the range, so a range
 * starting mid-hour includes that whole hour.
 */
function hourFilter(scope: TimeRange): string {
  return `hour >= toStartOfHour(${dateTime(scope.fromMs)}) AND hour < ${dateTime(scope.toMs)}`;
}

/** One row of rtfByEngine / rtfByLanguage. RTF = processing seconds per second of audio (below 1: faster than real time). */
export interface RtfRow {
  readonly engine_id?: string;
  readonly language?: string;
  readonly tasks: number;
  readonly total_audio_seconds: number;
  readonly total_processing_ms: number;
  /** Total processing time over total audio: what the hardware bill follows. */
  readonly rtf_mean: number;
  /** Per-task RTF quantiles (approximate, from the stored quantile states). */
  readonly rtf_p50: number;
  readonly rtf_p95: number;
  readonly rtf_p99: number;
}

function rtfBy(key: 'engine_id' | 'language', scope: QueryScope): string {
  const db = ident(scope.database);
  return `SELECT
    ${key},
    countMerge(task_count) AS tasks,
    sumMerge(audio_seconds) AS total_audio_seconds,
    sumMerge(processing_ms_total) AS total_processing_ms,
    if(total_audio_seconds > 0, total_processing_ms / 1000 / total_audio_seconds, 0) AS rtf_mean,
    quantilesMerge(${RTF_LEVELS})(rtf_quantiles) AS rtf_q,
    rtf_q[1] AS rtf_p50,
    rtf_q[2] AS rtf_p95,
    rtf_q[3] AS rtf_p99
FROM ${db}.rtf_hourly
WHERE ${hourFilter(scope)}
GROUP BY ${key}
ORDER BY ${key}`;
}

/** Real-time factor of successful tasks per engine, from the rtf_hourly rollup. Rows: RtfRow with engine_id (plus rtf_q). */
export function rtfByEngine(scope: QueryScope): string {
  return rtfBy('engine_id', scope);
}

/** Real-time factor of successful tasks per language, from the rtf_hourly rollup. Rows: RtfRow with language (plus rtf_q). */
export function rtfByLanguage(scope: QueryScope): string {
  return rtfBy('language', scope);
}

export interface AudioMinutesRow {
  /** Start of the hour, `YYYY-MM-DD hh:mm:ss` UTC. */
  readonly hour: string;
  readonly hour_ms: number;
  readonly audio_minutes: number;
  readonly tasks: number;
}

export interface AudioMinutesScope extends QueryScope {
  /**
   * Stage whose successful tasks count the audio; one per job, so each job's audio is counted once.
   * @default 'transcribe'
   */
  readonly stage?: string;
}

/** Minutes of audio processed per hour, from the task_hourly rollup. Rows: AudioMinutesRow, oldest hour first. */
export function audioMinutesPerHour(scope: AudioMinutesScope): string {
  const db = ident(scope.database);
  return `SELECT
    hour,
    toUInt64(toUnixTimestamp(hour)) * 1000 AS hour_ms,
    sum(audio_seconds) / 60 AS audio_minutes,
    sum(task_count) AS tasks
FROM ${db}.task_hourly
WHERE ${hourFilter(scope)} AND stage = ${str(scope.stage ?? 'transcribe')} AND status = 'success'
GROUP BY hour
ORDER BY hour`;
}

export interface ProcessingTimeRow {
  readonly engine_id: string;
  readonly model: string;
  readonly tasks: number;
  readonly p50_ms: number;
  readonly p95_ms: number;
  readonly p99_ms: number;
}

export interface ProcessingTimeScope extends QueryScope {
  /** Only this stage; all stages when absent. */
  readonly stage?: string;
}

/**
 * Processing-time percentiles of successful task attempts per (engine_id, model), from task_facts
 * (`quantiles` is approximate on large sets). Rows: ProcessingTimeRow (plus q), ordered by engine then model.
 */
export function processingTimeByModel(scope: ProcessingTimeScope): string {
  const db = ident(scope.database);
  const stage = scope.stage === undefined ? '' : ` AND stage = ${str(scope.stage)}`;
  return `SELECT
    engine_id,
    model,
    count() AS tasks,
    quantiles(0.5, 0.95, 0.99)(processing_ms) AS q,
    q[1] AS p50_ms,
    q[2] AS p95_ms,
    q[3] AS p99_ms
FROM ${db}.task_facts
WHERE time >= ${dateTime(scope.fromMs)} AND time < ${dateTime(scope.toMs)} AND status = 'success'${stage}
GROUP BY engine_id, model
ORDER BY engine_id, model`;
}

export interface JobsPerHourRow {
  /** Hour the jobs were created in, `YYYY-MM-DD hh:mm:ss` UTC. */
  readonly hour: string;
  readonly hour_ms: number;
  readonly jobs: number;
  readonly completed: number;
  readonly failed: number;
  readonly cancelled: number;
}

/**
 * Jobs created per hour with their latest status, from jobs (each job counted once, its highest version deciding
 * the status). Rows: JobsPerHourRow, oldest hour first.
 */
export function jobsPerHour(scope: QueryScope): string {
  const db = ident(scope.database);
  return `SELECT
    toStartOfHour(created) AS hour,
    toUInt64(toUnixTimestamp(hour)) * 1000 AS hour_ms,
    count() AS jobs,
    countIf(last_status = 'completed') AS completed,
    countIf(last_status = 'failed') AS failed,
    countIf(last_status = 'cancelled') AS cancelled
FROM
(
    SELECT job_id, min(created_at) AS created, argMax(status, version) AS last_status
    FROM ${db}.jobs
    WHERE created_at >= ${dateTime(scope.fromMs)} AND created_at < ${dateTime(scope.toMs)}
    GROUP BY job_id
)
GROUP BY hour
ORDER BY hour`;
}

export interface ProcessingPerAudioMinuteRow {
  readonly hour: string;
  readonly hour_ms: number;
  /** Processing time of every task attempt in the hour, all stages, failures included (they cost too). */
  readonly processing_seconds: number;
  /** Audio minutes successfully transcribed in the hour (see AudioMinutesScope.stage). */
  readonly audio_minutes: number;
  /** processing_seconds / audio_minutes; 0 for an hour without audio. */
  readonly processing_seconds_per_audio_minute: number;
}

/** Cost per hour: processing seconds spent per audio minute, from the task_hourly rollup. Rows: ProcessingPerAudioMinuteRow. */
export function processingSecondsPerAudioMinute(scope: AudioMinutesScope): string {
  const db = ident(scope.database);
  return `SELECT
    hour,
    toUInt64(toUnixTimestamp(hour)) * 1000 AS hour_ms,
    sum(processing_ms_total) / 1000 AS processing_seconds,
    sumIf(audio_seconds, stage = ${str(scope.stage ?? 'transcribe')} AND status = 'success') / 60 AS audio_minutes,
    if(audio_minutes > 0, processing_seconds / audio_minutes, 0) AS processing_seconds_per_audio_minute
FROM ${db}.task_hourly
WHERE ${hourFilter(scope)}
GROUP BY hour
ORDER BY hour`;
}
