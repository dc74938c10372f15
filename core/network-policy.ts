/**
 * Which network addresses the server may connect to on a client's behalf (audio URLs, webhook targets): a target
 * whose address is private, loopback, link-local or otherwise not public is refused unless allow-listed, so the
 * server cannot be made a way into the network it sits in (SSRF).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/** Ranges that are not the public internet (RFC 6890 and friends). */
const NOT_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24],
  ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) NOT_PUBLIC.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96], ['2001:db8::', 32]] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv6');
}

const familyOf = (address: string): 'ipv4' | 'ipv6' => (isIP(address) === 6 ? 'ipv6' : 'ipv4');

/** An IPv4 address written as IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address it is. */
function unmapped(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m?.[1] ?? address;
}

/** DALSTON_URL_ALLOW_HOSTS, parsed once: host names, and addresses or CIDR blocks, fetched although not public. */
export class UrlAllowList {
  readonly #names = new Set<string>();
  readonly #blocks = new BlockList();

  constructor(entries: readonly string[]) {
    for (const raw of entries) {
      const entry = raw.trim().toLowerCase();
      if (entry === '') continue;
      const [net, prefix] = entry.split('/');
      if (net !== undefined && isIP(net)) {
        if (prefix === undefined) this.#blocks.addAddress(net, familyOf(net));
        else this.#blocks.addSubnet(net, Number(prefix), familyOf(net));
      } else {
        this.#names.add(entry);
      }
    }
  }

  allowsName(hostname: string): boolean {
    return this.#names.has(hostname.toLowerCase());
  }

  /** Whether the server may connect to `address`: a public one, or one allow-listed. */
  allowsAddress(address: string): boolean {
    const a = unmapped(address);
    return !NOT_PUBLIC.check(a, familyOf(a)) || this.#blocks.check(a, familyOf(a));
  }
}

/**
 * dns.lookup that refuses non-public addresses: net calls it for the connection itself, so the address checked is
 * the address connected to (no DNS rebinding between a check and the connection). `refuse` builds the error.
 */
export function guardedLookup(allow: UrlAllowList, refuse: (host: string, address: string) => Error): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) {
        callback(err, '', 0);
        return;
      }
      const bad = allow.allowsName(hostname) ? undefined : addresses.find((a) => !allow.allowsAddress(a.address));
      if (bad) {
        callback(refuse(hostname, bad.address), '', 0);
        return;
      }
      const first = addresses[0];
      if (options.all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      else callback(null, first?.address ?? '', first?.family ?? 4);
    });
  };
}

/**
 * The first address of `host` this policy refuses (an address literal is judged as itself), or undefined when every
 * address it resolves to may be connected to. A name that does not resolve is not refused here: the connection's own
 * guarded lookup judges whatever it resolves to later.
 */
export async function refusedAddressOf(host: string, allow: UrlAllowList): Promise<string | undefined> {
  const bare = host.replace(/^\[|\]$/g, '');
  if (allow.allowsName(bare)) return undefined;
  if (isIP(bare)) return allow.allowsAddress(bare) ? undefined : bare;
  const addresses = await new Promise<LookupAddress[]>((resolve) => {
    dnsLookup(bare, { all: true }, (err, found) => resolve(err ? [] : found));
  });
  return addresses.find((a) => !allow.allowsAddress(a.address))?.address;
}
