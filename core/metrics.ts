/**
 * The contract's Prometheus metrics, defined once. Each process creates one registry (default metrics on) and
 * registers only the families it emits; `/metrics` serves that registry. Never label by job, task, session or
 * request id: cardinality would grow without bound.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { METRIC, REALTIME_METRIC, STREAM_METRIC, WEBHOOK_METRIC } from './observability-names.js';

/** Stage work spans 50 ms (merge of a short clip) to several minutes (long audio on CPU). */
export const STAGE_SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 240, 400, 800];
/** Audio durations from a one-second clip to a three-hour recording. */
export const AUDIO_SECONDS_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 10800];
/** HTTP requests and real-time latencies. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/**
 * Real-time first-partial and final latency: finer around RealtimeLatencyHigh's 2 s. With a bound at 2, the alert's
 * interpolated p95 exceeds 2 s only when the true p95 does (with 1 → 2.5, finals just over 1 s read as 2.3 s).
 */
export const REALTIME_LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 5, 10, 30];

export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

export function engineMetrics(registry: Registry) {
  return {
    taskDuration: new Histogram({ name: METRIC.engineTaskDuration, help: 'Engine task processing time (download, process, upload).', labelNames: ['engine_id', 'stage', 'status'] as const, buckets: STAGE_SECONDS_BUCKETS, registers: [registry] }),
    tasksProcessed: new Counter({ name: METRIC.engineTasksProcessed, help: 'Engine tasks finished, by outcome.', labelNames: ['engine_id', 'stage', 'status'] as const, registers: [registry] }),
    queueWait: new Histogram({ name: METRIC.engineQueueWait, help: 'Time from enqueue to engine pick-up.', labelNames: ['engine_id', 'stage'] as const, buckets: STAGE_SECONDS_BUCKETS, registers: [registry] }),
    audioDuration: new Histogram({ name: METRIC.engineAudioDuration, help: 'Input audio duration of engine tasks.', labelNames: ['engine_id', 'stage'] as const, buckets: AUDIO_SECONDS_BUCKETS, registers: [registry] }),
    modelLoad: new Histogram({ name: METRIC.engineModelLoad, help: 'Model load time inside engine tasks.', labelNames: ['engine_id', 'model'] as const, buckets: STAGE_SECONDS_BUCKETS, registers: [registry] }),
    audioProcessed: new Counter({ name: METRIC.audioProcessedSeconds, help: 'Seconds of audio processed.', labelNames: ['engine_id'] as const, registers: [registry] }),
  };
}
export type EngineMetrics = ReturnType<typeof engineMetrics>;

/** The terminal job statuses of dalston_orchestrator_jobs_total. */
export const JOB_OUTCOMES = ['completed', 'failed', 'cancelled'] as const;

export function orchestratorMetrics(registry: Registry) {
  const jobs = new Counter({ name: METRIC.orchestratorJobs, help: 'Jobs reaching a terminal state.', labelNames: ['status'] as const, registers: [registry] });
  // Every outcome exported from start-up at 0: Prometheus then sees the first job as an increase (a series born at 1
  // has no increase, and NoJobsProcessed or the completion rate would miss it).
  for (const status of JOB_OUTCOMES) jobs.inc({ status }, 0);
  return {
    jobs,
    jobDuration: new Histogram({ name: METRIC.orchestratorJobDuration, help: 'Job wall time from creation to terminal state.', labelNames: ['status'] as const, buckets: STAGE_SECONDS_BUCKETS, registers: [registry] }),
    queueDepth: new Gauge({ name: METRIC.queueDepth, help: 'Consumer-group lag of each engine queue (tasks.<stage>.<engine_id>).', labelNames: ['engine_id', 'stage'] as const, registers: [registry] }),
  };
}
export type OrchestratorMetrics = ReturnType<typeof orchestratorMetrics>;

export function gatewayMetrics(registry: Registry) {
  return {
    requests: new Counter({ name: METRIC.gatewayRequests, help: 'HTTP requests by route template and status.', labelNames: ['method', 'route', 'status'] as const, registers: [registry] }),
    requestDuration: new Histogram({ name: METRIC.gatewayRequestDuration, help: 'HTTP request duration by route template.', labelNames: ['method', 'route'] as const, buckets: LATENCY_BUCKETS, registers: [registry] }),
  };
}
export type GatewayMetrics = ReturnType<typeof gatewayMetrics>;

