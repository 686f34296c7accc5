// The network side of the daemon: the native raw-socket addon, interface facts from the kernel,
// virtual addresses through iproute2 and gratuitous ARP.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { networkInterfaces, arch } from 'node:os';
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
  if (!file) throw new Error(`native part ${name} not found (looked in: ${candidates.join(', ') || 'nowhere'}); rebuild with npm run build`);
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

export function macAddress(ifname: string): string | null {
  try {
    return readFileSync(`/sys/class/net/${ifname}/address`, 'utf8').trim();
  } catch {
    return null;
  }
}

function findIp(): string {
  for (const p of ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip']) if (existsSync(p)) return p;
  return 'ip';
}
const IP = findIp();

function run(args: string[]): Promise<{ ok: boolean; err: string }> {
  return new Promise((resolve) => {
    execFile(IP, args, { timeout: 10_000 }, (error, _stdout, stderr) => resolve({ ok: !error, err: String(stderr || error?.message || '').trim() }));
  });
}

function vipArgs(v: VirtualAddress): string[] {
  const a = [`${v.address}/${v.prefix}`, 'dev', v.dev];
  if (v.label) a.push('label', v.label);
  if (v.broadcast) a.push('broadcast', v.broadcast);
  if (v.scope) a.push('scope', v.scope);
  return a;
}

export function vipPresent(v: VirtualAddress): boolean {
  return ipv4Addresses(v.dev).includes(v.address);
}

/** Adds a virtual address (present already: fine). Resolves to an error message or null. */
export async function addVip(v: VirtualAddress): Promise<string | null> {
  const r = await run(['-4', 'addr', 'add', ...vipArgs(v)]);
  if (r.ok || /File exists/i.test(r.err)) return null;
  return `ip addr add ${vipArgs(v).join(' ')}: ${r.err}`;
}

/** Removes a virtual address (absent already: fine). */
export async function delVip(v: VirtualAddress): Promise<string | null> {
  if (!vipPresent(v)) return null;
  const r = await run(['-4', 'addr', 'del', `${v.address}/${v.prefix}`, 'dev', v.dev]);
  if (r.ok || /Cannot assign/i.test(r.err)) return null;
  return `ip addr del ${v.address}/${v.prefix} dev ${v.dev}: ${r.err}`;
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
