// What the wizard learns from each host over SSH, all hosts in parallel with live progress: one
// connection per host (the engine's transport: host keys trusted on first use) and one round trip
// for the engine's facts plus what the checks need besides (sudo, free disk, the controller's
// address as the host sees it, the neighbours an LB knows). Later, the VIP is looked for from the
// LBs on a connection of its own.
//
// Host keys are recorded in a scratch copy of known_hosts while the wizard runs, and added to the
// real file (where apply reads them) only when the inventory is written: an interrupted or
// abandoned wizard leaves no file behind.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Listr } from 'listr2';
import { factsScript, parseFacts, splitSections, type Facts } from '../engine/facts.ts';
import { marker, shq } from '../engine/shell.ts';
import { checkHostKey, SshTransport, type Transport } from '../engine/transport.ts';
import type { Group } from './answers.ts';

export interface Target {
  name: string;
  group: Group;
  /** The address the cluster uses. */
  address: string;
  /** What SSH connects to (the address, or the name that was given). */
  sshHost: string;
}

export interface Access {
  user: string;
  port: number;
  /** Absolute path; none: the SSH agent's keys. */
  privateKey?: string;
  connectTimeout: number;
}

/** root: logged in as root; ok: sudo -n works; password: sudo wants a password (or refuses); missing: no sudo. */
export type SudoState = 'root' | 'ok' | 'password' | 'missing';

export interface HostKey {
  type: string;
  /** SHA256:... as ssh-keygen -l prints it. */
  fingerprint: string;
  /** True when known_hosts did not know the host yet (trust on first use). */
  firstUse: boolean;
}

export interface Reached {
  ok: true;
  target: string;
  facts: Facts;
  sudo: SudoState;
  /** sudo's own words when it refused. */
  sudoSays?: string;
  /** Free space of the file system that holds /var, in MiB (null when df gave nothing). */
  diskFreeMb: number | null;
  /** This machine's address as the host sees it (from $SSH_CONNECTION). */
  controller: string | null;
  /** Addresses the host has a link-layer neighbour for (taken addresses, for the VIP's suggestion). */
  neighbours: string[];
  hostKey: HostKey | null;
}

export interface Unreached {
  ok: false;
  /** What went wrong, in one line. */
  error: string;
  /** What to do about it. */
  fix: string;
}

export type Probe = Reached | Unreached;

/** The VIP seen from an LB: held by one of the LBs (the cluster runs), answering elsewhere on the network, free, or not checked. */
export type VipSeen = { state: 'held'; by: string } | { state: 'in use' | 'free' } | { state: 'unknown'; why: string };

const knownHostsName = (host: string, port: number) => (port === 22 ? host : `[${host}]:${port}`);

function fingerprint(blob: string): string {
  return `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

function keyLines(file: string): string[][] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {}
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(/\s+/));
}

// What the checks need besides the engine's facts: one section each, after the facts' own.
const EXTRA_SECTIONS: Record<string, string> = {
  sudo: 'if [ "$(id -u)" = 0 ]; then echo root; elif ! command -v sudo >/dev/null 2>&1; then echo missing; elif said=$(sudo -n true 2>&1 </dev/null); then echo ok; else echo password; printf "%s\\n" "$said" | head -n 1; fi',
  disk: "df -Pk /var 2>/dev/null | awk 'NR==2 {print $4}'",
  conn: 'echo "${SSH_CONNECTION:-$SSH_CLIENT}"',
  neigh: "ip -4 neigh show 2>/dev/null | awk '/lladdr/ {print $1}'",
};

const extraScript = (mark: string): string =>
  Object.entries(EXTRA_SECTIONS)
    .map(([name, cmd]) => `echo ${mark}${name}; ${cmd}`)
    .join('\n');

/** What to do when a host cannot be reached, from the transport's one line. */
/** ssh-ed25519 -> ED25519, as ssh-keygen -l names key types. */
export const keyType = (t: string): string =>
  t
    .replace(/^ssh-/, '')
    .replace(/^ecdsa-sha2-nistp\d+$/, 'ECDSA')
    .toUpperCase();

/** The interface that carries an address, with the address's prefix length. */
export function carrier(facts: Facts, address: string): { name: string; prefix: number } | null {
  for (const i of facts.interfaces)
    for (const a of i.addresses) {
      const [ip, p] = a.split('/');
      if (ip === address) return { name: i.name, prefix: Number(p) };
    }
  return null;
}

export function unreachableFix(why: string, t: Target, a: Access, knownHosts: string): string {
  if (/host key for .* has changed/.test(why))
    return `if ${t.name} was rebuilt, remove its line from ${knownHosts}; otherwise find out who answers on ${t.sshHost}`;
  if (/connection refused/.test(why)) return `start sshd on ${t.name}, or give the port it listens on (now ${a.port})`;
  if (/no route to host|no answer within|ENOTFOUND|EAI_AGAIN|getaddrinfo/.test(why))
    return `check that ${t.sshHost} is ${t.name}'s address and that the host is up (and that nothing drops port ${a.port})`;
  if (/authentication as/.test(why))
    return `add the public key of ${a.privateKey ?? 'your SSH agent'} to ~${a.user}/.ssh/authorized_keys on ${t.name}, or choose another key or user`;
  if (/private key/.test(why)) return 'choose a private key this user can read';
  return `check SSH to ${a.user}@${t.sshHost} -p ${a.port} by hand`;
}

