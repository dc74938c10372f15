/**
 * Public face of Dalston's ClickHouse area: the client, SQL literals, migrations, analytic queries and the
 * batch writer. Other areas import from here rather than from the files behind it.
 */
export { createClickHouse, type ClickHouse, type ClickHouseOptions, type InsertRow, type RequestOptions } from './client.js';
export { ClickHouseQueryError, toClickHouseError } from './errors.js';
export { column, dateTime, formatDateTime, ident, inList, lit, num, qualified, str, type SqlValue } from './sql.js';
export {
  applyMigrations,
  listMigrations,
  renderStatements,
  MIGRATIONS_DIR,
  MIGRATIONS_TABLE,
  type MigrateOptions,
  type MigrationFile,
  type MigrationResult,
} from './migrate.js';
export {
  audioMinutesPerHour,
  jobsPerHour,
  processingSecondsPerAudioMinute,
  processingTimeByModel,
  rtfByEngine,
  rtfByLanguage,
  type AudioMinutesRow,
  type AudioMinutesScope,
  type JobsPerHourRow,
  type ProcessingPerAudioMinuteRow,
  type ProcessingTimeRow,
  type ProcessingTimeScope,
  type QueryScope,
  type RtfRow,
  type TimeRange,
} from './queries.js';
export {
  BatchWriter,
  clickHouseBatchWriter,
  type BatchWriterOptions,
  type BatchWriterState,
  type ClickHouseBatchWriterOptions,
} from './batch-writer.js';
