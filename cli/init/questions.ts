// The wizard's questions: each with its message, one-line help, default and validator (the same
// validators as the flags and the answers file).
import { userInfo } from 'node:os';
import type { Answers, Group, HostAnswer, Runtime, Vrrp } from './answers.ts';
import { checkPrivateKey, defaultHostName, hostLabel } from './answers.ts';
import type { Choice, Prompter } from './prompter.ts';
import { findKeys } from './ssh-keys.ts';
import * as V from './validate.ts';
import type { NamedHost, Resolver } from './validate.ts';

export const DEFAULTS = {
  cluster: 'webfarm',
  webNodes: 2,
  dbReplica: false,
  sshUser: 'root',
  sshPort: 22,
  connectTimeout: 10,
  interface: 'eth0',
  vrrp: 'multicast' as Vrrp,
  runtime: 'bundled' as Runtime,
};

/** The user a sudo login defaults to: this machine's user when not root, else Debian's cloud image user. */
export function defaultSudoUser(): string {
  try {
    const u = userInfo().username;
    if (u !== 'root' && V.validSshUser(u) === true) return u;
  } catch {}
  return 'debian';
}

export function askCluster(p: Prompter, def: string): Promise<string> {
  return p.input({
    message: 'Cluster name',
    help: 'Names the cluster in the inventory: lower-case letters, digits and inner dashes.',
    default: def,
    validate: V.validCluster,
  });
}

export async function askTopology(
  p: Prompter,
  def: { webNodes: number; dbReplica: boolean },
): Promise<{ webNodes: number; dbReplica: boolean }> {
  const seed = def.webNodes === 2 && !def.dbReplica ? 'seed' : def.webNodes === 2 && def.dbReplica ? 'replica' : 'other';
  const choices: Choice<string>[] = [
    { name: "2 load balancers, 2 web nodes, 1 MySQL primary (the seed article's)", value: 'seed' },
    { name: '2 load balancers, 2 web nodes, a MySQL primary and a replica', value: 'replica' },
    { name: 'another number of web nodes', value: 'other' },
  ];
  const t = await p.select({
    message: 'Topology',
    help: 'Two load balancers share the VIP in front of the Apache web nodes, which use the MySQL primary.',
    choices,
    default: seed,
  });
  if (t === 'seed') return { webNodes: 2, dbReplica: false };
  if (t === 'replica') return { webNodes: 2, dbReplica: true };
  const n = await p.input({
    message: 'Number of web nodes',
    help: 'The Apache nodes behind the load balancers, 1 to 99 (the seed has 2).',
    default: String(def.webNodes),
    validate: V.validWebNodes,
  });
  const dbReplica = await p.confirm({
    message: 'Add a MySQL replica?',
    help: 'A second database host that replicates from the primary; the web nodes keep writing to the primary.',
    default: def.dbReplica,
  });
  return { webNodes: Number(n), dbReplica };
}

/** A host's name, then its address (an address or a name that resolves to one). */
export async function askHost(
  p: Prompter,
  g: Group,
  i: number,
  def: { name?: string; address?: string },
  others: NamedHost[],
  opts: { vip?: string; resolve?: Resolver; askName?: boolean },
): Promise<HostAnswer> {
  const label = hostLabel(g, i);
  const name =
    opts.askName === false
      ? (def.name ?? defaultHostName(g, i))
      : await p.input({
          message: `Name of ${label}`,
          help: "A short name (lower-case letters, digits, inner dashes): it becomes the host's hostname.",
          default: def.name ?? defaultHostName(g, i),
          validate: (v) => V.validHostName(v, others),
        });
  let last: { typed: string; address: string; sshHost?: string } | undefined;
  const typed = await p.input({
    message: `Address of ${name}`,
    help: `The IPv4 address the other hosts reach ${name} on (or a name that resolves to one); unique.`,
    default: def.address,
    validate: async (v) => {
      const r = await V.checkAddress(v, others, opts);
      if (!r.ok) return r.message;
      last = { typed: v, address: r.address, ...(r.sshHost ? { sshHost: r.sshHost } : {}) };
      return true;
    },
  });
  if (!last || last.typed !== typed) {
    const r = await V.checkAddress(typed, others, opts);
    if (!r.ok) throw new Error(`address of ${name}: ${r.message}`);
    last = { typed, address: r.address, ...(r.sshHost ? { sshHost: r.sshHost } : {}) };
  }
  return { name, address: last.address, ...(last.sshHost ? { sshHost: last.sshHost } : {}) };
}

/** root, or a user with sudo (then which user). */
export async function askSshUser(p: Prompter, def: string): Promise<string> {
  const how = await p.select({
    message: 'How does hasetup log in to the hosts?',
    help: 'Its commands run as root: it logs in as root, or as a user that may sudo without a password.',
    choices: [
      { name: 'as root', value: 'root' },
      { name: 'as a user with sudo', value: 'sudo' },
    ],
    default: def === 'root' ? 'root' : 'sudo',
  });
  if (how === 'root') return 'root';
  return p.input({
    message: 'SSH user',
    help: 'The user to log in as on every host; commands go through `sudo -n` (no password prompt).',
    default: def === 'root' ? defaultSudoUser() : def,
    validate: (v) => (v === 'root' ? 'root logs in without sudo: choose "as root" instead' : V.validSshUser(v)),
  });
}

