/**
 * The one place that reads DALSTON_* environment variables. Every variable is declared once below with its
 * default and a doc line (the README's table is checked against this list by a test); loadConfig validates
 * them all at start-up and names the bad variable in its error.
 */
import { accessSync, constants } from 'node:fs';
import { resolve } from 'node:path';
import { isIP } from 'node:net';
import { ConfigError } from './errors.js';

type Parser<T> = (raw: string, name: string) => T;

interface VariableSpec<T> {
  readonly name: `DALSTON_${string}`;
  readonly doc: string;
  /** The default as an operator would write it; undefined means "unset" is a legal value. */
  readonly default: string | undefined;
  readonly parse: Parser<T>;
}

const str: Parser<string> = (raw) => raw;

const port: Parser<number> = (raw, name) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${name} must be a TCP port (0-65535), got "${raw}"`);
  return n;
};

function intRange(min: number, max: number): Parser<number> {
  return (raw, name) => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
    }
    return n;
  };
}

/** `alias=model,alias=model`: names a client may send (e.g. OpenAI's) → a model id or `auto`. Syntax only here. */
const modelAliases: Parser<ReadonlyMap<string, string>> = (raw, name) => {
  const map = new Map<string, string>();
  for (const pair of raw.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const m = /^([A-Za-z0-9][A-Za-z0-9._:-]{0,63})=([A-Za-z0-9][A-Za-z0-9._:/-]{0,127})$/.exec(pair);
    if (!m?.[1] || !m[2]) throw new ConfigError(`${name} must be alias=model pairs separated by commas, got "${pair}"`);
    if (map.has(m[1])) throw new ConfigError(`${name} names alias "${m[1]}" twice`);
    map.set(m[1], m[2]);
  }
  return map;
};

/** 0 (the feature is off) or a number from min to max. */
function zeroOrRange(min: number, max: number): Parser<number> {
  const inRange = numRange(min, max);
  return (raw, name) => {
    if (raw.trim() === '0') return 0;
    try {
      return inRange(raw, name);
    } catch {
      throw new ConfigError(`${name} must be 0 (off) or a number from ${min} to ${max}, got "${raw}"`);
    }
  };
}

function numRange(min: number, max: number): Parser<number> {
  return (raw, name) => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new ConfigError(`${name} must be a number from ${min} to ${max}, got "${raw}"`);
    }
    return n;
  };
}

function oneOf<const T extends string>(...values: T[]): Parser<T> {
  return (raw, name) => {
    if ((values as string[]).includes(raw)) return raw as T;
    throw new ConfigError(`${name} must be one of ${values.join(', ')}, got "${raw}"`);
  };
}

const bool: Parser<boolean> = (raw, name) => {
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
};

const brokerList: Parser<string[]> = (raw, name) => {
  const brokers = raw.split(',').map((b) => b.trim()).filter((b) => b.length > 0);
  if (brokers.length === 0 || brokers.some((b) => !/^[^:\s]+:\d{1,5}$/.test(b))) {
    throw new ConfigError(`${name} must be a comma-separated list of host:port, got "${raw}"`);
  }
  return brokers;
};

const httpUrl: Parser<string> = (raw, name) => {
  try {
    const u = new URL(raw);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
    return raw.replace(/\/+$/, '');
  } catch {
    throw new ConfigError(`${name} must be an http(s) URL, got "${raw}"`);
  }
};

/** A file that exists and is readable by this process, resolved against the working directory. */
const readableFile: Parser<string> = (raw, name) => {
  const path = resolve(raw);
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    throw new ConfigError(`${name} must name a readable file, got "${raw}" (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  return path;
};

const identifier: Parser<string> = (raw, name) => {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(raw)) throw new ConfigError(`${name} must be an identifier ([A-Za-z_][A-Za-z0-9_]*), got "${raw}"`);
  return raw;
};

