// The network side of the daemon: the native addon (raw VRRP sockets, rtnetlink addresses,
// gratuitous ARP frames) and interface facts from the kernel.
import { existsSync, readFileSync } from 'node:fs';
import { networkInterfaces, arch, constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { garpFrame } from './packet.ts';
import type { VirtualAddress } from './config.ts';

declare const __dirname: string;

export interface NativeSocket {
  readonly __brand: 'vrrpnet-socket';
}

export interface VrrpNet {
  open(ifname: string, joinMulticast: boolean, onPacket: (packet: Buffer) => void): NativeSocket;
  send(handle: NativeSocket, packet: Buffer, dst: string): number;
  close(handle: NativeSocket): void;
  sendFrame(ifname: string, frame: Buffer): number;
  /** 0 or an errno */
  addrAdd(ifname: string, addr: string, prefix: number, label: string | null, broadcast: string | null, scope: number): number;
  addrDel(ifname: string, addr: string, prefix: number): number;
}

/** Supported targets of the prebuilt addon. */
export const SUPPORTED_ARCHS = ['x64', 'arm64'];

let native: VrrpNet | null = null;

/** Loads vrrpd-linux-<arch>.node from next to the bundle (or HASETUP_VRRPD_NATIVE). */
export function loadNative(): VrrpNet {
  if (native) return native;
  const name = `vrrpd-linux-${arch()}.node`;
  const candidates = [process.env.HASETUP_VRRPD_NATIVE, typeof __dirname === 'string' ? join(__dirname, name) : undefined].filter(
    (p): p is string => !!p,
  );
  const file = candidates.find((p) => existsSync(p));
  if (process.platform !== 'linux' || !SUPPORTED_ARCHS.includes(arch()))
    throw new Error(`hasetup-vrrpd runs on Linux ${SUPPORTED_ARCHS.join('/')} only (this is ${process.platform} ${arch()})`);
  if (!file)
    throw new Error(`native part ${name} not found (looked in: ${candidates.join(', ') || 'nowhere'}); rebuild with npm run build`);
  const m = { exports: {} as VrrpNet };
  process.dlopen(m, file);
  native = m.exports;
  return native;
}

/** The interface's IPv4 addresses in kernel order (the primary address first). */
export function ipv4Addresses(ifname: string): string[] {
  const list = networkInterfaces()[ifname] ?? [];
  return list.filter((a) => a.family === 'IPv4').map((a) => a.address);
}

/** The address adverts are sent from: the first IPv4 address of the interface that is not a VIP. */
export function primaryAddress(ifname: string, vips: Set<string>): string | null {
  return ipv4Addresses(ifname).find((a) => !vips.has(a)) ?? null;
}

export function interfaceIndex(ifname: string): number | null {
  try {
    return Number(readFileSync(`/sys/class/net/${ifname}/ifindex`, 'utf8').trim());
  } catch {
    return null;
  }
}

export function macAddress(ifname: string): string | null {
  try {
    return readFileSync(`/sys/class/net/${ifname}/address`, 'utf8').trim();
  } catch {
    return null;
  }
}

const SCOPES: Record<string, number> = { global: 0, site: 200, link: 253, host: 254 };

function errnoName(n: number): string {
  const e = Object.entries(osConstants.errno).find(([, v]) => v === n);
  return e ? e[0] : `errno ${n}`;
}

const vipText = (v: VirtualAddress) => `${v.address}/${v.prefix} dev ${v.dev}`;

export function vipPresent(v: VirtualAddress): boolean {
  return ipv4Addresses(v.dev).includes(v.address);
}

/** Adds a virtual address over rtnetlink (present already: fine). Resolves to an error message or null. */
export function addVip(net: VrrpNet, v: VirtualAddress): string | null {
  try {
    const scope = v.scope === undefined ? 0 : (SCOPES[v.scope] ?? Number(v.scope));
    const err = net.addrAdd(v.dev, v.address, v.prefix, v.label ?? null, v.broadcast ?? null, scope);
    if (err === 0 || err === osConstants.errno.EEXIST) return null;
    return `adding ${vipText(v)}: ${errnoName(err)}`;
  } catch (e) {
    return `adding ${vipText(v)}: ${(e as Error).message}`;
  }
}

/** Removes a virtual address (absent already: fine). */
export function delVip(net: VrrpNet, v: VirtualAddress): string | null {
  try {
    const err = net.addrDel(v.dev, v.address, v.prefix);
    if (err === 0 || err === osConstants.errno.EADDRNOTAVAIL) return null;
    return `removing ${vipText(v)}: ${errnoName(err)}`;
  } catch (e) {
    // the device is gone: so is the address
    if (/No such device/.test((e as Error).message)) return null;
    return `removing ${vipText(v)}: ${(e as Error).message}`;
  }
}

/** Sends one gratuitous ARP for each address on its device; returns the errors. */
export function sendGarps(net: VrrpNet, vips: VirtualAddress[]): string[] {
  const errors: string[] = [];
  for (const v of vips) {
    const mac = macAddress(v.dev);
    if (!mac) {
      errors.push(`gratuitous ARP for ${v.address}: no interface ${v.dev}`);
      continue;
    }
    try {
      net.sendFrame(v.dev, garpFrame(mac, v.address));
    } catch (e) {
      errors.push(`gratuitous ARP for ${v.address} on ${v.dev}: ${(e as Error).message}`);
    }
  }
  return errors;
}