export class Prober {
  private readonly open = new Set<Transport>();
  private constructor(
    /** The real known_hosts (where apply reads it). */
    readonly knownHosts: string,
    private readonly dir: string,
    private readonly known: string[][],
  ) {}

  /** The scratch known_hosts the connections record into. */
  get scratch(): string {
    return join(this.dir, 'known_hosts');
  }

  static create(knownHosts: string): Prober {
    const dir = mkdtempSync(join(tmpdir(), 'hasetup-init-'));
    if (existsSync(knownHosts)) copyFileSync(knownHosts, join(dir, 'known_hosts'));
    return new Prober(knownHosts, dir, keyLines(knownHosts));
  }

  private hostKey(t: Target, port: number): HostKey | null {
    const name = knownHostsName(t.sshHost, port);
    const mine = keyLines(this.scratch).filter((f) => f[0].split(',').includes(name));
    const line = mine[mine.length - 1];
    if (!line) return null;
    const firstUse = !this.known.some((f) => f[0].split(',').includes(name) && f[1] === line[1] && f[2] === line[2]);
    return { type: line[1], fingerprint: fingerprint(line[2]), firstUse };
  }

  private connect(t: Target, a: Access): Promise<Transport> {
    return SshTransport.connect({
      name: t.name,
      host: t.sshHost,
      port: a.port,
      user: a.user,
      privateKey: a.privateKey,
      become: false, // as the user: sudo is one of the checks
      connectTimeout: a.connectTimeout,
      knownHosts: this.scratch,
    });
  }

  /**
   * Runs fn on a connection of its own, closed right after: no connection stays open while the
   * wizard waits for the user (a host that drops an idle connection cannot disturb it).
   */
  private async session<T>(t: Transport, fn: (t: Transport) => Promise<T>): Promise<T> {
    this.open.add(t);
    try {
      return await fn(t);
    } finally {
      this.open.delete(t);
      await t.close();
    }
  }

  /** Connects and reads what the checks need. */
  async probe(t: Target, a: Access): Promise<Probe> {
    let tr: Transport;
    try {
      tr = await this.connect(t, a);
    } catch (e) {
      const msg = (e as Error).message.split(this.scratch).join(this.knownHosts);
      const why = msg.replace(/^.*?: unreachable: /, '');
      return { ok: false, error: why, fix: unreachableFix(why, t, a, this.knownHosts) };
    }
    const mark = marker();
    return this.session(tr, async (tr) => {
      try {
        const r = await tr.exec(`${factsScript(mark)}\n${extraScript(mark)}`);
        if (!r.stdout.includes(mark)) throw new Error(`exit ${r.code}: ${r.stderr.trim().split('\n')[0] ?? ''}`);
        const facts = parseFacts(r.stdout, mark);
        const sec = splitSections(r.stdout, mark);
        const [sudo = 'password', ...said] = (sec.sudo ?? '').trim().split('\n');
        const disk = (sec.disk ?? '').trim();
        return {
          ok: true,
          target: tr.target,
          facts,
          sudo: (['root', 'ok', 'password', 'missing'].includes(sudo) ? sudo : 'password') as SudoState,
          ...(said.length && said[0] ? { sudoSays: said[0].trim() } : {}),
          diskFreeMb: /^\d+$/.test(disk) ? Math.floor(Number(disk) / 1024) : null,
          controller: (sec.conn ?? '').trim().split(/\s+/)[0] || null,
          neighbours: (sec.neigh ?? '')
            .split('\n')
            .map((l) => l.trim())
            .filter(Boolean),
          hostKey: this.hostKey(t, a.port),
        };
      } catch (e) {
        return {
          ok: false,
          error: `connected, but reading the host failed: ${(e as Error).message}`,
          fix: `check that ${t.name} has a POSIX shell and its usual tools (ip, df, awk)`,
        };
      }
    });
  }

