// The wizard's answers: their model, and the answers given before it asks anything, by flags or by
// an answers file (YAML). Both go through the prompts' own validators; a bad answer is reported
// with where it came from (the flag, or file:line:col: field), as the inventory's errors are.
import { existsSync, openSync, readSync, closeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { z } from 'zod';
import { formatIssue, sortIssues, YamlSource, type InventoryIssue, type PathSegment } from '../../inventory/errors.ts';
import { expandPath } from '../../inventory/load.ts';
import { fieldSchemas as F, locateZodIssues } from '../../inventory/schema.ts';
import type { Group } from '../../inventory/types.ts';
import * as V from './validate.ts';
import type { NamedHost, Resolver } from './validate.ts';

export type { Group };
export const GROUPS: Group[] = ['lb', 'web', 'db'];

export interface HostAnswer {
  name: string;
  /** The IPv4 address the cluster uses for the host. */
  address: string;
  /** What SSH connects to when a name was given instead of an address (else the address). */
  sshHost?: string;
}

export type Vrrp = 'multicast' | 'unicast';
export type Runtime = 'bundled' | 'haproxy';

/** Every answer of the wizard (what the inventory is written from). */
export interface Answers {
  cluster: string;
  hosts: Record<Group, HostAnswer[]>;
  sshUser: string;
  sshPort: number;
  /** The private key as the inventory names it (~/... or absolute); null: the keys of the SSH agent. */
  sshKey: string | null;
  connectTimeout: number;
  /** known_hosts as the inventory names it; null: .hasetup/known_hosts next to the inventory. */
  knownHosts: string | null;
  interface: string;
  vip: string;
  vrrp: Vrrp;
  adminCidrs: string[];
  runtime: Runtime;
}

/** Answers given ahead (flags, answers file): any of them, each already validated. */
export interface Given {
  cluster?: string;
  webNodes?: number;
  dbReplica?: boolean;
  hosts: Partial<Record<Group, { name?: string; address: string; sshHost?: string }[]>>;
  sshUser?: string;
  sshPort?: number;
  sshKey?: string | null;
  connectTimeout?: number;
  knownHosts?: string | null;
  interface?: string;
  vip?: string;
  vrrp?: Vrrp;
  adminCidrs?: string[];
  runtime?: Runtime;
}

export const GROUP_WORD: Record<Group, string> = { lb: 'load balancer', web: 'web node', db: 'database host' };
export const defaultHostName = (g: Group, i: number): string => `${g}${String(i + 1).padStart(2, '0')}`;
export const hostLabel = (g: Group, i: number): string =>
  g === 'db' ? (i === 0 ? 'the MySQL primary' : `MySQL replica ${i}`) : `${GROUP_WORD[g]} ${i + 1}`;

/** The flag of each answer (the answers file uses the same names, snake_case, as its keys). */
export const FLAGS = {
  cluster: '--cluster',
  web_nodes: '--web-nodes',
  db_replica: '--db-replica',
  'hosts.lb': '--lb',
  'hosts.web': '--web',
  'hosts.db': '--db',
  'ssh.user': '--ssh-user',
  'ssh.port': '--ssh-port',
  'ssh.private_key': '--ssh-key',
  'ssh.connect_timeout': '--connect-timeout',
  'ssh.known_hosts': '--known-hosts',
  vip: '--vip',
  interface: '--interface',
  vrrp: '--vrrp',
  admin_cidrs: '--admin-cidr',
  runtime: '--runtime',
} as const;
type AnswerKey = keyof typeof FLAGS;

// The answers file (and the flags, put in the same shape): types only; values are checked by the validators.
const hostEntry = z.union([z.string(), z.strictObject({ name: z.string().optional(), address: z.string() })], {
  error: 'expected NAME=ADDRESS, an ADDRESS, or { name, address }',
});
const hostList = z.array(hostEntry, { error: 'expected a list of hosts' });
const str = () => z.string({ error: 'expected a string' });
const num = () => z.number({ error: 'expected a number' });
export const answersFileSchema = z.strictObject(
  {
    cluster: str().optional(),
    web_nodes: num().optional(),
    db_replica: z.boolean({ error: 'expected true or false' }).optional(),
    hosts: z
      .strictObject({ lb: hostList.optional(), web: hostList.optional(), db: hostList.optional() }, { error: 'expected a mapping' })
      .optional(),
    ssh: z
      .strictObject(
        {
          user: str().optional(),
          port: num().optional(),
          private_key: z.union([str(), z.null()], { error: 'expected a path (or agent)' }).optional(),
          connect_timeout: num().optional(),
          known_hosts: str().optional(),
        },
        { error: 'expected a mapping' },
      )
      .optional(),
    vip: str().optional(),
    interface: str().optional(),
    vrrp: z.enum(['multicast', 'unicast'], { error: 'expected multicast or unicast' }).optional(),
    admin_cidrs: z.union([str(), z.array(str())], { error: 'expected a list of CIDRs' }).optional(),
    runtime: z.enum(['bundled', 'haproxy'], { error: 'expected bundled or haproxy' }).optional(),
  },
  { error: 'expected a mapping of answers' },
);
export type RawAnswers = z.infer<typeof answersFileSchema>;

/** True when the file starts like an SSH private key (OpenSSH or PEM). */
export function looksLikePrivateKey(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const buf = Buffer.alloc(64);
    const n = readSync(fd, buf, 0, 64, 0);
    return /^-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(buf.subarray(0, n).toString('latin1'));
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A path as the inventory should hold it: ~/... below the home folder, else absolute. */
export function homeRelative(abs: string): string {
  const rel = relative(homedir(), abs);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? `~/${rel}` : abs;
}

/**
 * A private key answer: "agent" (or nothing) means the SSH agent's keys; otherwise a readable
 * private key file, relative paths taken from baseDir. Returns the path as the inventory names it.
 */
export function checkPrivateKey(value: string | null, baseDir: string): { ok: true; key: string | null } | { ok: false; message: string } {
  if (value === null || value.trim() === '' || value.trim() === 'agent') return { ok: true, key: null };
  const v = V.bySchema(F.privateKey, value.trim());
  if (v !== true) return { ok: false, message: v };
  const abs = expandPath(value.trim(), baseDir);
  if (!existsSync(abs)) return { ok: false, message: `no such file: ${abs}` };
  if (!looksLikePrivateKey(abs))
    return { ok: false, message: `${abs} is not a readable SSH private key (it should start with -----BEGIN ... PRIVATE KEY-----)` };
  return { ok: true, key: homeRelative(abs) };
}

function parseHostEntry(e: string | { name?: string; address: string }): { name?: string; address: string } {
  if (typeof e !== 'string') return e;
  const i = e.indexOf('=');
  return i < 0 ? { address: e.trim() } : { name: e.slice(0, i).trim(), address: e.slice(i + 1).trim() };
}

/**
 * Checks answers given ahead, in the order the wizard asks them, with the prompts' validators.
 * `where` names a field in messages (a flag, or file:line:col: path). Returns every problem at once.
 */
export async function checkGiven(
  raw: RawAnswers,
  where: (path: PathSegment[], message: string) => string,
  opts: { baseDir: string; resolve?: Resolver },
): Promise<{ given: Given; errors: string[] }> {
  const errors: string[] = [];
  const given: Given = { hosts: {} };
  const take = <T>(path: PathSegment[], v: string | true, value: T, set: (x: T) => void) => {
    if (v === true) set(value);
    else errors.push(where(path, v));
  };
  if (raw.cluster !== undefined) take(['cluster'], V.validCluster(raw.cluster), raw.cluster, (x) => (given.cluster = x));
  if (raw.web_nodes !== undefined) take(['web_nodes'], V.validWebNodes(String(raw.web_nodes)), raw.web_nodes, (x) => (given.webNodes = x));
  if (raw.db_replica !== undefined) given.dbReplica = raw.db_replica;

  const named: NamedHost[] = [];
  const lbs: NamedHost[] = [];
  for (const g of GROUPS) {
    const list = raw.hosts?.[g];
    if (list === undefined) continue;
    const path: PathSegment[] = ['hosts', g];
    const out: { name?: string; address: string; sshHost?: string }[] = [];
    const want = g === 'lb' ? 2 : g === 'web' ? given.webNodes : given.dbReplica === undefined ? undefined : given.dbReplica ? 2 : 1;
    if (want !== undefined && list.length !== want)
      errors.push(where(path, `expected ${want} ${GROUP_WORD[g]}${want > 1 ? 's' : ''}, got ${list.length}`));
    else if (list.length === 0) errors.push(where(path, `expected at least 1 ${GROUP_WORD[g]}, got 0`));
    for (const [i, entry] of list.entries()) {
      const h = parseHostEntry(entry);
      const label = hostLabel(g, i);
      const name = h.name ?? defaultHostName(g, i);
      const nv = V.validHostName(name, named);
      if (nv !== true) errors.push(where([...path, i], nv));
      const av = await V.checkAddress(h.address, named, { resolve: opts.resolve });
      if (!av.ok) errors.push(where([...path, i], `${h.address}: ${av.message}`));
      const item: { name?: string; address: string; sshHost?: string } = { address: av.ok ? av.address : h.address };
      if (h.name !== undefined) item.name = h.name;
      if (av.ok && av.sshHost) item.sshHost = av.sshHost;
      out.push(item);
      named.push({ label, name, address: av.ok ? av.address : undefined });
      if (g === 'lb') lbs.push(named[named.length - 1]);
    }
    given.hosts[g] = out;
  }
  if (given.webNodes === undefined && given.hosts.web) given.webNodes = given.hosts.web.length;
  if (given.dbReplica === undefined && given.hosts.db) given.dbReplica = given.hosts.db.length > 1;

  const ssh = raw.ssh ?? {};
  if (ssh.user !== undefined) take(['ssh', 'user'], V.validSshUser(ssh.user), ssh.user, (x) => (given.sshUser = x));
  if (ssh.port !== undefined) take(['ssh', 'port'], V.validSshPort(String(ssh.port)), ssh.port, (x) => (given.sshPort = x));
  if (ssh.connect_timeout !== undefined)
    take(
      ['ssh', 'connect_timeout'],
      V.validConnectTimeout(String(ssh.connect_timeout)),
      ssh.connect_timeout,
      (x) => (given.connectTimeout = x),
    );
  if (ssh.private_key !== undefined) {
    const k = checkPrivateKey(ssh.private_key, opts.baseDir);
    if (k.ok) given.sshKey = k.key;
    else errors.push(where(['ssh', 'private_key'], k.message));
  }
  if (ssh.known_hosts !== undefined)
    take(
      ['ssh', 'known_hosts'],
      V.bySchema(F.knownHosts, ssh.known_hosts),
      ssh.known_hosts,
      (x) => (given.knownHosts = homeRelative(expandPath(x, opts.baseDir))),
    );

  if (raw.interface !== undefined) take(['interface'], V.validInterface(raw.interface), raw.interface, (x) => (given.interface = x));
  if (raw.vip !== undefined) take(['vip'], V.validVip(raw.vip, lbs, named), raw.vip, (x) => (given.vip = x));
  if (raw.vrrp !== undefined) given.vrrp = raw.vrrp;
  if (raw.admin_cidrs !== undefined) {
    const list = typeof raw.admin_cidrs === 'string' ? V.splitList(raw.admin_cidrs) : raw.admin_cidrs;
    take(['admin_cidrs'], V.validAdminCidrs(list), list, (x) => (given.adminCidrs = x));
  }
  if (raw.runtime !== undefined) given.runtime = raw.runtime;
  return { given, errors };
}

/** Reads and checks an answers file: every problem located at file:line:col: field. */
export async function readAnswersFile(file: string, resolveName?: Resolver): Promise<{ given: Given; errors: string[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return {
      given: { hosts: {} },
      errors: [`${file}: cannot read the answers file: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`],
    };
  }
  const src = new YamlSource(file, text);
  if (src.syntaxIssues.length) return { given: { hosts: {} }, errors: src.syntaxIssues.map(formatIssue) };
  const data = src.data ?? {};
  const r = answersFileSchema.safeParse(data);
  if (!r.success) return { given: { hosts: {} }, errors: sortIssues(locateZodIssues(src, answersFileSchema, r.error)).map(formatIssue) };
  const issues: InventoryIssue[] = [];
  const where = (path: PathSegment[], message: string) => {
    issues.push(src.issue(path, message));
    return '';
  };
  const { given } = await checkGiven(r.data, where, { baseDir: dirname(resolve(file)), resolve: resolveName });
  return { given, errors: sortIssues(issues).map(formatIssue) };
}

/** The answer flags as commander gives them. */
export interface AnswerFlags {
  cluster?: string;
  webNodes?: string;
  dbReplica?: boolean;
  lb?: string;
  web?: string;
  db?: string;
  sshUser?: string;
  sshPort?: string;
  sshKey?: string;
  connectTimeout?: string;
  knownHosts?: string;
  vip?: string;
  interface?: string;
  vrrp?: string;
  adminCidr?: string[];
  runtime?: string;
}

const flagNumber = (s: string | undefined) => (s === undefined ? undefined : /^\d+$/.test(s.trim()) ? Number(s) : NaN);

/** The flags in the answers file's shape, checked the same way; messages name the flag. */
export async function checkFlags(
  f: AnswerFlags,
  opts: { baseDir: string; resolve?: Resolver },
): Promise<{ given: Given; errors: string[] }> {
  const errors: string[] = [];
  const raw: RawAnswers = {};
  const hosts: NonNullable<RawAnswers['hosts']> = {};
  if (f.cluster !== undefined) raw.cluster = f.cluster;
  if (f.webNodes !== undefined) raw.web_nodes = flagNumber(f.webNodes);
  if (f.dbReplica !== undefined) raw.db_replica = f.dbReplica;
  for (const g of GROUPS) if (f[g] !== undefined) hosts[g] = V.splitList(f[g]!);
  if (Object.keys(hosts).length) raw.hosts = hosts;
  const ssh: NonNullable<RawAnswers['ssh']> = {};
  if (f.sshUser !== undefined) ssh.user = f.sshUser;
  if (f.sshPort !== undefined) ssh.port = flagNumber(f.sshPort);
  if (f.sshKey !== undefined) ssh.private_key = f.sshKey;
  if (f.connectTimeout !== undefined) ssh.connect_timeout = flagNumber(f.connectTimeout);
  if (f.knownHosts !== undefined) ssh.known_hosts = f.knownHosts;
  if (Object.keys(ssh).length) raw.ssh = ssh;
  if (f.vip !== undefined) raw.vip = f.vip;
  if (f.interface !== undefined) raw.interface = f.interface;
  if (f.vrrp !== undefined) {
    if (f.vrrp === 'multicast' || f.vrrp === 'unicast') raw.vrrp = f.vrrp;
    else errors.push(`--vrrp: expected multicast or unicast, got "${f.vrrp}"`);
  }
  if (f.adminCidr !== undefined) raw.admin_cidrs = f.adminCidr.flatMap(V.splitList);
  if (f.runtime !== undefined) {
    if (f.runtime === 'bundled' || f.runtime === 'haproxy') raw.runtime = f.runtime;
    else errors.push(`--runtime: expected bundled or haproxy, got "${f.runtime}"`);
  }
  const where = (path: PathSegment[], message: string) => {
    const key = (path.length > 2 && path[0] === 'hosts' ? path.slice(0, 2) : path).join('.') as AnswerKey;
    return `${FLAGS[key] ?? key}: ${message}`;
  };
  const r = await checkGiven(raw, where, opts);
  return { given: r.given, errors: [...errors, ...r.errors] };
}

/** Answers given both ways: the flags win over the file. */
export function mergeGiven(file: Given, flags: Given): Given {
  const out: Given = {
    ...file,
    ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)),
    hosts: { ...file.hosts, ...flags.hosts },
  };
  // a topology given by one source and hosts by the other: the hosts decide
  if (flags.hosts.web && flags.webNodes === undefined) out.webNodes = flags.hosts.web.length;
  if (flags.hosts.db && flags.dbReplica === undefined) out.dbReplica = flags.hosts.db.length > 1;
  return out;
}

