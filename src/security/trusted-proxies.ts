// The peers allowed to tell us which URL a client used (server.trustedProxies): reverse proxies and gateways,
// named by IP address or CIDR range. http/forwarded.ts reads their headers; everyone else's are ignored.

import { BlockList, isIP } from 'node:net';

/** Entries as configured: IP addresses or CIDR ranges (v4 and v6). Throws on anything else. */
export function trustedProxyList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits, extra] = entry.split('/');
    const family = isIP(address ?? '');
    if (family === 0 || extra !== undefined) throw new Error(`not an IP address or CIDR range: ${entry}`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) {
      list.addAddress(address!, type);
      continue;
    }
    const prefix = Number(bits);
    if (!/^[0-9]{1,3}$/.test(bits) || prefix > (family === 4 ? 32 : 128)) throw new Error(`bad prefix length: ${entry}`);
    list.addSubnet(address!, prefix, type);
  }
  return list;
}

/** True when `address` (as Node reports a peer, IPv4-mapped IPv6 included) is in the list. */
export function isTrusted(list: BlockList, address: string | undefined): boolean {
  if (!address) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const plain = mapped ? mapped[1]! : address;
  const family = isIP(plain);
  if (family === 0) return false;
  return list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
}
