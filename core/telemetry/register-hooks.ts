/**
 * First preload of every Dalston process: registers OpenTelemetry's ESM loader hook so that modules imported
 * afterwards (kafkajs, pino, http) can be patched. Without it, under ES modules, kafkajs and pino are silently
 * not instrumented (see ../shared/platform-notes.md). Launch order:
 *
 *   node --import ./dist/core/telemetry/register-hooks.js --import ./dist/core/telemetry/start-telemetry.js dist/<app>/main.js
 *
 * Registering the hook is cheap, so it runs even when tracing is off.
 */
import { register } from 'node:module';

register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
