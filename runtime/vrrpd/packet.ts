// VRRP advertisements on the wire: VRRPv2 (RFC 3768) and VRRPv3 for IPv4 (RFC 5798), the IPv4
// header around them (IP protocol 112, TTL 255) and the gratuitous ARP frame sent on takeover.

export const VRRP_PROTO = 112;
export const VRRP_MCAST = '224.0.0.18';
export const VRRP_TTL = 255;
export const AUTH_NONE = 0;
export const AUTH_PASS = 1;
export const AUTH_AH = 2;

export interface Advert {
  version: 2 | 3;
  vrid: number;
  priority: number;
  /** v2: seconds; v3: centiseconds (12 bits) */
  interval: number;
  addresses: string[];
  /** v2 only */
  authType?: number;
  /** v2 only: the 8 bytes of PASS authentication data, as a string without trailing NULs */
  authData?: string;
}

export function ipToBytes(ip: string): number[] {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`bad IPv4 address ${ip}`);
  return p;
}

export const ipToInt = (ip: string): number => ipToBytes(ip).reduce((a, b) => a * 256 + b, 0);
export const bytesToIp = (b: Uint8Array, off: number): string => `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;

/** The Internet checksum (RFC 1071) over the concatenation of the parts. */
export function inetChecksum(...parts: Uint8Array[]): number {
  let sum = 0;
  let odd: number | null = null;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) {
      if (odd === null) odd = p[i];
      else {
        sum += (odd << 8) | p[i];
        odd = null;
      }
    }
  }
  if (odd !== null) sum += odd << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** The IPv4 pseudo-header VRRPv3 includes in its checksum (RFC 5798 5.2.8). */
export function pseudoHeader(src: string, dst: string, length: number): Buffer {
  const b = Buffer.alloc(12);
  b.set(ipToBytes(src), 0);
  b.set(ipToBytes(dst), 4);
  b[8] = 0;
  b[9] = VRRP_PROTO;
  b.writeUInt16BE(length, 10);
  return b;
}

/**
 * Encodes an advertisement. VRRPv3 needs src and dst for the pseudo-header checksum; VRRPv2's
 * checksum covers the VRRP message only.
 */
export function encodeAdvert(a: Advert, src?: string, dst?: string): Buffer {
  const n = a.addresses.length;
  if (n > 255) throw new Error('at most 255 addresses in an advert');
  const len = 8 + 4 * n + (a.version === 2 ? 8 : 0);
  const b = Buffer.alloc(len);
  b[0] = (a.version << 4) | 1;
  b[1] = a.vrid;
  b[2] = a.priority;
  b[3] = n;
  if (a.version === 2) {
    b[4] = a.authType ?? AUTH_NONE;
    b[5] = a.interval & 0xff;
  } else {
    b.writeUInt16BE(a.interval & 0x0fff, 4);
  }
  a.addresses.forEach((ip, i) => b.set(ipToBytes(ip), 8 + 4 * i));
  if (a.version === 2 && a.authType === AUTH_PASS) b.write((a.authData ?? '').slice(0, 8), 8 + 4 * n, 'latin1');
  let ck: number;
  if (a.version === 3) {
    if (!src || !dst) throw new Error('VRRPv3 checksum needs the source and destination addresses');
    ck = inetChecksum(pseudoHeader(src, dst, len), b);
  } else ck = inetChecksum(b);
  b.writeUInt16BE(ck, 6);
  return b;
}

export type DecodeError = 'short' | 'type' | 'version' | 'length' | 'checksum';

export interface Decoded {
  advert?: Advert;
  error?: DecodeError;
  detail?: string;
}

/** Decodes and checks (length, type, checksum) a VRRP message; src/dst are needed for v3. */
export function decodeAdvert(b: Uint8Array, src?: string, dst?: string): Decoded {
  if (b.length < 8) return { error: 'short', detail: `${b.length} bytes` };
  const version = b[0] >> 4;
  const type = b[0] & 0x0f;
  if (version !== 2 && version !== 3) return { error: 'version', detail: `version ${version}` };
  if (type !== 1) return { error: 'type', detail: `type ${type}` };
  const n = b[3];
  const need = 8 + 4 * n + (version === 2 ? 8 : 0);
  // keepalived sends v2 adverts with the 8 bytes of auth data even without authentication
  if (b.length < need) return { error: 'length', detail: `${b.length} bytes for ${n} addresses` };
  const msg = b.subarray(0, need);
  let ok: boolean;
  if (version === 3) {
    if (!src || !dst) return { error: 'checksum', detail: 'no addresses for the pseudo-header' };
    ok = inetChecksum(pseudoHeader(src, dst, need), msg) === 0;
  } else ok = inetChecksum(msg) === 0;
  if (!ok) return { error: 'checksum' };
  const addresses: string[] = [];
  for (let i = 0; i < n; i++) addresses.push(bytesToIp(b, 8 + 4 * i));
  const a: Advert = { version: version as 2 | 3, vrid: b[1], priority: b[2], interval: 0, addresses };
  if (version === 2) {
    a.authType = b[4];
    a.interval = b[5];
    const ad = Buffer.from(b.subarray(8 + 4 * n, 16 + 4 * n)).toString('latin1');
    a.authData = ad.replace(/\0+$/, '');
  } else a.interval = ((b[4] << 8) | b[5]) & 0x0fff;
  return { advert: a };
}

export interface IpPacket {
  src: string;
  dst: string;
  ttl: number;
  protocol: number;
  payload: Buffer;
}

let ipId = Math.floor(Math.random() * 0xffff);

/** An IPv4 header (no options, DSCP CS6 as routers' control traffic) in front of payload. */
export function encodeIp(src: string, dst: string, payload: Uint8Array, ttl = VRRP_TTL, protocol = VRRP_PROTO): Buffer {
  const b = Buffer.alloc(20 + payload.length);
  b[0] = 0x45;
  b[1] = 0xc0;
  b.writeUInt16BE(b.length, 2);
  ipId = (ipId + 1) & 0xffff;
  b.writeUInt16BE(ipId, 4);
  b.writeUInt16BE(0x4000, 6); // don't fragment
  b[8] = ttl;
  b[9] = protocol;
  b.set(ipToBytes(src), 12);
  b.set(ipToBytes(dst), 16);
  b.writeUInt16BE(inetChecksum(b.subarray(0, 20)), 10);
  b.set(payload, 20);
  return b;
}

export function decodeIp(b: Buffer): IpPacket | null {
  if (b.length < 20 || b[0] >> 4 !== 4) return null;
  const ihl = (b[0] & 0x0f) * 4;
  const total = b.readUInt16BE(2);
  if (ihl < 20 || b.length < ihl) return null;
  const end = Math.min(b.length, total >= ihl ? total : b.length);
  return { src: bytesToIp(b, 12), dst: bytesToIp(b, 16), ttl: b[8], protocol: b[9], payload: b.subarray(ihl, end) };
}

export function macToBytes(mac: string): number[] {
  const p = mac.split(':').map((x) => parseInt(x, 16));
  if (p.length !== 6 || p.some((x) => !(x >= 0 && x <= 255))) throw new Error(`bad MAC address ${mac}`);
  return p;
}

/** A gratuitous ARP request for ip from mac, broadcast (sender and target address both ip). */
export function garpFrame(mac: string, ip: string): Buffer {
  const m = macToBytes(mac);
  const a = ipToBytes(ip);
  const b = Buffer.alloc(42);
  b.fill(0xff, 0, 6);
  b.set(m, 6);
  b.writeUInt16BE(0x0806, 12);
  b.writeUInt16BE(1, 14); // Ethernet
  b.writeUInt16BE(0x0800, 16); // IPv4
  b[18] = 6;
  b[19] = 4;
  b.writeUInt16BE(1, 20); // request
  b.set(m, 22);
  b.set(a, 28);
  b.fill(0xff, 32, 38);
  b.set(a, 38);
  return b;
}
