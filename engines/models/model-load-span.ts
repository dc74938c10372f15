/**
 * Runs a model load inside the contract's `engine.model_load` span (a no-op without a tracer provider), so a
 * trace shows when a task paid for loading weights, and records the duration for the caller's metric.
 */
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { ATTR, SERVICE, SPAN } from '../../core/observability-names.js';

export interface ModelLoadTiming<T> {
  readonly value: T;
  readonly seconds: number;
}

export async function withModelLoadSpan<T>(modelId: string, load: () => Promise<T>): Promise<ModelLoadTiming<T>> {
  const tracer = trace.getTracer(SERVICE.engine);
  return tracer.startActiveSpan(SPAN.engineModelLoad, { attributes: { [ATTR.model]: modelId } }, async (span) => {
    const started = performance.now();
    try {
      const value = await load();
      return { value, seconds: (performance.now() - started) / 1000 };
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      if (err instanceof Error) span.recordException(err);
      throw err;
    } finally {
      span.end();
    }
  });
}