  /** Whether the VIP is free, seen from an LB (facts: what its probe found). */
  async vipSeen(lb: Target, a: Access, vip: string, facts: Facts): Promise<VipSeen> {
    if (carrier(facts, vip)) return { state: 'held', by: lb.name };
    let tr: Transport;
    try {
      tr = await this.connect(lb, a);
    } catch (e) {
      return { state: 'unknown', why: `${lb.name} did not answer again (${(e as Error).message.replace(/^.*?: unreachable: /, '')})` };
    }
    const r = await this.session(tr, (tr) =>
      tr.exec(
        `if command -v ping >/dev/null 2>&1; then ping -n -c 1 -W 1 ${shq(vip)} >/dev/null 2>&1 && echo answered; else echo noping; fi; ip -4 neigh show ${shq(vip)} 2>/dev/null`,
      ),
    );
    if (/^answered$/m.test(r.stdout) || /lladdr/.test(r.stdout)) return { state: 'in use' };
    if (/^noping$/m.test(r.stdout)) return { state: 'unknown', why: `${lb.name} has no ping command` };
    return { state: 'free' };
  }

  /** Adds the keys first seen in this run to the real known_hosts; returns how many it added. */
  async recordKeys(targets: Target[], port: number): Promise<number> {
    let added = 0;
    for (const t of targets) {
      const name = knownHostsName(t.sshHost, port);
      for (const f of keyLines(this.scratch).filter((x) => x[0].split(',').includes(name))) {
        const r = await checkHostKey(this.knownHosts, t.sshHost, port, Buffer.from(f[2], 'base64'));
        if (r.ok && r.recorded) added++;
      }
    }
    return added;
  }

  async close(): Promise<void> {
    await Promise.all([...this.open].map((t) => t.close().catch(() => {})));
    this.open.clear();
    this.removeScratch();
  }

  /** Synchronous part of close(), for an exit on a signal. */
  removeScratch(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One line about a reached host, for the live progress. */
export function reachedLine(p: Reached): string {
  const key = p.hostKey
    ? `${keyType(p.hostKey.type)} ${p.hostKey.fingerprint} (${p.hostKey.firstUse ? 'new key' : 'known key'})`
    : 'key checked';
  return `${key}, ${p.facts.os.prettyName || p.facts.os.id || 'unknown system'}`;
}

/**
 * Probes the targets in parallel with live progress (listr2: a spinner per host on a terminal, a
 * line per host otherwise). Results by host name.
 */
export async function probeAll(prober: Prober, targets: Target[], access: Access, opts: { plain: boolean }): Promise<Map<string, Probe>> {
  const results = new Map<string, Probe>();
  const tasks = targets.map((t) => ({
    title: `${t.name} (${t.sshHost})`,
    task: async (_ctx: unknown, task: { title: string; output: string }) => {
      task.output = `connecting as ${access.user} to port ${access.port}`;
      const p = await prober.probe(t, access);
      results.set(t.name, p);
      if (!p.ok) throw new Error(`${t.name} (${t.sshHost}): ${p.error}`);
      task.title = `${t.name} ${t.sshHost}: ${reachedLine(p)}`;
    },
  }));
  await new Listr(tasks, {
    concurrent: true,
    exitOnError: false,
    registerSignalListeners: false,
    renderer: opts.plain ? 'simple' : 'default',
    rendererOptions: { collapseErrors: false },
  })
    .run()
    .catch(() => {});
  return results;
}