/** Metrics of the Kafka layer (streams/) in a process that consumes. */
export function streamMetrics(registry: Registry) {
  return {
    deadLetters: new Counter({ name: STREAM_METRIC.deadLetters, help: 'Messages dead-lettered by a consumer, by source topic.', labelNames: ['topic'] as const, registers: [registry] }),
  };
}
export type StreamMetrics = ReturnType<typeof streamMetrics>;

/** `status` values of dalston_realtime_sessions_total (gateway/realtime/close-codes.ts closeStatus). */
export const REALTIME_SESSION_OUTCOMES = ['completed', 'interrupted', 'refused', 'failed'] as const;
/** `kind` values of dalston_realtime_latency_seconds. */
export const REALTIME_LATENCY_KINDS = ['first_partial', 'final'] as const;

export function realtimeMetrics(registry: Registry) {
  const sessionsTotal = new Counter({ name: METRIC.realtimeSessionsTotal, help: 'Real-time sessions ended, by status.', labelNames: ['status'] as const, registers: [registry] });
  const latency = new Histogram({ name: METRIC.realtimeLatency, help: 'Real-time first-partial and final latency.', labelNames: ['kind'] as const, buckets: REALTIME_LATENCY_BUCKETS, registers: [registry] });
  // Exported at 0 from start-up: Prometheus then sees the first session and the first utterance of each kind as an
  // increase (a series born with its first sample has none, and the latency panel and RealtimeLatencyHigh miss it).
  for (const status of REALTIME_SESSION_OUTCOMES) sessionsTotal.inc({ status }, 0);
  for (const kind of REALTIME_LATENCY_KINDS) latency.zero({ kind });
  return {
    sessionsActive: new Gauge({ name: METRIC.realtimeSessionsActive, help: 'Real-time sessions open now.', registers: [registry] }),
    sessionsTotal,
    latency,
  };
}
export type RealtimeMetrics = ReturnType<typeof realtimeMetrics>;

/** Per-hop latency of the live path (REALTIME_HOPS); each process observes the hops it ends. */
export function realtimeHopMetric(registry: Registry) {
  return new Histogram({ name: REALTIME_METRIC.hop, help: 'Seconds a real-time message spent on one hop of the live path.', labelNames: ['hop'] as const, buckets: HOP_BUCKETS, registers: [registry] });
}
export type RealtimeHopMetric = ReturnType<typeof realtimeHopMetric>;

/** Kafka hops take milliseconds; recognition up to a second or so. */
const HOP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** A streaming engine's own figures (REALTIME_METRIC); decode seconds by `kind` = partial|final. */
export function realtimeEngineMetrics(registry: Registry) {
  return {
    sessions: new Gauge({ name: REALTIME_METRIC.engineSessions, help: 'Sessions this streaming engine instance serves now.', registers: [registry] }),
    decode: new Histogram({ name: REALTIME_METRIC.engineDecode, help: 'Wall seconds of one partial or final decode.', labelNames: ['kind'] as const, buckets: LATENCY_BUCKETS, registers: [registry] }),
    audioSeconds: new Counter({ name: REALTIME_METRIC.engineAudioSeconds, help: 'Audio seconds this streaming engine processed.', registers: [registry] }),
    partialsSkipped: new Counter({ name: REALTIME_METRIC.enginePartialsSkipped, help: 'Partials skipped by the adaptive cadence (finals never are).', registers: [registry] }),
  };
}
export type RealtimeEngineMetrics = ReturnType<typeof realtimeEngineMetrics>;

/** `status` of dalston_webhook_deliveries_total: how one attempt ended. */
export const WEBHOOK_ATTEMPT_OUTCOMES = ['delivered', 'failed', 'refused', 'dropped'] as const;

export function webhookMetrics(registry: Registry) {
  return {
    deliveries: new Counter({ name: WEBHOOK_METRIC.deliveries, help: 'Webhook delivery attempts by outcome.', labelNames: ['status'] as const, registers: [registry] }),
    deliveryDuration: new Histogram({ name: WEBHOOK_METRIC.deliveryDuration, help: 'Seconds one webhook delivery attempt took (connect to answer).', buckets: LATENCY_BUCKETS, registers: [registry] }),
    pending: new Gauge({ name: WEBHOOK_METRIC.pending, help: 'Webhook deliveries this worker holds, waiting for their due time or in flight.', registers: [registry] }),
  };
}
export type WebhookMetrics = ReturnType<typeof webhookMetrics>;
