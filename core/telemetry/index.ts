/**
 * Public face of the telemetry area. Domain code uses the Tracer port; process mains use shutdownTelemetry at
 * the end of their drain. The preloads (register-hooks.js, start-telemetry.js) are launched by path, not imported,
 * and tests import otlp-test-receiver.js directly.
 */
export { createOtelTracer, noopTracer, type ActiveSpan, type SpanAttributes, type SpanAttributeValue, type StartSpanOptions, type TraceCarrier, type Tracer } from './tracer.js';
export { activeTelemetry, shutdownTelemetry, startTelemetry, telemetryOptionsFromConfig, type TelemetryHandle, type TelemetryOptions } from './telemetry-sdk.js';
export { readEc2InstanceId, type InstanceIdOptions } from './instance-id.js';
export { ClickHouseSpanExporter, SPAN_COLUMNS, SPANS_TABLE, spanToRow, type InsertRows, type SpanRow } from './clickhouse-span-exporter.js';
