/**
 * Fault injection for resilience tests and chaos drills (DALSTON_FAULT_INJECTION). It wraps a real engine:
 *   fail-attempts:N  the first N attempts of every task fail with a retryable error
 *   slow:MS          every task first waits MS milliseconds (honouring cancellation), then runs normally
 *   hang             every task waits until it is cancelled or times out
 * Unset in production; the wrapper is not applied at all then.
 */
import { CancelledError, ConfigError, DalstonError } from '../../core/errors.js';
import type { Engine, EngineResult, EngineTaskContext } from '../sdk/engine.js';

export class InjectedFaultError extends DalstonError {
  readonly code: string = 'DALSTON_ERR_INJECTED_FAULT';
  readonly retryable = true;
}

export type FaultPlan =
  | { readonly kind: 'fail-attempts'; readonly attempts: number }
  | { readonly kind: 'slow'; readonly ms: number }
  | { readonly kind: 'hang' };

export function parseFaultPlan(raw: string): FaultPlan {
  const [kind, arg, more] = raw.split(':');
  // Digits only: Number('') is 0, so `slow:` would otherwise pass as slow:0 and silently inject nothing.
  const n = arg !== undefined && more === undefined && /^\d+$/.test(arg) ? Number(arg) : Number.NaN;
  if (kind === 'fail-attempts' && Number.isSafeInteger(n)) return { kind, attempts: n };
  if (kind === 'slow' && Number.isSafeInteger(n)) return { kind, ms: n };
  if (kind === 'hang' && arg === undefined) return { kind };
  throw new ConfigError(`DALSTON_FAULT_INJECTION must be fail-attempts:N, slow:MS or hang, got "${raw}"`);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason instanceof Error ? signal.reason : new CancelledError('task cancelled'));
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new CancelledError('task cancelled'));
    }, { once: true });
  });
}

export function withFaults(engine: Engine, plan: FaultPlan): Engine {
  return {
    engineId: engine.engineId,
    stage: engine.stage,
    ...(engine.start ? { start: () => engine.start!() } : {}),
    ...(engine.close ? { close: () => engine.close!() } : {}),
    async process(ctx: EngineTaskContext): Promise<EngineResult> {
      switch (plan.kind) {
        case 'fail-attempts':
          if (ctx.attempt <= plan.attempts) throw new InjectedFaultError(`injected failure of attempt ${ctx.attempt}`);
          break;
        case 'slow':
          await sleep(plan.ms, ctx.signal);
          break;
        case 'hang':
          await sleep(2 ** 31 - 1, ctx.signal);
          break;
      }
      return engine.process(ctx);
    },
  };
}
