/**
 * Every span, attribute, metric and log-field name of ../shared/observability-contract.md, in one place.
 * These are a public contract: dashboards, alerts and users' queries depend on them.
 */

export const SERVICE = {
  gateway: 'dalston-gateway',
  orchestrator: 'dalston-orchestrator',
  engine: 'dalston-engine',
  realtime: 'dalston-realtime',
  /** The webhook worker (deliveries and their retry schedule); beyond the contract's four, which it does not rename. */
  webhooks: 'dalston-webhooks',
} as const;

export const SPAN = {
  uploadToS3: 'upload_to_s3',
  createJob: 'create_job',
  publishJobCreated: 'publish_job_created_event',
  handleJobCreated: 'handle_job_created',
  buildDag: 'build_dag',
  scheduleTask: (stage: string) => `schedule_task (${stage})`,
  queueWait: 'queue_wait',
  engineProcessRoot: (engineId: string) => `engine.${engineId}.process`,
  engineModelLoad: 'engine.model_load',
  engineDownloadInput: 'engine.download_input',
  engineProcess: 'engine.process',
  engineUploadOutput: 'engine.upload_output',
  markJobCompleted: 'mark_job_completed',
  markJobFailed: 'mark_job_failed',
  markJobCancelled: 'mark_job_cancelled',
  realtimeSession: 'realtime.session',
  realtimeUtterance: 'realtime.utterance',
} as const;

export const ATTR = {
  jobId: 'dalston.job_id',
  taskId: 'dalston.task_id',
  stage: 'dalston.stage',
  engineId: 'dalston.engine_id',
  model: 'dalston.model',
  language: 'dalston.language',
  audioDurationSeconds: 'dalston.audio_duration_seconds',
  retries: 'dalston.retries',
  tenantId: 'dalston.tenant_id',
  requestId: 'dalston.request_id',
  sessionId: 'dalston.session_id',
  storageBackend: 'dalston.storage.backend',
} as const;

export const METRIC = {
  engineTaskDuration: 'dalston_engine_task_duration_seconds',
  engineTasksProcessed: 'dalston_engine_tasks_processed_total',
  engineQueueWait: 'dalston_engine_queue_wait_seconds',
  engineAudioDuration: 'dalston_engine_audio_duration_seconds',
  engineModelLoad: 'dalston_engine_model_load_seconds',
  queueDepth: 'dalston_queue_depth',
  orchestratorJobs: 'dalston_orchestrator_jobs_total',
  orchestratorJobDuration: 'dalston_orchestrator_job_duration_seconds',
  audioProcessedSeconds: 'dalston_audio_processed_seconds_total',
  gatewayRequests: 'dalston_gateway_requests_total',
  gatewayRequestDuration: 'dalston_gateway_request_duration_seconds',
  realtimeSessionsActive: 'dalston_realtime_sessions_active',
  realtimeSessionsTotal: 'dalston_realtime_sessions_total',
  realtimeLatency: 'dalston_realtime_latency_seconds',
} as const;

/**
 * Metrics beyond the contract's table that alerts depend on (compose/prometheus/alerts.yml), kept apart from
 * METRIC so METRIC stays exactly the contract's list.
 */
export const STREAM_METRIC = {
  /** Messages a consumer gave up on and parked on the dead-letter topic, by source topic (DeadLettersGrowing). */
  deadLetters: 'dalston_stream_dead_letters_total',
} as const;

/**
 * Real-time metrics beyond the contract's three: per-hop latency of the live path and the streaming engines' own
 * figures. `hop` values: REALTIME_HOPS.
 */
export const REALTIME_METRIC = {
  /** Seconds one message spent on a hop of the live path, by `hop`. */
  hop: 'dalston_realtime_hop_seconds',
  /** Sessions a streaming engine instance serves now. */
  engineSessions: 'dalston_realtime_engine_sessions',
  /** Wall seconds of one partial or final decode, by `kind`. */
  engineDecode: 'dalston_realtime_engine_decode_seconds',
  /** Audio seconds a streaming engine processed. */
  engineAudioSeconds: 'dalston_realtime_engine_audio_seconds_total',
  /** Partials skipped by the adaptive cadence (load shedding: partials give way first, never finals). */
  enginePartialsSkipped: 'dalston_realtime_engine_partials_skipped_total',
} as const;

/**
 * Hops of the live path: gateway publish → engine receipt (Kafka), engine receipt → result published (recognition
 * and queueing), engine publish → gateway receipt (Kafka), gateway receipt → socket write.
 */
export const REALTIME_HOPS = ['gateway_to_engine', 'engine', 'engine_to_gateway', 'gateway_to_client'] as const;
export type RealtimeHop = (typeof REALTIME_HOPS)[number];

/** Attributes of `realtime.utterance` spans (beyond ATTR): which utterance, and its latencies from the audio's send time. */
export const REALTIME_ATTR = {
  utterance: 'dalston.realtime.utterance',
  reason: 'dalston.realtime.end_reason',
  restored: 'dalston.realtime.restored',
  firstPartialLatencyMs: 'dalston.realtime.first_partial_latency_ms',
  finalLatencyMs: 'dalston.realtime.final_latency_ms',
  partials: 'dalston.realtime.partials',
} as const;

/** Log field names (snake_case, as the contract writes them). */
export const LOG = {
  requestId: 'request_id',
  traceId: 'trace_id',
  spanId: 'span_id',
  jobId: 'job_id',
  taskId: 'task_id',
  sessionId: 'session_id',
  engineId: 'engine_id',
  tenantId: 'tenant_id',
} as const;

/** Kafka header names carried on every message. */
export const HEADER = {
  requestId: 'request_id',
  tenantId: 'tenant_id',
  enqueuedAt: 'enqueued_at',
  messageId: 'message_id',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
} as const;

/** Webhook delivery metrics (the webhook worker), by attempt outcome: WEBHOOK_ATTEMPT_OUTCOMES. */
export const WEBHOOK_METRIC = {
  deliveries: 'dalston_webhook_deliveries_total',
  deliveryDuration: 'dalston_webhook_delivery_duration_seconds',
  pending: 'dalston_webhook_deliveries_pending',
} as const;
