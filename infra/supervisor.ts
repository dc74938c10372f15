/**
 * Keeps `./dalston up`'s services running like a process manager: a service that exits unexpectedly is started
 * again on its port after a back-off (1 s, doubling to 30 s), the restart is logged and counted
 * (`dalston_supervisor_restarts_total{service}`), and only a crash loop (more than `maxRestarts` crashes of one
 * service within `windowMs`) gives up and stops the stack. The durability lives in Kafka (job and session actors
 * restore from their state topics), so a restarted process resumes the work its predecessor had.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../core/logger.js';
import type { ServiceProcess, ServiceSpec } from './service-launcher.js';

export interface RestartPolicy {
  /** First back-off; doubles with each crash inside the window. @default 1000 */
  readonly baseDelayMs: number;
  /** @default 30_000 */
  readonly maxDelayMs: number;
  /** Crashes of one service inside `windowMs` that are still restarted; one more is a crash loop. @default 5 */
  readonly maxRestarts: number;
  /** @default 300_000 (five minutes) */
  readonly windowMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = { baseDelayMs: 1000, maxDelayMs: 30_000, maxRestarts: 5, windowMs: 300_000 };

export type RestartDecision =
  | { readonly kind: 'restart'; readonly delayMs: number; readonly recentCrashes: number }
  | { readonly kind: 'give_up'; readonly recentCrashes: number };

/** What to do about a crash at `now`, given the service's crash times before it. Pure. */
export function restartDecision(previousCrashes: readonly number[], now: number, policy: RestartPolicy = DEFAULT_RESTART_POLICY): RestartDecision {
  const recentCrashes = previousCrashes.filter((t) => now - t < policy.windowMs).length + 1;
  if (recentCrashes > policy.maxRestarts) return { kind: 'give_up', recentCrashes };
  const delayMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (recentCrashes - 1));
  return { kind: 'restart', delayMs, recentCrashes };
}

export interface SupervisorOptions {
  readonly launch: (spec: ServiceSpec) => ServiceProcess;
  readonly log: Logger;
  /** Where the restart counter and the up gauge are registered (served on the supervisor's /metrics). */
  readonly registry: Registry;
  readonly policy?: RestartPolicy;
  /** Called once when a service crash-loops: the caller stops everything. */
  readonly onCrashLoop: (service: string, crashes: number) => void;
  /** How long a restarted service has to answer /health before its start counts as failed. @default 60_000 */
  readonly healthTimeoutMs?: number;
  readonly now?: () => number;
}

interface Slot {
  current: ServiceProcess;
  crashes: number[];
  timer?: NodeJS.Timeout;
}

export class Supervisor {
  readonly #o: SupervisorOptions;
  readonly #slots = new Map<string, Slot>();
  readonly #restarts: Counter<'service'>;
  readonly #up: Gauge<'service'>;
  #stopping = false;
  #gaveUp = false;

  constructor(options: SupervisorOptions) {
    this.#o = options;
    this.#restarts = new Counter({ name: 'dalston_supervisor_restarts_total', help: 'Services restarted by ./dalston up after an unexpected exit.', labelNames: ['service'], registers: [options.registry] });
    this.#up = new Gauge({ name: 'dalston_supervisor_service_up', help: '1 while the service process runs, 0 while it waits for a restart.', labelNames: ['service'], registers: [options.registry] });
  }

  /** Launches every service (in order) and waits until all answer /health; a failure here is not restarted. */
  async start(specs: readonly ServiceSpec[], healthTimeoutMs: number): Promise<void> {
    for (const spec of specs) {
      this.#slots.set(spec.name, { current: this.#o.launch(spec), crashes: [] });
      this.#restarts.inc({ service: spec.name }, 0);
      this.#up.set({ service: spec.name }, 1);
    }
    await Promise.all([...this.#slots.values()].map((s) => s.current.waitHealthy(healthTimeoutMs)));
    for (const [name, slot] of this.#slots) this.#watch(name, slot, slot.current);
  }

  /** The processes running now, in start order. */
  get services(): ServiceProcess[] {
    return [...this.#slots.values()].map((s) => s.current);
  }

  #watch(name: string, slot: Slot, proc: ServiceProcess): void {
    void proc.exited.then((code) => {
      if (this.#stopping || slot.current !== proc) return;
      this.#up.set({ service: name }, 0);
      const now = (this.#o.now ?? Date.now)();
      const decision = restartDecision(slot.crashes, now, this.#o.policy);
      slot.crashes = [...slot.crashes.filter((t) => now - t < (this.#o.policy ?? DEFAULT_RESTART_POLICY).windowMs), now];
      if (decision.kind === 'give_up') {
        this.#o.log.error({ service: name, code, crashes: decision.recentCrashes, log: proc.logFile }, 'a service is crash-looping; stopping everything');
        if (!this.#gaveUp) {
          this.#gaveUp = true;
          this.#o.onCrashLoop(name, decision.recentCrashes);
        }
        return;
      }
      this.#o.log.warn({ service: name, code, restart_in_ms: decision.delayMs, crashes: decision.recentCrashes, log: proc.logFile }, 'a service exited unexpectedly; restarting it');
      slot.timer = setTimeout(() => {
        slot.timer = undefined;
        if (this.#stopping) return;
        const next = this.#o.launch(proc.spec);
        slot.current = next;
        this.#restarts.inc({ service: name });
        this.#up.set({ service: name }, 1);
        this.#watch(name, slot, next);
        next.waitHealthy(this.#o.healthTimeoutMs ?? 60_000).then(
          () => this.#o.log.info({ service: name, pid: next.pid }, 'service restarted and healthy'),
          // An exit is handled by the watch above; a process that runs but never gets healthy is only reported.
          (err: unknown) => { if (next.running) this.#o.log.error({ service: name, err: String(err) }, 'restarted service is not healthy'); },
        );
      }, decision.delayMs);
    });
  }

  /** Stops restarting, then stops every service in start order (ingress first). */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const slot of this.#slots.values()) clearTimeout(slot.timer);
    for (const slot of this.#slots.values()) await slot.current.stop();
  }
}
