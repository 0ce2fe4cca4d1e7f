import { BlockList, SocketAddress, isIP } from 'node:net';

/** A client address in canonical text (IPv4-mapped IPv6 as plain IPv4), with its family. */
export interface ClientAddress {
  readonly text: string;
  readonly family: 'ipv4' | 'ipv6';
}

const MAPPED_V4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/;

/** Canonical form of an address as uWS (fully expanded IPv6) or a proxy (any form) writes it; null if not an IP. */
export function parseAddress(raw: string): ClientAddress | null {
  const t = raw.trim();
  const v = isIP(t);
  if (v === 4) return { text: t, family: 'ipv4' };
  if (v !== 6) return null;
  const text = new SocketAddress({ address: t, family: 'ipv6' }).address;
  const mapped = MAPPED_V4.exec(text);
  return mapped !== null ? { text: mapped[1] as string, family: 'ipv4' } : { text, family: 'ipv6' };
}

/** Parses `--trusted-proxies` (CIDRs or single addresses, IPv4 and IPv6); null when an entry is malformed. */
export function parseCidrs(list: string): BlockList | null {
  const blocks = new BlockList();
  for (const entry of list.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    const [addr = '', prefix] = entry.split('/');
    const a = parseAddress(addr);
    if (a === null) return null;
    if (prefix === undefined) {
      blocks.addAddress(a.text, a.family);
      continue;
    }
    const bits = /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
    if (!(bits <= (a.family === 'ipv4' ? 32 : 128))) return null;
    blocks.addSubnet(a.text, bits, a.family);
  }
  return blocks;
}

/**
 * Who the client is: the TCP peer, or, when the peer is a trusted proxy, the right-most address in
 * X-Forwarded-For that is not itself a trusted proxy (everything left of it was written by the client
 * and cannot be believed). An unparsable hop stops the walk at the last address known to be real.
 */
export class ClientAddressResolver {
  private readonly trusted: BlockList | null;

  constructor(trustedProxies: string) {
    this.trusted = trustedProxies.trim() === '' ? null : parseCidrs(trustedProxies);
  }

  resolve(peer: string, forwardedFor: string): ClientAddress | null {
    let client = parseAddress(peer);
    if (client === null || this.trusted === null || forwardedFor === '') return client;
    const hops = forwardedFor.split(',');
    for (let i = hops.length - 1; i >= 0 && this.trusted.check(client.text, client.family); i--) {
      const hop = parseAddress(hops[i] as string);
      if (hop === null) break;
      client = hop;
    }
    return client;
  }
}

/**
 * The key per-address limits count under: an IPv4 address, or the /64 an IPv6 address is in (one
 * subscriber line is usually given a whole /64, so per-address IPv6 limits would be no limit at all).
 */
export function limitKey(a: ClientAddress): string {
  if (a.family === 'ipv4') return a.text;
  const [head = '', tail] = a.text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.slice(0, 4).join(':') + '::/64';
}
