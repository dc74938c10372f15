/**
 * Where a transcriber's decodes run when a host shares its recognisers among many sessions (the streaming engine's
 * DecodeScheduler). The gate decides when a decode runs and may drop a partial that would come too late; it never
 * drops a final. Without a gate a transcriber calls its recogniser directly.
 */

export type DecodeKind = 'partial' | 'final';

export type GateOutcome<T> =
  /** The work ran; `queuedMs` is how long it waited for its turn. */
  | { readonly ran: true; readonly value: T; readonly queuedMs: number }
  /** A partial that gave way (the host was too busy for it to be useful); finals are never dropped. */
  | { readonly ran: false; readonly queuedMs: number };

export interface DecodeRequest {
  readonly kind: DecodeKind;
  /** The caller's prediction of the work's run time: judges whether a partial can still be useful. */
  readonly estimatedMs: number;
  /** The utterance's first partial: what a listener waits for most, and the cheapest (shortest audio). */
  readonly firstOfUtterance?: boolean;
}

export interface DecodeGate {
  /** Runs `work` when its turn comes. Rejects with CancelledError when `signal` aborts while it waits. */
  run<T>(request: DecodeRequest, work: () => Promise<T>, signal?: AbortSignal): Promise<GateOutcome<T>>;
  /** The queueing delay decodes meet now, in ms: the partial cadence stretches by it, so partials give way first. */
  queueDelayMs(): number;
}
