/**
 * EC2 instance id through IMDSv2: PUT a session token, then GET the id with it. Each call has its own 1 s
 * timeout and any failure (no server, refused, slow, non-200, empty body) yields undefined, so a process off
 * EC2 starts without the attribute and without waiting longer than the timeouts. The endpoint is injected
 * (DALSTON_IMDS_ENDPOINT); tests point it at a loopback fake and never at the real link-local address.
 */
import type { TimerClock } from '../clock.js';

export interface InstanceIdOptions {
  /** Base URL of the metadata service, e.g. http://169.254.169.254 (no trailing slash needed). */
  readonly endpoint: string;
  /** Timeout of each of the two calls. @default 1000 */
  readonly timeoutMs?: number;
  /** Lifetime requested for the session token. @default 21600 */
  readonly tokenTtlSeconds?: number;
  /** Runs the timeouts; tests pass a ManualClock. @default real time, timers that do not keep the process alive */
  readonly clock?: TimerClock;
  /** The HTTP client; tests wrap the global one to see when an answer's headers arrived. @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

const DEFAULT_TIMEOUT_MS = 1000;
const DEFAULT_TOKEN_TTL_SECONDS = 21600;

/** As AbortSignal.timeout(): a pending lookup does not hold a process that is otherwise done. */
const unrefClock: TimerClock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

interface Caller {
  readonly fetch: typeof fetch;
  readonly clock: TimerClock;
  readonly timeoutMs: number;
}

async function call(c: Caller, url: string, init: RequestInit): Promise<string | undefined> {
  const abort = new AbortController();
  const timer = c.clock.setTimer(() => abort.abort(new Error(`no answer within ${c.timeoutMs} ms`)), c.timeoutMs);
  try {
    const res = await c.fetch(url, { ...init, signal: abort.signal });
    // The body is read under the same signal, so a server that sends headers and then stalls still times out.
    const body = (await res.text()).trim();
    return res.ok && body.length > 0 ? body : undefined;
  } catch {
    return undefined;
  } finally {
    timer.cancel();
  }
}

/** Returns the instance id, or undefined on any failure. Never throws. */
export async function readEc2InstanceId(options: InstanceIdOptions): Promise<string | undefined> {
  const base = options.endpoint.replace(/\/+$/, '');
  const c: Caller = { fetch: options.fetch ?? fetch, clock: options.clock ?? unrefClock, timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS };
  const token = await call(c, `${base}/latest/api/token`, {
    method: 'PUT',
    headers: { 'X-aws-ec2-metadata-token-ttl-seconds': String(options.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS) },
  });
  if (token === undefined) return undefined;
  return call(c, `${base}/latest/meta-data/instance-id`, { method: 'GET', headers: { 'X-aws-ec2-metadata-token': token } });
}