const topicPrefix: Parser<string> = (raw, name) => {
  if (!/^[A-Za-z0-9._-]*$/.test(raw)) throw new ConfigError(`${name} may only contain letters, digits, '.', '_' and '-', got "${raw}"`);
  return raw;
};

/** Host names, addresses and CIDR blocks, comma-separated; a CIDR block must be well-formed. */
const allowList: Parser<readonly string[]> = (raw, name) => {
  const entries = raw.split(',').map((e) => e.trim()).filter((e) => e !== '');
  for (const e of entries) {
    const [net, prefix, more] = e.split('/');
    const bits = isIP(net ?? '');
    if (more !== undefined || (prefix !== undefined && (bits === 0 || !/^\d+$/.test(prefix) || Number(prefix) > (bits === 6 ? 128 : 32)))) {
      throw new ConfigError(`${name}: "${e}" is not a host name, address or CIDR block`);
    }
  }
  return entries;
};

function spec<T, const D extends string | undefined>(s: VariableSpec<T> & { readonly default: D }): VariableSpec<T> & { readonly default: D } {
  return s;
}

/** Every variable Dalston reads. Order is the README's order. */
export const VARIABLES = {
  home: spec({ name: 'DALSTON_HOME', default: '.dalston', doc: 'Data directory (Kafka and ClickHouse data, artifacts, caches, models), relative to the repository root.', parse: str }),
  kafkaBrokers: spec({ name: 'DALSTON_KAFKA_BROKERS', default: '127.0.0.1:9092', doc: 'Kafka bootstrap servers, comma-separated host:port.', parse: brokerList }),
  kafkaPort: spec({ name: 'DALSTON_KAFKA_PORT', default: '9092', doc: 'Port of the Kafka broker that `./dalston up` starts (the KRaft controller uses the next port).', parse: port }),
  topicPrefix: spec({ name: 'DALSTON_TOPIC_PREFIX', default: 'dalston.', doc: 'Prefix of every Kafka topic and consumer group, so several stacks can share a broker.', parse: topicPrefix }),
  clickhouseUrl: spec({ name: 'DALSTON_CLICKHOUSE_URL', default: 'http://127.0.0.1:8123', doc: 'ClickHouse HTTP endpoint.', parse: httpUrl }),
  clickhouseUser: spec({ name: 'DALSTON_CLICKHOUSE_USER', default: 'default', doc: 'ClickHouse user (HTTP basic authentication).', parse: str }),
  clickhousePassword: spec({ name: 'DALSTON_CLICKHOUSE_PASSWORD', default: undefined, doc: 'Password of DALSTON_CLICKHOUSE_USER; unset for a server whose user has none (`./dalston up` on loopback). Never logged.', parse: str }),
  kafkaSaslMechanism: spec({ name: 'DALSTON_KAFKA_SASL_MECHANISM', default: 'none', doc: 'SASL mechanism of the Kafka connection: none, scram-sha-256, scram-sha-512 (the compose deployment) or plain. Anything but none needs DALSTON_KAFKA_USERNAME and DALSTON_KAFKA_PASSWORD.', parse: oneOf('none', 'scram-sha-256', 'scram-sha-512', 'plain') }),
  kafkaUsername: spec({ name: 'DALSTON_KAFKA_USERNAME', default: undefined, doc: 'Kafka SASL user.', parse: str }),
  kafkaPassword: spec({ name: 'DALSTON_KAFKA_PASSWORD', default: undefined, doc: 'Kafka SASL password. Never logged.', parse: str }),
  clickhouseDatabase: spec({ name: 'DALSTON_CLICKHOUSE_DATABASE', default: 'dalston', doc: 'ClickHouse database holding all Dalston tables.', parse: identifier }),
  clickhousePort: spec({ name: 'DALSTON_CLICKHOUSE_PORT', default: '8123', doc: 'HTTP port of the ClickHouse server that `./dalston up` starts (its native TCP port is the next one).', parse: port }),
  apiKey: spec({ name: 'DALSTON_API_KEY', default: undefined, doc: 'API key clients send as `Authorization: Bearer <key>`. `./dalston up` generates one into `$DALSTON_HOME/api-key` when unset.', parse: str }),
  gatewayPort: spec({ name: 'DALSTON_GATEWAY_PORT', default: '8000', doc: 'HTTP port of the gateway (API, /health, /ready, /metrics).', parse: port }),
  bindHost: spec({ name: 'DALSTON_BIND_HOST', default: '127.0.0.1', doc: 'Address every HTTP listener binds to (0.0.0.0 in containers).', parse: str }),
  tlsCertFile: spec({ name: 'DALSTON_TLS_CERT_FILE', default: undefined, doc: 'PEM certificate (chain) of the gateway: with `DALSTON_TLS_KEY_FILE` the gateway serves HTTPS and WSS on its port. Set both or neither.', parse: readableFile }),
  tlsKeyFile: spec({ name: 'DALSTON_TLS_KEY_FILE', default: undefined, doc: 'PEM private key matching `DALSTON_TLS_CERT_FILE`. Set both or neither.', parse: readableFile }),
  supervisorPort: spec({ name: 'DALSTON_SUPERVISOR_PORT', default: '8099', doc: 'HTTP port of `./dalston up`\'s supervisor on loopback (/health, /metrics with `dalston_supervisor_restarts_total{service}`).', parse: port }),
  actorsPort: spec({ name: 'DALSTON_ACTORS_PORT', default: '8001', doc: 'HTTP port of the actor host (/health, /ready, /metrics).', parse: port }),
  enginePort: spec({ name: 'DALSTON_ENGINE_PORT', default: '8010', doc: 'HTTP port of an engine process (/health, /ready, /metrics); `./dalston up` gives each engine the next free port from here.', parse: port }),
  logLevel: spec({ name: 'DALSTON_LOG_LEVEL', default: 'info', doc: 'pino log level: fatal, error, warn, info, debug, trace, silent.', parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent') }),
  storageBackend: spec({ name: 'DALSTON_STORAGE_BACKEND', default: 'fs', doc: 'Artifact store: `fs` (under `$DALSTON_HOME/artifacts`) or `s3`.', parse: oneOf('fs', 's3') }),
  s3Bucket: spec({ name: 'DALSTON_S3_BUCKET', default: 'dalston', doc: 'Bucket of the S3 artifact store.', parse: str }),
  s3Endpoint: spec({ name: 'DALSTON_S3_ENDPOINT', default: undefined, doc: 'Endpoint URL of an S3-compatible store (unset: AWS).', parse: httpUrl }),
  s3Region: spec({ name: 'DALSTON_S3_REGION', default: 'us-east-1', doc: 'Region of the S3 artifact store.', parse: str }),
  transcribeEngine: spec({ name: 'DALSTON_TRANSCRIBE_ENGINE', default: 'stt-batch-transcribe-onnx-moonshine-tiny', doc: 'Transcribe engine for jobs that name no model (or `auto`): the most accurate installed English model by default (see `npm run bench:asr`).', parse: str }),
  retryBaseDelayMs: spec({ name: 'DALSTON_TASK_RETRY_DELAY_MS', default: '1000', doc: 'First retry delay of a failed task in ms; doubles per retry.', parse: intRange(0, 3_600_000) }),
  faultInjection: spec({ name: 'DALSTON_FAULT_INJECTION', default: undefined, doc: 'Testing only: `fail-attempts:N` makes an engine fail (retryably) the first N attempts of every task; `slow:MS` adds MS of (cancellable) work to every task; `hang` makes it hang until cancelled.', parse: str }),
  engineConcurrency: spec({ name: 'DALSTON_ENGINE_CONCURRENCY', default: '1', doc: 'Tasks one engine process runs at once.', parse: intRange(1, 64) }),
  maxQueuedTasks: spec({ name: 'DALSTON_MAX_QUEUED_TASKS', default: '10000', doc: 'Tasks the engine queues may hold (summed over engines, sampled every 2 s) before the gateway refuses new HTTP jobs with 503 and a Retry-After from the measured drain rate; the upload is not read. Kafka job requests are never refused: their topic is the queue. `0`: no limit.', parse: intRange(0, 100_000_000) }),
  chunkSeconds: spec({ name: 'DALSTON_CHUNK_SECONDS', default: '600', doc: 'A file longer than this is transcribed in parts of at most this length, split in pauses, that run on every transcribe engine instance in parallel and merge into one transcript. `0` transcribes every file in one task.', parse: zeroOrRange(30, 86400) }),
  onnxThreads: spec({ name: 'DALSTON_ONNX_THREADS', default: '1', doc: 'onnxruntime intra-op threads of each neural model session (batch and streaming engines). One suits a machine whose cores are shared with other processes; raise it where an engine has cores to itself (measure with `npm run bench:asr`).', parse: intRange(1, 64) }),
  taskMaxRetries: spec({ name: 'DALSTON_TASK_MAX_RETRIES', default: '2', doc: 'Retries of a retryable task failure before its stage fails for good.', parse: intRange(0, 10) }),
  taskMinTimeoutSeconds: spec({ name: 'DALSTON_TASK_MIN_TIMEOUT_SECONDS', default: '60', doc: 'Floor of a task deadline; the deadline is max(this, audio duration x engine factor).', parse: numRange(1, 86400) }),
  taskQueueTimeoutSeconds: spec({ name: 'DALSTON_TASK_QUEUE_TIMEOUT_SECONDS', default: '1800', doc: 'A dispatched task that no engine instance picks up within this long fails its stage with DALSTON_ERR_QUEUE_TIMEOUT (no engine serves it, or all are gone).', parse: numRange(1, 7 * 86400) }),
  jobStateRetentionSeconds: spec({ name: 'DALSTON_JOB_STATE_RETENTION_SECONDS', default: '3600', doc: 'How long a finished job\'s snapshot stays in the compacted jobs.state topic (replays of its events are ignored meanwhile) before the actor host removes it with a tombstone; deleted jobs are removed at once.', parse: numRange(1, 30 * 86400) }),
  engineDrainSeconds: spec({ name: 'DALSTON_ENGINE_DRAIN_SECONDS', default: '30', doc: 'On SIGTERM an engine stops taking tasks and lets running ones finish for this long; then it gives them back (task.released) for another instance, never reporting them failed.', parse: numRange(0, 3600) }),
  // ---- real-time sessions ----
  tenantLimits: spec({ name: 'DALSTON_TENANT_LIMITS', default: undefined, doc: 'Per-tenant limits: `<tenant|*>:<limit>=<n>[,…][;…]`, e.g. `*:requests_per_minute=600;acme:requests_per_minute=6000,concurrent_jobs=50` (`*`: every tenant without its own entry; unset or 0: no limit). `requests_per_minute`: HTTP requests per UTC minute; `concurrent_jobs`: batch jobs queued or running; `concurrent_sessions`: real-time sessions open. Each holds across every gateway (429 with Retry-After beyond it; a refused session is closed with 4429). `audio_hours_per_day`: hours of audio (jobs and sessions) per UTC day, fractions allowed; once used up, new work is refused until midnight UTC. `retention_days`: how long jobs of the tenant are kept when they do not ask (0: kept).', parse: str }),
  gatewayId: spec({ name: 'DALSTON_GATEWAY_ID', default: undefined, doc: 'Stable id of this gateway instance (letters, digits, `-`, `_`): names its real-time reply topic `realtime.replies.<id>`. Unset: derived from the host name and port, stable across restarts of the same slot.', parse: str }),
  realtimeEnginePort: spec({ name: 'DALSTON_REALTIME_ENGINE_PORT', default: '8090', doc: 'HTTP port of a streaming (real-time) engine process (/health, /ready, /metrics); `./dalston up` gives further instances the next ports.', parse: port }),
  realtimeEngines: spec({ name: 'DALSTON_REALTIME_ENGINES', default: '1', doc: 'Streaming engine processes `./dalston up` starts (each serves sessions of any installed model).', parse: intRange(0, 64) }),
  realtimeEngineQueueFrames: spec({ name: 'DALSTON_REALTIME_ENGINE_QUEUE_FRAMES', default: '3000', doc: 'Input messages (about 100 ms of audio each) a streaming engine queues per session before it stops reading that session\'s partition (backpressure; 3000 ≈ 5 minutes).', parse: intRange(10, 1_000_000) }),
  realtimeDecodeConcurrency: spec({ name: 'DALSTON_REALTIME_DECODE_CONCURRENCY', default: '1', doc: 'Decodes a streaming engine runs at once across its sessions (finals first, then partials oldest first). onnxruntime-node runs inference on the event loop, so more than one only interleaves them.', parse: intRange(1, 64) }),
  realtimePartialMaxWaitMs: spec({ name: 'DALSTON_REALTIME_PARTIAL_MAX_WAIT_MS', default: '500', doc: 'Longest a partial decode may wait for its turn in a streaming engine before it gives way (skipped; finals never are).', parse: intRange(0, 60_000) }),
  realtimePartialSkipBehindMs: spec({ name: 'DALSTON_REALTIME_PARTIAL_SKIP_BEHIND_MS', default: '1000', doc: 'How far behind real time a streaming engine may be on a session before that session\'s partials are skipped until it catches up (finals never are).', parse: intRange(1, 3_600_000) }),
  realtimeSessionsPerEngine: spec({ name: 'DALSTON_REALTIME_SESSIONS_PER_ENGINE', default: '16', doc: 'Sessions one streaming engine serves at once; global capacity is this times the live engine instances.', parse: intRange(1, 100_000) }),
  realtimeModel: spec({ name: 'DALSTON_REALTIME_MODEL', default: 'moonshine-tiny', doc: 'Model of a session that names none: the best streaming-capable installed recogniser.', parse: str }),
  realtimeMaxSessionsPerKey: spec({ name: 'DALSTON_REALTIME_MAX_SESSIONS_PER_KEY', default: '32', doc: 'Concurrent real-time sessions one API key may hold (further connections are refused with close code 4429).', parse: intRange(1, 1_000_000) }),
  realtimeIdleTimeoutSeconds: spec({ name: 'DALSTON_REALTIME_IDLE_TIMEOUT_SECONDS', default: '30', doc: 'A session that receives no message (audio, control or keep-alive) and makes no transcription progress for this long is closed with 4408 (a client waiting for a loaded engine to finish its audio is not idle).', parse: numRange(1, 86400) }),
  realtimeMaxSessionSeconds: spec({ name: 'DALSTON_REALTIME_MAX_SESSION_SECONDS', default: '14400', doc: 'Longest a real-time session may last (wall time); then it is finalised and closed with 4413.', parse: numRange(1, 7 * 86400) }),
  realtimeMaxFrameBytes: spec({ name: 'DALSTON_REALTIME_MAX_FRAME_BYTES', default: '262144', doc: 'Largest WebSocket message a real-time client may send; a bigger one closes the session with 1009.', parse: intRange(1024, 16_777_216) }),
  realtimeLagWarnSeconds: spec({ name: 'DALSTON_REALTIME_LAG_WARN_SECONDS', default: '3', doc: 'Audio received minus audio processed beyond which the client gets a `warning`.', parse: numRange(0.1, 3600) }),
  realtimeLagCloseSeconds: spec({ name: 'DALSTON_REALTIME_LAG_CLOSE_SECONDS', default: '5', doc: 'Lag that, held for 5 s without shrinking, closes the session with 4010 (the server cannot keep up).', parse: numRange(0.1, 3600) }),
  realtimeRetention: spec({ name: 'DALSTON_REALTIME_RETENTION', default: 'true', doc: 'Keep real-time sessions\' audio (WAV) and transcript in the artifact store and a `realtime_sessions` row; a session may turn it off for itself.', parse: bool }),
  realtimeEndGraceSeconds: spec({ name: 'DALSTON_REALTIME_END_GRACE_SECONDS', default: '30', doc: 'How long a session actor waits for the other side once the engine ended or the gateway closed a session; then it ends the session anyway (status `interrupted` when the gateway never reported).', parse: numRange(1, 86400) }),
  realtimeTokenTtlSeconds: spec({ name: 'DALSTON_REALTIME_TOKEN_TTL_SECONDS', default: '60', doc: 'Lifetime of a single-use real-time token from `POST /v1/realtime/tokens` (at most 60).', parse: numRange(1, 60) }),
  heartbeatSeconds: spec({ name: 'DALSTON_ENGINE_HEARTBEAT_SECONDS', default: '5', doc: 'How often a running task reports it is alive; the actor presumes a worker dead after three missed beats.', parse: numRange(0.1, 600) }),
  uploadMaxBytes: spec({ name: 'DALSTON_UPLOAD_MAX_BYTES', default: '1073741824', doc: 'Largest accepted upload in bytes.', parse: intRange(1, 2 ** 40) }),
  urlAllowHosts: spec({ name: 'DALSTON_URL_ALLOW_HOSTS', default: undefined, doc: 'Comma-separated host names, addresses and CIDR blocks that audio URLs (`audio_url`, ElevenLabs `cloud_storage_url`, Deepgram `{"url": …}`) may point at although they are private, loopback or link-local; every other non-public target is refused (SSRF protection), redirects included.', parse: allowList }),
  bodyIdleTimeoutSeconds: spec({ name: 'DALSTON_BODY_IDLE_TIMEOUT_SECONDS', default: '60', doc: 'A request body (an upload) that sends nothing for this long is abandoned: 408 `request_timeout`, the connection closed, nothing stored.', parse: numRange(1, 3600) }),
  urlFetchTimeoutSeconds: spec({ name: 'DALSTON_URL_FETCH_TIMEOUT_SECONDS', default: '300', doc: 'Longest a fetch of audio from a URL may take, redirects and body included; longer → 400 `url_fetch_failed`. Its size limit is DALSTON_UPLOAD_MAX_BYTES.', parse: numRange(1, 86400) }),
  openAiModelAliases: spec({ name: 'DALSTON_OPENAI_MODEL_ALIASES', default: 'whisper-1=auto,gpt-4o-transcribe=auto,gpt-4o-mini-transcribe=auto', doc: 'OpenAI model names accepted by `POST /v1/audio/transcriptions` and the model each runs on (`auto`: the default, DALSTON_TRANSCRIBE_ENGINE). A target must be a model id of `GET /v1/models`; the gateway refuses to start otherwise.', parse: modelAliases }),
  kafkaInlineAudioMaxBytes: spec({ name: 'DALSTON_KAFKA_INLINE_AUDIO_MAX_BYTES', default: '786432', doc: 'Largest decoded inline audio a Kafka job request (topic `jobs.requests`) may carry; a larger one is dead-lettered with the reason. Kafka refuses records over 1 MB unless the topic allows more.', parse: intRange(1, 64 * 1024 * 1024) }),
  webhooksPort: spec({ name: 'DALSTON_WEBHOOKS_PORT', default: '8002', doc: 'HTTP port of the webhook worker (/health, /ready, /metrics).', parse: port }),
  webhookAllowHosts: spec({ name: 'DALSTON_WEBHOOK_ALLOW_HOSTS', default: undefined, doc: 'Comma-separated host names, addresses and CIDR blocks that webhook targets (endpoints, a job\'s `webhook_url`) may point at although they are private, loopback or link-local. Every other non-public target is refused when it is registered and again at every delivery (against DNS rebinding).', parse: allowList }),
  webhookRetryBaseSeconds: spec({ name: 'DALSTON_WEBHOOK_RETRY_BASE_SECONDS', default: '5', doc: 'Back-off after a webhook\'s first failed attempt; it doubles with every further failure (with jitter: between half and all of it) up to DALSTON_WEBHOOK_RETRY_MAX_SECONDS.', parse: numRange(0.05, 86400) }),
  webhookRetryMaxSeconds: spec({ name: 'DALSTON_WEBHOOK_RETRY_MAX_SECONDS', default: '3600', doc: 'Longest back-off between two attempts of a webhook delivery.', parse: numRange(0.05, 7 * 86400) }),
  webhookMaxAttempts: spec({ name: 'DALSTON_WEBHOOK_MAX_ATTEMPTS', default: '15', doc: 'Attempts of one webhook delivery, the first included, before it is logged as failed (with the defaults, about 8 hours of retries).', parse: intRange(1, 100) }),
  webhookTimeoutSeconds: spec({ name: 'DALSTON_WEBHOOK_TIMEOUT_SECONDS', default: '15', doc: 'How long a webhook receiver has to answer one attempt; no answer counts as a failed attempt.', parse: numRange(0.1, 300) }),
  webhookMaxInFlight: spec({ name: 'DALSTON_WEBHOOK_MAX_IN_FLIGHT', default: '32', doc: 'Webhook attempts one worker makes at once; due deliveries beyond it wait their turn.', parse: intRange(1, 10_000) }),
  webhookSecretOverlapSeconds: spec({ name: 'DALSTON_WEBHOOK_SECRET_OVERLAP_SECONDS', default: '86400', doc: 'After `POST /v1/webhooks/{id}/rotate-secret`, how long the previous secret still signs deliveries beside the new one (receivers switch over in that window).', parse: numRange(0, 30 * 86400) }),
  purgeIntervalSeconds: spec({ name: 'DALSTON_PURGE_INTERVAL_SECONDS', default: '60', doc: 'How often the purge worker of each gateway looks for ended jobs whose retention (the `retention` field, or `retention_days` of the tenant in DALSTON_TENANT_LIMITS) has run out, and deletes their artifacts, rows and `jobs.state` record.', parse: numRange(0.1, 86400) }),
  syncTimeoutSeconds: spec({ name: 'DALSTON_SYNC_TIMEOUT_SECONDS', default: '600', doc: 'How long a synchronous transcription request (an OpenAI model name on `POST /v1/audio/transcriptions`, ElevenLabs `POST /v1/speech-to-text`) waits for its job to end before answering 504; the job itself continues.', parse: numRange(1, 86400) }),
  engines: spec({ name: 'DALSTON_ENGINES', default: 'auto', doc: 'Engine ids `./dalston up` starts, comma-separated (one process each); `auto`: audio-prepare, the VAD (`silero-vad-v5`) when its model is installed, one transcribe engine per installed recogniser, and merge.', parse: str }),
  otelEnabled: spec({ name: 'DALSTON_OTEL_ENABLED', default: 'false', doc: 'Export OpenTelemetry traces over OTLP http/protobuf to `OTEL_EXPORTER_OTLP_ENDPOINT` (default http://localhost:4318).', parse: bool }),
  cloudMetadata: spec({ name: 'DALSTON_CLOUD_METADATA', default: 'none', doc: 'Read the cloud instance id for traces: `none` or `aws` (IMDSv2).', parse: oneOf('none', 'aws') }),
  imdsEndpoint: spec({ name: 'DALSTON_IMDS_ENDPOINT', default: 'http://169.254.169.254', doc: 'Instance metadata endpoint used when DALSTON_CLOUD_METADATA=aws.', parse: httpUrl }),
  serviceName: spec({ name: 'DALSTON_SERVICE_NAME', default: undefined, doc: 'OpenTelemetry `service.name` of this process (dalston-gateway, dalston-orchestrator, dalston-engine, dalston-realtime, dalston-webhooks); set by the launcher.', parse: oneOf('dalston-gateway', 'dalston-orchestrator', 'dalston-engine', 'dalston-realtime', 'dalston-webhooks') }),
  engineId: spec({ name: 'DALSTON_ENGINE_ID', default: undefined, doc: 'Engine id of an engine process (e.g. audio-prepare); exported as the `dalston.engine_id` resource attribute; set by the launcher.', parse: str }),
  otelSpanStore: spec({ name: 'DALSTON_OTEL_SPAN_STORE', default: 'none', doc: 'Also write spans to the ClickHouse `spans` table (`clickhouse`) so a stack without Jaeger can show a job waterfall; needs DALSTON_OTEL_ENABLED=true. Set OTEL_TRACES_EXPORTER=none to keep only this store.', parse: oneOf('none', 'clickhouse') }),
} as const;

type Vars = typeof VARIABLES;
type Parsed<S> = S extends VariableSpec<infer T> ? T : never;
type Optionality<S> = S extends { default: string } ? Parsed<S> : Parsed<S> | undefined;

export type DalstonConfig = { readonly [K in keyof Vars]: Optionality<Vars[K]> } & { readonly repoRoot: string; readonly homeDir: string };

/** Repository root: two levels above this file's compiled location (dist/core/config.js). */
export const REPO_ROOT = resolve(new URL('.', import.meta.url).pathname, '..', '..');

/** The Kafka SASL settings of a configuration, or undefined for an unauthenticated connection. */
export function kafkaSasl(config: Pick<DalstonConfig, 'kafkaSaslMechanism' | 'kafkaUsername' | 'kafkaPassword'>): KafkaSasl | undefined {
  if (config.kafkaSaslMechanism === 'none' || config.kafkaUsername === undefined || config.kafkaPassword === undefined) return undefined;
  return { mechanism: config.kafkaSaslMechanism, username: config.kafkaUsername, password: config.kafkaPassword };
}

export interface KafkaSasl {
  readonly mechanism: 'scram-sha-256' | 'scram-sha-512' | 'plain';
  readonly username: string;
  readonly password: string;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): DalstonConfig {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(VARIABLES) as [string, VariableSpec<unknown>][]) {
    const raw = env[s.name];
    const value = raw !== undefined && raw !== '' ? raw : s.default;
    out[key] = value === undefined ? undefined : s.parse(value, s.name);
  }
  const [cert, key] = [VARIABLES.tlsCertFile.name, VARIABLES.tlsKeyFile.name];
  if ((out['tlsCertFile'] === undefined) !== (out['tlsKeyFile'] === undefined)) {
    const [set, unset] = out['tlsCertFile'] === undefined ? [key, cert] : [cert, key];
    throw new ConfigError(`${unset} must be set when ${set} is: TLS needs both the certificate and its key (or neither)`);
  }
  if (out['kafkaSaslMechanism'] !== 'none' && (out['kafkaUsername'] === undefined || out['kafkaPassword'] === undefined)) {
    throw new ConfigError(`${VARIABLES.kafkaSaslMechanism.name}=${String(out['kafkaSaslMechanism'])} needs ${VARIABLES.kafkaUsername.name} and ${VARIABLES.kafkaPassword.name}`);
  }
  const homeDir = resolve(REPO_ROOT, out['home'] as string);
  return { ...(out as { [K in keyof Vars]: Optionality<Vars[K]> }), repoRoot: REPO_ROOT, homeDir };
}
