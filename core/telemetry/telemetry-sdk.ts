/**
 * Starts the OpenTelemetry Node SDK for one Dalston process: traces only (metrics come from prom-client, logs go
 * to stdout as pino JSON), OTLP http/protobuf to OTEL_EXPORTER_OTLP_ENDPOINT, optional ClickHouse span store,
 * instrumentations http + kafkajs + pino, and the contract's resource attributes. Nothing here runs unless
 * DALSTON_OTEL_ENABLED is true (see start-telemetry.ts), so tracing costs nothing when off.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import type { Instrumentation } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { KafkaJsInstrumentation } from '@opentelemetry/instrumentation-kafkajs';
import { PinoInstrumentation } from '@opentelemetry/instrumentation-pino';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { envDetector, hostDetector, processDetector, resourceFromAttributes, defaultResource, type ResourceDetector } from '@opentelemetry/resources';
import { BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { DalstonConfig } from '../config.js';
import { ATTR } from '../observability-names.js';
import { ClickHouseSpanExporter, type InsertRows } from './clickhouse-span-exporter.js';
import { readEc2InstanceId } from './instance-id.js';
import { liveAudioSampler } from './live-audio-sampler.js';

/** Paths whose requests are probes and scrapes, not work: no server span for them. */
const UNTRACED_PATHS = new Set(['/metrics', '/health', '/ready']);

export interface TelemetryOptions {
  /** `service.name`: dalston-gateway, dalston-orchestrator, dalston-engine or dalston-realtime. */
  readonly serviceName: string;
  /** `service.version`. @default the version in package.json */
  readonly serviceVersion?: string;
  /** `dalston.engine_id` resource attribute, for engine processes. */
  readonly engineId?: string;
  /** `none`, or `aws` to read the EC2 instance id through IMDSv2. @default 'none' */
  readonly cloudMetadata?: 'none' | 'aws';
  /** Metadata endpoint used when cloudMetadata is `aws`. */
  readonly imdsEndpoint?: string;
  /** Export over OTLP http/protobuf (endpoint from OTEL_EXPORTER_OTLP_ENDPOINT / _TRACES_ENDPOINT). @default true */
  readonly otlp?: boolean;
  /** Also write spans to the ClickHouse `spans` table through this insert function. */
  readonly spanStoreInsert?: InsertRows;
  /** Releases what spanStoreInsert holds (connections); called after the last export on shutdown. */
  readonly spanStoreClose?: () => Promise<void>;
  /**
   * Extra exporters, each behind a SimpleSpanProcessor: tests pass an InMemorySpanExporter here. Call
   * handle.forceFlush() before reading it: export waits for the resource's asynchronous attributes.
   */
  readonly extraExporters?: readonly SpanExporter[];
  /** @default http (probes untraced, outgoing spans only under a parent), kafkajs, pino (correlation only) */
  readonly instrumentations?: readonly Instrumentation[];
}

/** The running SDK of this process. */
export interface TelemetryHandle {
  readonly serviceName: string;
  /** `service.instance.id` of this process. */
  readonly serviceInstanceId: string;
  /** Resolves to the EC2 instance id once IMDS has answered (undefined when off or absent). */
  readonly cloudInstanceId: Promise<string | undefined>;
  /** Exports every ended span now. */
  forceFlush(): Promise<void>;
  /** Flushes and stops; idempotent; gives up after timeoutMs. */
  shutdown(timeoutMs?: number): Promise<void>;
}

