/**
 * Process lifecycle shared by every long-running Dalston process: start, then on SIGTERM/SIGINT drain and exit 0;
 * a configuration or start-up error is one clear log line and exit 1, never a stack trace on the console.
 */
import { ConfigError, DalstonError } from './errors.js';
import { loadConfig, type DalstonConfig } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { shutdownTelemetry } from './telemetry/telemetry-sdk.js';

export interface RunningService {
  close(): Promise<void>;
}

export function runService(service: string, start: (config: DalstonConfig, log: Logger) => Promise<RunningService>): void {
  let config: DalstonConfig;
  try {
    config = loadConfig();
  } catch (err) {
    process.stderr.write(`${service}: ${err instanceof ConfigError ? err.message : String(err)}\n`);
    process.exit(1);
  }
  const log = createLogger({ service, level: config.logLevel });
  let running: RunningService | undefined;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    const hardStop = setTimeout(() => {
      log.error({}, 'drain took too long; exiting');
      process.exit(1);
    }, 45_000);
    hardStop.unref();
    void (async () => {
      try {
        await running?.close();
        await shutdownTelemetry();
        log.info({}, 'stopped');
        process.exit(0);
      } catch (err) {
        log.error({ err: String(err) }, 'stop failed');
        process.exit(1);
      }
    })();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('unhandledRejection', (err) => log.error({ err: err instanceof Error ? err.stack ?? err.message : String(err) }, 'unhandled rejection'));
  start(config, log)
    .then((r) => {
      running = r;
      if (stopping) void r.close();
    })
    .catch((err: unknown) => {
      const msg = err instanceof DalstonError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
      log.error({ err: msg }, 'failed to start');
      process.exit(1);
    });
}