/** How many hosts of each group the topology wants. */
export function hostCounts(given: Pick<Given, 'webNodes' | 'dbReplica' | 'hosts'>): Record<Group, number> {
  return {
    lb: 2,
    web: given.webNodes ?? given.hosts.web?.length ?? 2,
    db: given.hosts.db?.length ?? (given.dbReplica ? 2 : 1),
  };
}

/**
 * The answers that have no default and were not given (the host addresses), as the flags that
 * give them: what a run without a terminal lists instead of waiting.
 */
export function missingAnswers(given: Given): { flag: string; what: string }[] {
  const counts = hostCounts(given);
  const out: { flag: string; what: string }[] = [];
  for (const g of GROUPS) {
    const have = given.hosts[g]?.length ?? 0;
    if (have >= counts[g]) continue;
    const n = counts[g];
    const what =
      g === 'lb'
        ? 'the addresses of the 2 load balancers'
        : g === 'web'
          ? `the address${n > 1 ? 'es' : ''} of the ${n} web node${n > 1 ? 's' : ''}`
          : n > 1
            ? `the addresses of the MySQL primary and its replica${n > 2 ? 's' : ''}`
            : 'the address of the MySQL primary';
    const example = Array.from({ length: Math.min(n, 2) }, (_, i) => `${defaultHostName(g, i)}=ADDRESS`).join(',') + (n > 2 ? ',...' : '');
    out.push({ flag: `${FLAGS[`hosts.${g}`]} ${example}`, what });
  }
  return out;
}
