/**
 * The id of this gateway instance, which names its reply topic `realtime.replies.<id>`. Stable per deployment slot
 * (host name and port) so a restarted gateway reuses its topic instead of leaving one behind on every start.
 */
import { createHash } from 'node:crypto';

const SAFE = /^[A-Za-z0-9_-]{1,64}$/;

export function resolveGatewayId(configured: string | undefined, hostname: string, port: number): string {
  if (configured !== undefined && configured !== '') {
    if (!SAFE.test(configured)) throw new Error(`DALSTON_GATEWAY_ID "${configured}" must be 1-64 letters, digits, '-' or '_'`);
    return configured;
  }
  const host = hostname.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/-+/g, '-').slice(0, 32).replace(/^-|-$/g, '') || 'host';
  // A short hash keeps two hosts whose names differ only in stripped characters apart.
  const tag = createHash('sha256').update(`${hostname}:${port}`).digest('hex').slice(0, 6);
  return `${host}-${port}-${tag}`;
}
