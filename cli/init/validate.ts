// The init wizard's validators: one value at a time with the inventory schema's own rules and
// messages (fieldSchemas), and the checks across answers (unique names and addresses, the VIP in
// the load balancers' subnet and no host's address). A prompt, a flag and the answers file all go
// through these, so what the wizard writes passes the loader by construction.
import { lookup } from 'node:dns/promises';
import type { z } from 'zod';
import { fieldSchemas as F } from '../../inventory/schema.ts';
import { intToIPv4, ipv4ToInt, isIPv4, maskOf, networkOf, parseCidr, sameSubnet } from '../../inventory/net.ts';

/** true, or the message that says why the value is refused. */
export type Verdict = true | string;

/** The schema's verdict on a value: true, or the message of its first issue. */
export function bySchema(schema: z.ZodType, value: unknown): Verdict {
  const r = schema.safeParse(value);
  return r.success ? true : r.error.issues[0].message;
}

/** A whole number typed at a prompt: digits become a number, anything else stays a string (the schema refuses it). */
export const numeric = (s: string): number | string => (/^\s*\d+\s*$/.test(s) ? Number(s) : s);

export const validCluster = (s: string): Verdict => bySchema(F.cluster, s);
export const validInterface = (s: string): Verdict => bySchema(F.interface, s);
export const validSshUser = (s: string): Verdict => bySchema(F.sshUser, s);
export const validSshPort = (s: string): Verdict => bySchema(F.sshPort, numeric(s));
export const validConnectTimeout = (s: string): Verdict => bySchema(F.connectTimeout, numeric(s));

export const MAX_WEB_NODES = 99; // host names web01..web99
export function validWebNodes(s: string): Verdict {
  const n = numeric(s);
  return typeof n === 'number' && n >= 1 && n <= MAX_WEB_NODES ? true : `expected an integer from 1 to ${MAX_WEB_NODES}`;
}

/** A host's name the way the prompt stores it: the label names the host being asked for ("load balancer 1"). */
export interface NamedHost {
  label: string;
  name: string;
  /** The host's IPv4 address (resolved when a name was typed). */
  address?: string;
}

export function validHostName(s: string, others: NamedHost[]): Verdict {
  const v = bySchema(F.hostName, s);
  if (v !== true) return v;
  const same = others.find((o) => o.name === s);
  return same ? `"${s}" is already the name of ${same.label}: host names are unique in the cluster` : true;
}

export type Resolver = (name: string) => Promise<string>;

/** Resolves a host name to its first IPv4 address (the system's resolver: /etc/hosts, then DNS). */
export const systemResolver: Resolver = async (name) => (await lookup(name, { family: 4 })).address;

export type AddressVerdict = { ok: true; address: string; sshHost?: string } | { ok: false; message: string };

/**
 * An address typed for a host: an IPv4 address, or a host name that resolves to one (then the name
 * is what SSH connects to, and the address what the cluster uses). Unique in the cluster, not the
 * VIP, not loopback, multicast or "this network".
 */
export async function checkAddress(
  s: string,
  others: NamedHost[],
  opts: { vip?: string; resolve?: Resolver } = {},
): Promise<AddressVerdict> {
  const typed = s.trim();
  let address = typed;
  let sshHost: string | undefined;
  if (/^[0-9.]*$/.test(typed)) {
    // digits and dots are meant as an address: never sent to a resolver
    const v = bySchema(F.address, typed);
    if (v !== true) return { ok: false, message: v };
  } else {
    const v = bySchema(F.sshHost, typed);
    if (v !== true) return { ok: false, message: `${bySchema(F.address, typed)}, or a host name that resolves to one` };
    try {
      address = await (opts.resolve ?? systemResolver)(typed);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return {
        ok: false,
        message: `cannot resolve ${typed}${code ? ` (${code})` : ''}: give its IPv4 address, or a name this machine resolves`,
      };
    }
    sshHost = typed;
  }
  const first = Number(address.split('.')[0]);
  if (first === 127) return { ok: false, message: `${address} is a loopback address: give the address the other hosts reach this one on` };
  if (first === 0 || first >= 224) return { ok: false, message: `${address} is not a host's unicast address` };
  const same = others.find((o) => o.address === address);
  if (same)
    return { ok: false, message: `${address} is already the address of ${same.label} (${same.name}): addresses are unique in the cluster` };
  const vip = opts.vip ? parseCidr(opts.vip) : null;
  if (vip && vip.address === address) return { ok: false, message: `${address} is the VIP: a host needs an address of its own` };
  return sshHost ? { ok: true, address, sshHost } : { ok: true, address };
}