export async function askSshPort(p: Prompter, def: number): Promise<number> {
  const v = await p.input({
    message: 'SSH port',
    help: 'The port sshd listens on, the same on every host.',
    default: String(def),
    validate: V.validSshPort,
  });
  return Number(v);
}

/** The key: one found in ~/.ssh, the SSH agent's keys, or another file. */
export async function askSshKey(p: Prompter, def: string | null, opts: { keysDir?: string; baseDir: string }): Promise<string | null> {
  const found = findKeys(opts.keysDir);
  const choices: Choice<string>[] = found.map((k) => ({ name: k.path, value: k.path, ...(k.comment ? { description: k.comment } : {}) }));
  if (def && !found.some((k) => k.path === def)) choices.unshift({ name: def, value: def });
  choices.push({
    name: 'the keys of my SSH agent (no key file)',
    value: 'agent',
    description: process.env.SSH_AUTH_SOCK ? 'SSH_AUTH_SOCK is set' : 'no agent runs now (SSH_AUTH_SOCK is not set)',
  });
  choices.push({ name: 'another file...', value: 'other' });
  const pick = await p.select({
    message: 'SSH private key',
    help: 'The key to log in with (those found in ~/.ssh are listed); the hosts accept its public key.',
    choices,
    default: def ?? 'agent',
  });
  if (pick === 'agent') return null;
  if (pick !== 'other') return pick;
  let key: string | null = null;
  await p.input({
    message: 'Path of the private key',
    help: "A private key file (~ is expanded; a relative path is taken from the inventory's folder).",
    validate: (v) => {
      const r = checkPrivateKey(v, opts.baseDir);
      if (!r.ok) return r.message;
      key = r.key;
      return true;
    },
  });
  return key;
}

export function askInterface(p: Prompter, def: string, why?: string): Promise<string> {
  return p.input({
    message: 'Interface on the load balancers',
    help: `The interface that carries the LBs' addresses: the VIP goes on it.${why ? ` Not read from the LBs: ${why}.` : ''}`,
    default: def,
    validate: V.validInterface,
  });
}

/** probed: the default was chosen with what the LBs see on their network (not only the answers). */
export function askVip(p: Prompter, def: string | undefined, a: Pick<Answers, 'hosts'>, probed: boolean): Promise<string> {
  const named = (g: Group) => a.hosts[g].map((h, i) => ({ label: hostLabel(g, i), name: h.name, address: h.address }));
  return p.input({
    message: 'Virtual IP (address/prefix)',
    help: `The address clients use, held by one LB at a time: unused, in the LBs' subnet.${probed ? ' The default: nobody the LBs know has it.' : ''}`,
    default: def,
    validate: (v) => V.validVip(v, named('lb'), [...named('lb'), ...named('web'), ...named('db')]),
  });
}

/** A choice among a few words, each with a one-line description. */
function choose<T extends string>(p: Prompter, q: { message: string; help: string; default: T }, options: [T, string][]): Promise<T> {
  return p.select<T>({ ...q, choices: options.map(([value, description]) => ({ name: value, value, description })) });
}

export function askVrrp(p: Prompter, def: Vrrp): Promise<Vrrp> {
  return choose<Vrrp>(
    p,
    {
      message: 'VRRP adverts: multicast or unicast',
      help: "Multicast is VRRP's standard, but many providers block it: there, unicast (each LB sends to the other).",
      default: def,
    },
    [
      ['multicast', "VRRP's default (224.0.0.18): works on a plain LAN"],
      ['unicast', "to the other load balancer's address: works where multicast is blocked"],
    ],
  );
}

export async function askAdminCidrs(p: Prompter, def: string[], whence: string): Promise<string[]> {
  const v = await p.input({
    message: 'Admin networks allowed to SSH (CIDRs, comma-separated)',
    help: `Only these reach SSH and the stats page. Suggested: ${whence}, so the firewall cannot lock you out.`,
    default: def.join(', '),
    validate: (x) => V.validAdminCidrs(V.splitList(x)),
  });
  return V.splitList(v);
}

export function askRuntime(p: Prompter, def: Runtime): Promise<Runtime> {
  return choose<Runtime>(
    p,
    {
      message: 'Load-balancer software',
      help: 'What runs on the load balancers; both read the same haproxy.cfg and keepalived.conf.',
      default: def,
    },
    [
      ['bundled', "hasetup's own proxy and VRRP daemon, installed by hasetup (Node.js)"],
      ['haproxy', "Debian's HAProxy and keepalived packages"],
    ],
  );
}
