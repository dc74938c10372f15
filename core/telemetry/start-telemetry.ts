/**
 * Second preload of every Dalston process (after register-hooks.js, before the app): starts tracing when
 * DALSTON_OTEL_ENABLED is true and does nothing else otherwise. On SIGTERM/SIGINT it flushes the spans; if the app
 * registered no handler of its own for that signal, it then re-raises the signal so the default exit happens.
 * Apps with their own drain should `await shutdownTelemetry()` (telemetry-sdk.ts) before they exit.
 */
import { loadConfig } from '../config.js';
import { startTelemetry, telemetryOptionsFromConfig, type TelemetryHandle } from './telemetry-sdk.js';

function installSignalHandlers(handle: TelemetryHandle): void {
  const onSignal = (signal: NodeJS.Signals) => {
    void handle.shutdown().finally(() => {
      // Our `once` listener is gone; with no app listener left the re-raised signal takes its default action.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
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
