/**
 * One delivery attempt over HTTP(S): a POST of the signed body to the target, judged by the answer's status (2xx is
 * delivered; anything else, a timeout or a broken connection is a failure to retry). The target's address is checked
 * at connection time by the socket's own DNS lookup (core/network-policy.ts), so a name that resolved to a public
 * address when the endpoint was registered and to a private one now (DNS rebinding) is refused, not delivered to.
 * Redirects are not followed: a receiver that moved must be re-registered.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { guardedLookup, type UrlAllowList } from '../core/network-policy.js';

export type AttemptResult =
  | { readonly kind: 'delivered'; readonly httpStatus: number; readonly ms: number }
  | { readonly kind: 'failed'; readonly httpStatus: number; readonly error: string; readonly ms: number }
  /** The target is not allowed (a private address): no retry will change that. */
  | { readonly kind: 'refused'; readonly error: string; readonly ms: number };

class TargetRefused extends Error {}

/** Most of an answer's body read (for the delivery log); the rest is discarded. */
const ANSWER_BYTES = 512;

export async function postWebhook(
  rawUrl: string, headers: Readonly<Record<string, string>>, body: string, allow: UrlAllowList, timeoutMs: number,
): Promise<AttemptResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return { kind: 'refused', error: 'not a URL', ms: ms() };
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // net skips the lookup for an address literal, so those are judged here.
  if (isIP(host) && !allow.allowsName(host) && !allow.allowsAddress(host)) {
    return { kind: 'refused', error: `the target ${host} is a private, loopback or link-local address and is not allow-listed`, ms: ms() };
  }
  const refuse = (name: string, address: string) =>
    new TargetRefused(`the target ${name} resolves to ${address}, a private, loopback or link-local address that is not allow-listed`);
  try {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
        method: 'POST', signal: AbortSignal.timeout(timeoutMs), lookup: guardedLookup(allow, refuse),
        headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'user-agent': 'dalston-webhooks' },
      }, resolve);
      req.on('error', reject);
      req.end(body);
    });
    let answer = '';
    for await (const chunk of res) if (answer.length < ANSWER_BYTES) answer += String(chunk).slice(0, ANSWER_BYTES - answer.length);
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return { kind: 'delivered', httpStatus: status, ms: ms() };
    return { kind: 'failed', httpStatus: status, error: `answered ${status}${answer ? `: ${answer.replace(/\s+/g, ' ').slice(0, 200)}` : ''}`, ms: ms() };
  } catch (err) {
    if (err instanceof TargetRefused) return { kind: 'refused', error: err.message, ms: ms() };
    const e = err as { name?: string; code?: string; message?: string };
    const why = e.name === 'AbortError' || e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.code ?? e.message ?? String(err));
    return { kind: 'failed', httpStatus: 0, error: why, ms: ms() };
  }
}