export function packageVersion(repoRoot: string): string {
  try {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function defaultInstrumentations(): Instrumentation[] {
  return [
    new HttpInstrumentation({
      ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.has((req.url ?? '/').split('?')[0] ?? '/'),
      // Background HTTP (ClickHouse sink flushes, health polls) would otherwise start a root trace per call.
      requireParentforOutgoingSpans: true,
    }),
    new KafkaJsInstrumentation(),
    // Log correlation only: trace_id/span_id on every line; records go to stdout, never to an OTLP log exporter.
    new PinoInstrumentation({ disableLogSending: true }),
  ];
}

/** An InsertRows over @clickhouse/client (JSONEachRow, explicit columns as 18.16 needs). */
export function clickhouseInsert(url: string, database: string, credentials: { username?: string | undefined; password?: string | undefined } = {}): { insert: InsertRows; close: () => Promise<void> } {
  const client = createClient({
    url, database, ...(credentials.username !== undefined ? { username: credentials.username } : {}), ...(credentials.password !== undefined ? { password: credentials.password } : {}),
  });
  return {
    insert: async (table, rows, columns) => {
      const [first, ...rest] = columns;
      if (first === undefined) throw new Error('clickhouseInsert: no columns');
      await client.insert({ table, values: rows as Record<string, unknown>[], format: 'JSONEachRow', columns: [first, ...rest] });
    },
    close: () => client.close(),
  };
}

/** Options for this process from the DALSTON_* configuration, or undefined when tracing is off. */
export function telemetryOptionsFromConfig(config: DalstonConfig): TelemetryOptions | undefined {
  if (!config.otelEnabled) return undefined;
  const options: TelemetryOptions = {
    serviceName: config.serviceName ?? 'dalston-unknown',
    serviceVersion: packageVersion(config.repoRoot),
    ...(config.engineId !== undefined ? { engineId: config.engineId } : {}),
    cloudMetadata: config.cloudMetadata,
    imdsEndpoint: config.imdsEndpoint,
    otlp: process.env['OTEL_TRACES_EXPORTER']?.trim() !== 'none',
  };
  if (config.otelSpanStore !== 'clickhouse') return options;
  const store = clickhouseInsert(config.clickhouseUrl, config.clickhouseDatabase, { username: config.clickhouseUser, password: config.clickhousePassword });
  return { ...options, spanStoreInsert: store.insert, spanStoreClose: store.close };
}

let active: TelemetryHandle | undefined;

/** The handle of the SDK started in this process, if any. */
export function activeTelemetry(): TelemetryHandle | undefined {
  return active;
}

/** Flushes and stops the SDK of this process, if one runs. Apps call this at the end of their drain. */
export async function shutdownTelemetry(timeoutMs?: number): Promise<void> {
  await active?.shutdown(timeoutMs);
}

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Starts the SDK and registers it globally. Call before the app imports http, kafkajs or pino (the preload does),
 * after the ESM loader hook is registered (register-hooks.ts). A second call returns the running handle.
 */
export function startTelemetry(options: TelemetryOptions): TelemetryHandle {
  if (active) return active;
  const serviceInstanceId = randomUUID();
  const cloudMetadata = options.cloudMetadata ?? 'none';
  const cloudInstanceId: Promise<string | undefined> =
    cloudMetadata === 'aws' && options.imdsEndpoint !== undefined ? readEc2InstanceId({ endpoint: options.imdsEndpoint }) : Promise.resolve(undefined);

  // IMDS may take up to two timeouts; the SDK starts now (instrumentation must patch before the app loads) and
  // the exporters wait for these async attributes before the first export.
  const attributes = {
    'service.name': options.serviceName,
    'service.version': options.serviceVersion ?? '0.0.0',
    'service.instance.id': serviceInstanceId,
    ...(options.engineId !== undefined ? { [ATTR.engineId]: options.engineId } : {}),
    ...(cloudMetadata === 'aws'
      ? { 'cloud.provider': 'aws', 'cloud.instance.id': cloudInstanceId, 'host.id': cloudInstanceId }
      : {}),
  };
  // The host detector sets host.id from the machine id and would overwrite the instance id: drop it on AWS.
  const detectors: ResourceDetector[] = cloudMetadata === 'aws' ? [envDetector, processDetector] : [envDetector, processDetector, hostDetector];

  const processors: SpanProcessor[] = [];
  if (options.otlp ?? true) processors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
  if (options.spanStoreInsert) processors.push(new BatchSpanProcessor(new ClickHouseSpanExporter({ insert: options.spanStoreInsert })));
  for (const e of options.extraExporters ?? []) processors.push(new SimpleSpanProcessor(e));

  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    resource: defaultResource().merge(resourceFromAttributes(attributes)),
    resourceDetectors: detectors,
    spanProcessors: processors,
    // Parent-based, always on, minus the real-time audio frames' own traces; OTEL_TRACES_SAMPLER, when set, wins.
    ...(process.env['OTEL_TRACES_SAMPLER'] === undefined && { sampler: liveAudioSampler() }),
    // OTEL_METRICS_EXPORTER=none and OTEL_LOGS_EXPORTER=none, whatever the environment says.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [...(options.instrumentations ?? defaultInstrumentations())],
  });
  sdk.start();

  let stopping: Promise<void> | undefined;
  const handle: TelemetryHandle = {
    serviceName: options.serviceName,
    serviceInstanceId,
    cloudInstanceId,
    forceFlush: async () => {
      await Promise.all(processors.map((p) => p.forceFlush()));
    },
    shutdown: (timeoutMs = 5000) => {
      stopping ??= withTimeout(
        sdk
          .shutdown()
          .catch(() => undefined)
          .then(() => options.spanStoreClose?.())
          .catch(() => undefined),
        timeoutMs,
      ).finally(() => {
        if (active === handle) active = undefined;
      });
      return stopping;
    },
  };
  active = handle;
  return handle;
}
