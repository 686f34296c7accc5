// IPv4 helpers for the inventory checks: dotted-quad parsing, CIDRs, subnet membership.

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IPV4_RE = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/** True for a dotted-quad IPv4 address without leading zeros ("10.0.0.1"). */
export function isIPv4(s: string): boolean {
  return IPV4_RE.test(s);
}

/** The address as an unsigned 32-bit number, or null when it is not a dotted-quad IPv4 address. */
export function ipv4ToInt(s: string): number | null {
  if (!isIPv4(s)) return null;
  return s.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function intToIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  address: string;
  prefix: number;
}

/** Parses "a.b.c.d/p" (p from 0 to 32); null when malformed. */
export function parseCidr(s: string): Cidr | null {
  const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(s);
  if (!m || !isIPv4(m[1])) return null;
  const prefix = Number(m[2]);
  if (prefix > 32 || String(prefix) !== m[2]) return null;
  return { address: m[1], prefix };
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** The network address of addr/prefix as an unsigned number. */
export function networkOf(addr: string, prefix: number): number {
  const n = ipv4ToInt(addr);
  if (n === null) throw new Error(`not an IPv4 address: ${addr}`);
  return (n & maskOf(prefix)) >>> 0;
}

/** True when both addresses are in the same /prefix network. */
export function sameSubnet(a: string, b: string, prefix: number): boolean {
  return networkOf(a, prefix) === networkOf(b, prefix);
}
