/**
 * The registration-time check of a webhook target (an endpoint's URL, a job's `webhook_url`): an http(s) URL without
 * credentials whose host is not private, loopback or link-local unless allow-listed (DALSTON_WEBHOOK_ALLOW_HOSTS).
 * The webhook worker checks the address again at every delivery, on the connection itself, so a name that later
 * resolves elsewhere (DNS rebinding) gains nothing.
 */
import { refusedAddressOf, type UrlAllowList } from '../../core/network-policy.js';
import { HttpError, quoteInput } from '../errors.js';

const MAX_URL_LENGTH = 2048;

export async function checkWebhookUrl(raw: unknown, allow: UrlAllowList, field = 'url'): Promise<string> {
  if (typeof raw !== 'string' || raw.trim() === '') throw new HttpError(400, 'invalid_url', `${field} must be an http or https URL`);
  if (raw.length > MAX_URL_LENGTH) throw new HttpError(400, 'invalid_url', `${field} is longer than ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new HttpError(400, 'invalid_url', `${field} is not a URL: ${quoteInput(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HttpError(400, 'invalid_url', `${field} must be http or https, not ${url.protocol}`);
  if (url.username || url.password) throw new HttpError(400, 'invalid_url', `${field} must not carry credentials`);
  const refused = await refusedAddressOf(url.hostname, allow);
  if (refused !== undefined) {
    throw new HttpError(400, 'url_not_allowed', `${field}'s host ${url.hostname} is a private, loopback or link-local address (${refused}); webhooks are not sent there unless it is allow-listed`);
  }
  return url.toString();
}
