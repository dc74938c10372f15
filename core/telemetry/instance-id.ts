/**
 * EC2 instance id through IMDSv2: PUT a session token, then GET the id with it. Each call has its own 1 s
 * timeout and any failure (no server, refused, slow, non-200, empty body) yields undefined, so a process off
 * EC2 starts without the attribute and without waiting longer than the timeouts. The endpoint is injected
 * (DALSTON_IMDS_ENDPOINT); tests point it at a loopback fake and never at the real link-local address.
 */

export interface InstanceIdOptions {
  /** Base URL of the metadata service, e.g. http://169.254.169.254 (no trailing slash needed). */
  readonly endpoint: string;
  /** Timeout of each of the two calls. @default 1000 */
  readonly timeoutMs?: number;
  /** Lifetime requested for the session token. @default 21600 */
  readonly tokenTtlSeconds?: number;
}

const DEFAULT_TIMEOUT_MS = 1000;
const DEFAULT_TOKEN_TTL_SECONDS = 21600;

async function call(url: string, init: RequestInit, timeoutMs: number): Promise<string | undefined> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    // The body is read under the same signal, so a server that sends headers and then stalls still times out.
    const body = (await res.text()).trim();
    return res.ok && body.length > 0 ? body : undefined;
  } catch {
    return undefined;
  }
}

/** Returns the instance id, or undefined on any failure. Never throws. */
export async function readEc2InstanceId(options: InstanceIdOptions): Promise<string | undefined> {
  const base = options.endpoint.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const token = await call(
    `${base}/latest/api/token`,
    { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': String(options.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS) } },
    timeoutMs,
  );
  if (token === undefined) return undefined;
  return call(`${base}/latest/meta-data/instance-id`, { method: 'GET', headers: { 'X-aws-ec2-metadata-token': token } }, timeoutMs);
}
