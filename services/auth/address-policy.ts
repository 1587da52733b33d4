/**
 * Outbound address policy: which addresses the port may connect to on a user's behalf (job sources and
 * destinations, HTTP-TPC Source/Destination). Without it, anyone who may submit could make the port fetch from or
 * write to services on its own host or network (Redis on 127.0.0.1:6379, cloud metadata at 169.254.169.254, the
 * management network).
 *
 * Refused unless `allow` permits: loopback, unspecified, private (RFC 1918, CGNAT 100.64/10, IPv6 ULA fc00::/7),
 * link-local (169.254/16, fe80::/10), multicast, reserved/benchmarking ranges, and the addresses of this host's
 * own interfaces. IPv6 forms that embed an IPv4 address (mapped `::ffff:a.b.c.d` in any spelling, e.g.
 * `[0:0:0:0:0:ffff:7f00:1]`, IPv4-compatible `::a.b.c.d`, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by the
 * IPv4 address inside, so `[::ffff:127.0.0.1]` is loopback and `[::ffff:0:0]` is unspecified.
 *
 * `allow` entries: CIDRs (`127.0.0.0/8`, `::1/128`, `10.1.0.0/16`), single addresses, or the class names
 * `loopback`, `private`, `link-local`, `own` (this host's interface addresses).
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { lookup as dnsLookup } from 'node:dns';
import { lookup as dnsLookupAsync } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import { AddressRefusedError } from './auth-errors.js';
import { CargoError } from '../../errors/cargo-error.js';

export type AddressClass = 'loopback' | 'unspecified' | 'private' | 'link-local' | 'multicast' | 'reserved' | 'own' | 'public';

/** 16 bytes for IPv6, 4 for IPv4; undefined if not an IP literal. */
export function ipBytes(addr: string): Uint8Array | undefined {
  const a = addr.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const fam = isIP(a);
  if (fam === 4) return Uint8Array.from(a.split('.').map(Number));
  if (fam !== 6) return undefined;
  let head = a;
  let tail4: number[] = [];
  const lastColon = a.lastIndexOf(':');
  if (a.slice(lastColon + 1).includes('.')) {
    tail4 = a.slice(lastColon + 1).split('.').map(Number);
    head = a.slice(0, lastColon + 1) + '0:0';
  }
  const [l, r] = head.includes('::') ? head.split('::') : [head, undefined];
  const left = l ? l.split(':') : [];
  const right = r !== undefined ? (r ? r.split(':') : []) : [];
  const groups = r !== undefined ? [...left, ...new Array(8 - left.length - right.length).fill('0'), ...right] : left;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g || '0', 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  if (tail4.length === 4) out.set(tail4, 12);
  return out;
}

/** The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4), if any. */
export function embeddedIpv4(b: Uint8Array): Uint8Array | undefined {
  if (b.length === 4) return b;
  const zero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return b.slice(12, 16); // ::ffff:a.b.c.d
  if (zero(0, 12) && !(zero(12, 15) && (b[15] === 0 || b[15] === 1))) return b.slice(12, 16); // ::a.b.c.d (deprecated)
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) return b.slice(12, 16); // 64:ff9b::/96
  if (b[0] === 0x20 && b[1] === 0x02) return b.slice(2, 6); // 6to4 2002:AABB:CCDD::
  return undefined;
}

interface Cidr {
  bytes: Uint8Array;
  bits: number;
}

function parseCidr(s: string): Cidr | undefined {
  const [addr, len] = s.split('/');
  const bytes = ipBytes(addr!);
  if (!bytes) return undefined;
  const bits = len === undefined ? bytes.length * 8 : Number(len);
  if (!Number.isInteger(bits) || bits < 0 || bits > bytes.length * 8) return undefined;
  return { bytes, bits };
}

function inCidr(b: Uint8Array, c: Cidr): boolean {
  if (b.length !== c.bytes.length) return false;
  let bits = c.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((b[i]! & mask) !== (c.bytes[i]! & mask)) return false;
  }
  return true;
}

const V4: Array<[string, AddressClass]> = [
  ['0.0.0.0/8', 'unspecified'], ['127.0.0.0/8', 'loopback'], ['10.0.0.0/8', 'private'], ['172.16.0.0/12', 'private'],
  ['192.168.0.0/16', 'private'], ['100.64.0.0/10', 'private'], ['169.254.0.0/16', 'link-local'], ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'], ['192.0.0.0/24', 'reserved'], ['192.0.2.0/24', 'reserved'], ['198.18.0.0/15', 'reserved'],
  ['198.51.100.0/24', 'reserved'], ['203.0.113.0/24', 'reserved'],
];
const V6: Array<[string, AddressClass]> = [
  ['::/128', 'unspecified'], ['::1/128', 'loopback'], ['fc00::/7', 'private'], ['fe80::/10', 'link-local'], ['fec0::/10', 'private'],
  ['ff00::/8', 'multicast'], ['2001:db8::/32', 'reserved'], ['100::/64', 'reserved'],
];
const V4_TABLE = V4.map(([c, k]) => [parseCidr(c)!, k] as const);
const V6_TABLE = V6.map(([c, k]) => [parseCidr(c)!, k] as const);