/** The VIP: address/prefix (the schema's rule), inside every LB's subnet, no host's address, not the network or broadcast address. */
export function validVip(s: string, lbs: NamedHost[], hosts: NamedHost[]): Verdict {
  const v = bySchema(F.vipAddress, s);
  if (v !== true) return v;
  const { address, prefix } = parseCidr(s)!;
  for (const lb of lbs)
    if (lb.address && !sameSubnet(lb.address, address, prefix))
      return `${s} is outside the subnet of load balancer ${lb.name} (${lb.address}): the VIP must be in the load balancers' subnet`;
  const owner = hosts.find((h) => h.address === address);
  if (owner) return `${address} is also the address of ${owner.name}: the VIP must be an unused address`;
  if (prefix <= 30) {
    const n = ipv4ToInt(address)!;
    const net = networkOf(address, prefix);
    if (n === net) return `${address} is the network address of its /${prefix} subnet, not usable as the VIP`;
    if (n === (net | (~maskOf(prefix) >>> 0)) >>> 0)
      return `${address} is the broadcast address of its /${prefix} subnet, not usable as the VIP`;
  }
  return true;
}

/** A list typed at a prompt or given to a flag: commas and/or spaces between the items. */
export const splitList = (s: string): string[] => s.split(/[\s,]+/).filter(Boolean);

export function validAdminCidrs(list: string[]): Verdict {
  for (const c of list) {
    const v = bySchema(F.cidr, c);
    if (v !== true) return `${c}: ${v}`;
  }
  return bySchema(F.adminCidrs, list);
}

/** True when addr lies in one of the CIDRs (a bare address is a /32). */
export function cidrsContain(cidrs: string[], addr: string): boolean {
  return cidrs.some((c) => {
    const p = parseCidr(c) ?? (isIPv4(c) ? { address: c, prefix: 32 } : null);
    return p !== null && sameSubnet(p.address, addr, p.prefix);
  });
}

/**
 * A free VIP in the subnet of the LBs (address/prefix): host offset 100 first (the lab's and the
 * seed's choice), then 200, 250, 10, then from the top of the subnet down; never a taken address,
 * the network or the broadcast address. null when the subnet has no free address.
 */
export function suggestVip(lbAddress: string, prefix: number, taken: Iterable<string>): string | null {
  if (prefix < 1 || prefix > 30) return null;
  const busy = new Set(taken);
  const net = networkOf(lbAddress, prefix);
  const last = 2 ** (32 - prefix) - 2; // the highest host offset (below the broadcast address)
  const offsets = [100, 200, 250, 10].filter((o) => o <= last);
  for (let off = last; off >= 1 && offsets.length < 4096; off--) offsets.push(off);
  for (const off of offsets) {
    const addr = intToIPv4((net + off) >>> 0);
    if (!busy.has(addr)) return `${addr}/${prefix}`;
  }
  return null;
}

/** The address after this one, as a default for the next host's prompt (null past the end of its /24). */
export function nextAddress(addr: string | undefined, taken: string[]): string | null {
  if (!addr || !isIPv4(addr)) return null;
  let n = ipv4ToInt(addr)!;
  for (let i = 0; i < 254; i++) {
    n++;
    if ((n & 255) === 0 || (n & 255) === 255) return null;
    const a = intToIPv4(n);
    if (!taken.includes(a)) return a;
  }
  return null;
}
