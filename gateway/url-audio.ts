/**
 * Audio fetched from a URL the client names (`audio_url`, ElevenLabs `cloud_storage_url`, Deepgram `{"url": …}`),
 * streamed into the job's sink like an upload. The server fetches on the client's behalf, so it must not become a
 * way into the network it sits in (SSRF): a target whose address is private, loopback, link-local or otherwise
 * not public is refused unless allow-listed. The check runs on the address actually connected to (in the socket's
 * DNS lookup, so a name cannot resolve to a public address for the check and a private one for the connection),
 * and again on every redirect. Size and time are bounded.
 */
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { guardedLookup, type UrlAllowList } from '../core/network-policy.js';
import { posix } from 'node:path';
import { HttpError, badRequest } from './errors.js';
import { byteLimit, fileTooLarge, type FileSink, type ReceivedFile } from './upload.js';

export interface UrlFetchPolicy {
  /** Largest body accepted (the upload limit). */
  readonly maxBytes: number;
  /** Whole fetch, redirects and body included. */
  readonly timeoutMs: number;
  /** @default 5 */
  readonly maxRedirects?: number;
}

const refused = (host: string, address: string) =>
  new HttpError(400, 'url_not_allowed', `the URL's host ${host} is a private, loopback or link-local address (${address}); the server does not fetch from it unless it is allow-listed`);

function parseUrl(raw: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    throw new HttpError(400, 'invalid_url', `not a URL: ${JSON.stringify(raw.slice(0, 200))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HttpError(400, 'invalid_url', `only http and https URLs are fetched, not ${url.protocol}`);
  if (url.username || url.password) throw new HttpError(400, 'invalid_url', 'URLs with credentials are not fetched');
  return url;
}

function get(url: URL, allow: UrlAllowList, signal: AbortSignal): Promise<IncomingMessage> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // net skips the lookup for a literal address, so those are checked here.
  if (isIP(host) && !allow.allowsName(host) && !allow.allowsAddress(host)) throw refused(host, host);
  const options: RequestOptions = { method: 'GET', signal, lookup: guardedLookup(allow, refused), headers: { 'user-agent': 'dalston-url-fetch', accept: 'audio/*, video/*, */*' } };
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, resolve);
    req.on('error', reject);
    req.end();
  });
}

function fetchFailed(url: URL, err: unknown, signal: AbortSignal): HttpError {
  if (err instanceof HttpError) return err;
  const e = err as { name?: string; code?: string; message?: string };
  const why = signal.aborted || e.name === 'AbortError' || e.name === 'TimeoutError' ? 'it took too long' : (e.code ?? e.message ?? String(err));
  return new HttpError(400, 'url_fetch_failed', `the audio could not be fetched from ${url.host}: ${why}`);
}

/**
 * Fetches `raw` into `sink` (following up to maxRedirects redirects, each checked again) and returns what was
 * stored. Refusals and failures are 400s naming the reason; a body over the limit is a 413; nothing is left stored.
 */
export async function fetchUrlInto(raw: string, policy: UrlFetchPolicy, allow: UrlAllowList, sink: FileSink): Promise<ReceivedFile> {
  const signal = AbortSignal.timeout(policy.timeoutMs);
  let url = parseUrl(raw);
  let res: IncomingMessage | undefined;
  for (let hop = 0; ; hop++) {
    try {
      res = await get(url, allow, signal);
    } catch (err) {
      throw fetchFailed(url, err, signal);
    }
    const location = res.headers.location;
    if (res.statusCode !== undefined && res.statusCode >= 300 && res.statusCode < 400 && location) {
      res.resume();
      if (hop >= (policy.maxRedirects ?? 5)) throw new HttpError(400, 'url_fetch_failed', `the URL redirected more than ${policy.maxRedirects ?? 5} times`);
      url = parseUrl(location, url);
      continue;
    }
    break;
  }
  if (res.statusCode !== 200) {
    res.resume();
    throw new HttpError(400, 'url_fetch_failed', `the URL answered ${res.statusCode ?? '?'} ${res.statusMessage ?? ''}`.trim());
  }
  const declared = Number(res.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > policy.maxBytes) {
    res.destroy();
    throw fileTooLarge(policy.maxBytes);
  }
  const from = url;
  const limited = byteLimit(policy.maxBytes);
  const body = res;
  body.on('error', (err) => limited.destroy(fetchFailed(from, err, signal)));
  body.on('aborted', () => limited.destroy(fetchFailed(from, new Error('the connection was cut'), signal)));
  const meta = { filename: posix.basename(decodeURIComponent(url.pathname)), mimeType: (res.headers['content-type'] ?? 'application/octet-stream').split(';')[0]?.trim() || 'application/octet-stream' };
  try {
    await sink.write(body.pipe(limited), meta);
  } catch (err) {
    body.destroy();
    await sink.discard();
    throw err instanceof HttpError ? err : fetchFailed(url, err, signal);
  }
  if (limited.bytes === 0) {
    await sink.discard();
    throw badRequest(`the URL's body is empty`);
  }
  return { ...meta, bytes: limited.bytes };
}
