/**
 * A dialect's session options resolved against the server's defaults into the internal session configuration
 * (streams/realtime-messages.ts). Pure.
 */
import type { AudioInputFormat } from '../../engines/streaming/index.js';
import type { RealtimeDialect, RealtimeSessionConfig } from '../../streams/index.js';
import type { SessionOptions } from './dialect.js';
import { effectiveRetention } from '../retention.js';

export interface SessionDefaults {
  readonly model: string;
  readonly retention: boolean;
  /** A tenant's default retention in days (0: keep until deleted), as for jobs. */
  readonly retentionDays?: (tenantId: string) => number;
}

export function formatLabel(f: AudioInputFormat): string {
  return `${f.encoding}/${f.sampleRate}/${f.channels ?? 1}`;
}

export function resolveSessionConfig(options: SessionOptions, format: AudioInputFormat, dialect: RealtimeDialect, d: SessionDefaults, tenantId: string): RealtimeSessionConfig {
  const o = options;
  const retention = o.retention ?? d.retention;
  // Kept data follows the same rules as a job's: its own duration, else the tenant's retention_days, else kept.
  const retentionSeconds = retention ? effectiveRetention(o.retentionSeconds, d.retentionDays?.(tenantId) ?? 0) : undefined;
  return {
    model: o.model ?? d.model,
    ...(o.language !== undefined && { language: o.language }),
    commitStrategy: o.commitStrategy ?? 'vad',
    partials: o.partials ?? true,
    ...(o.vadThreshold !== undefined && { vadThreshold: o.vadThreshold }),
    ...(o.minSpeechMs !== undefined && { minSpeechMs: o.minSpeechMs }),
    ...(o.minSilenceMs !== undefined && { minSilenceMs: o.minSilenceMs }),
    ...(o.speechPadMs !== undefined && { speechPadMs: o.speechPadMs }),
    ...(o.maxUtteranceMs !== undefined && { maxUtteranceMs: o.maxUtteranceMs }),
    retention,
    ...(retentionSeconds !== undefined && { retentionSeconds }),
    enhanceOnEnd: o.enhanceOnEnd ?? false,
    ...(o.enhanceModel !== undefined && { enhanceModel: o.enhanceModel }),
    inputFormat: formatLabel(format),
    dialect,
  };
}

/** The session's configuration as options again (what `session.begin` reports). */
export function optionsOf(c: RealtimeSessionConfig): SessionOptions {
  return {
    model: c.model,
    ...(c.language !== undefined && { language: c.language }),
    commitStrategy: c.commitStrategy,
    partials: c.partials,
    ...(c.vadThreshold !== undefined && { vadThreshold: c.vadThreshold }),
    ...(c.minSpeechMs !== undefined && { minSpeechMs: c.minSpeechMs }),
    ...(c.minSilenceMs !== undefined && { minSilenceMs: c.minSilenceMs }),
    ...(c.speechPadMs !== undefined && { speechPadMs: c.speechPadMs }),
    ...(c.maxUtteranceMs !== undefined && { maxUtteranceMs: c.maxUtteranceMs }),
    retention: c.retention,
    ...(c.retentionSeconds !== undefined && { retentionSeconds: c.retentionSeconds }),
    enhanceOnEnd: c.enhanceOnEnd,
    ...(c.enhanceModel !== undefined && { enhanceModel: c.enhanceModel }),
  };
}

/** Options changed by a `configure` command merged over the current ones. */
export function mergeOptions(current: SessionOptions, change: SessionOptions | undefined): SessionOptions {
  if (!change) return current;
  const out: Record<string, unknown> = { ...current };
  for (const [k, v] of Object.entries(change)) if (v !== undefined) out[k] = v;
  return out;
}
