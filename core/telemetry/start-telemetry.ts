/**
 * Second preload of every Dalston process (after register-hooks.js, before the app): starts tracing when
 * DALSTON_OTEL_ENABLED is true and does nothing else otherwise. On SIGTERM/SIGINT: if the app has its own handler
 * for the signal (core/service.ts does), it only flushes, and the app calls `shutdownTelemetry()` at the end of its
 * drain so the drain's spans are exported too; if not, it flushes, stops the SDK and re-raises the signal so the
 * default exit happens.
 */
import { loadConfig } from '../config.js';
import { startTelemetry, telemetryOptionsFromConfig, type TelemetryHandle } from './telemetry-sdk.js';

function installSignalHandlers(handle: TelemetryHandle): void {
  const onSignal = (signal: NodeJS.Signals) => {
    // Our `once` listener is already removed here, so any listener left is the app's own drain.
    if (process.listenerCount(signal) > 0) {
      // The app drains and then calls shutdownTelemetry(); shutting down now would drop the spans of its drain.
      // Flush what has ended so far, in case the drain never finishes.
      void handle.forceFlush().catch(() => undefined);
      return;
    }
    // No app handler: flush, stop, then re-raise so the signal's default action (exit) happens.
    void handle.shutdown().finally(() => process.kill(process.pid, signal));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}

function main(): void {
  let options;
  try {
    options = telemetryOptionsFromConfig(loadConfig());
  } catch (error) {
    // The app reads the same configuration and reports the bad variable itself; start without tracing.
    process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'telemetry not started: bad configuration', err: error instanceof Error ? error.message : String(error) })}\n`);
    return;
  }
  if (options === undefined) return;
  installSignalHandlers(startTelemetry(options));
}

main();