function ownAddresses(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) {
    const b = ipBytes(i.address);
    if (b) out.push(b);
  }
  return out;
}

const eq = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The class of an IP address ('public' for an ordinary Internet address); undefined if not an IP literal. */
export function classifyAddress(addr: string, own: Uint8Array[] = ownAddresses()): AddressClass | undefined {
  const b = ipBytes(addr);
  if (!b) return undefined;
  const v4 = embeddedIpv4(b);
  if (v4) for (const [c, k] of V4_TABLE) if (inCidr(v4, c)) return k;
  if (b.length === 16) for (const [c, k] of V6_TABLE) if (inCidr(b, c)) return k;
  if (own.some((o) => eq(o, b) || (v4 !== undefined && eq(o, v4)))) return 'own';
  return 'public';
}

const CLASS_NAMES = new Set(['loopback', 'private', 'link-local', 'own', 'unspecified', 'multicast', 'reserved']);

export class AddressPolicy {
  private readonly cidrs: Cidr[] = [];
  private readonly classes = new Set<string>();

  /** Throws on an entry that is neither a CIDR, an address nor a class name. */
  constructor(allow: readonly string[]) {
    for (const e of allow) {
      if (CLASS_NAMES.has(e)) this.classes.add(e);
      else {
        const c = parseCidr(e);
        if (!c) throw new CargoError('CARGO_ERR_CONFIG', `auth.allowAddresses: "${e}" is not a CIDR, an IP address or one of ${[...CLASS_NAMES].join(', ')}`);
        this.cidrs.push(c);
      }
    }
  }

  /** Undefined when `addr` may be connected to; else the reason (its class). */
  refusal(addr: string): string | undefined {
    const b = ipBytes(addr);
    if (!b) return 'not an IP address';
    const cls = classifyAddress(addr);
    if (cls === 'public') return undefined;
    const v4 = embeddedIpv4(b);
    if (this.cidrs.some((c) => inCidr(b, c) || (v4 !== undefined && inCidr(v4, c)))) return undefined;
    if (cls && this.classes.has(cls)) return undefined;
    return `${addr} is a ${cls} address`;
  }
}


/**
 * Checks every address `hostname` resolves to (or the literal itself); throws AddressRefusedError naming `field`.
 * All addresses must pass: a name with one private address among public ones could be connected to that one.
 */
export async function checkHost(policy: AddressPolicy, hostname: string, field: string): Promise<void> {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (ipBytes(host)) {
    const why = policy.refusal(host);
    if (why) throw new AddressRefusedError(`${field}: ${why}; refused by the outbound address policy (auth.allowAddresses)`, field);
    return;
  }
  let addrs: Array<{ address: string }>;
  try {
    addrs = await dnsLookupAsync(host, { all: true, verbatim: true });
  } catch {
    return; // unresolvable: the transfer fails on its own with a clear DNS error; nothing to connect to
  }
  for (const a of addrs) {
    const why = policy.refusal(a.address);
    if (why) throw new AddressRefusedError(`${field}: ${host} resolves to ${a.address}: ${why}; refused by the outbound address policy (auth.allowAddresses)`, field);
  }
}

/**
 * A `lookup` for net/tls connect that applies the policy to the addresses actually connected to (so a name
 * re-pointed after submission, DNS rebinding, still cannot reach a refused address). Refused addresses are
 * dropped; when none is left the connect fails with an ECONNREFUSED-like error naming the policy.
 */
export function policyLookup(policy: AddressPolicy): LookupFunction {
  return ((hostname: string, options: { all?: boolean; family?: number }, callback: (...args: unknown[]) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err);
      const list = (addresses as Array<{ address: string; family: number }>).filter((a) => policy.refusal(a.address) === undefined);
      if (list.length === 0) {
        const e = new AddressRefusedError(`${hostname}: every address is refused by the outbound address policy (auth.allowAddresses)`);
        return callback(e);
      }
      if (options?.all) return callback(null, list);
      return callback(null, list[0]!.address, list[0]!.family);
    });
  }) as unknown as LookupFunction;
}
