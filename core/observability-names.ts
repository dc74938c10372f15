/**
 * Every span, attribute, metric and log-field name of ../shared/observability-contract.md, in one place.
 * These are a public contract: dashboards, alerts and users' queries depend on them.
 */

export const SERVICE = {
  gateway: 'dalston-gateway',
  orchestrator: 'dalston-orchestrator',
  engine: 'dalston-engine',
  realtime: 'dalston-realtime',
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
