// Network namespaces for the vrrpd integration tests and benchmark: a LAN (a bridge in a switch
// namespace, hosts on veth pairs) or a routed pair (two subnets joined by a router namespace, where
// link-local multicast cannot pass), the daemon and Debian's keepalived run inside them, and a probe.
// Every name carries the process id, and cleanup() removes everything created here.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const BUNDLE = join(ROOT, 'dist/runtime/hasetup-vrrpd.cjs');

let seq = 0;

export function sh(cmd: string[], check = true): string {
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8' });
  if (check && r.status !== 0) throw new Error(`${cmd.join(' ')}: ${r.stderr || r.error}`);
  return r.stdout;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls pred every stepMs until it is true or timeoutMs passes; returns the elapsed ms or null. */
export async function waitFor(pred: () => boolean, timeoutMs: number, stepMs = 10): Promise<number | null> {
  const t0 = performance.now();
  for (;;) {
    if (pred()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) return null;
    await sleep(stepMs);
  }
}

export interface Host {
  ns: string;
  addr: string;
  ifname: string;
}

export class Topology {
  readonly id: string;
  readonly namespaces: string[] = [];
  readonly dir: string;
  readonly hosts: Host[] = [];
  private procs: { child: ChildProcess; pids: () => number[] }[] = [];
  sw = '';

  constructor() {
    this.id = `vrd${process.pid}x${seq++}`;
    this.dir = mkdtempSync(join(tmpdir(), 'vrrpd-it-'));
  }

  private addNs(suffix: string): string {
    const ns = `${this.id}${suffix}`;
    sh(['ip', 'netns', 'add', ns]);
    this.namespaces.push(ns);
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** n hosts 10.77.0.1..n on one bridge. */
  static lan(n: number): Topology {
    const t = new Topology();
    try {
      t.sw = t.addNs('sw');
      sh(['ip', '-n', t.sw, 'link', 'add', 'br0', 'type', 'bridge']);
      sh(['ip', '-n', t.sw, 'link', 'set', 'br0', 'up']);
      for (let i = 1; i <= n; i++) {
        const ns = t.addNs(`h${i}`);
        sh(['ip', 'link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', t.sw]);
        sh(['ip', '-n', t.sw, 'link', 'set', `p${i}`, 'master', 'br0', 'up']);
        sh(['ip', '-n', ns, 'addr', 'add', `10.77.0.${i}/24`, 'dev', 'eth0']);
        sh(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
        t.hosts.push({ ns, addr: `10.77.0.${i}`, ifname: 'eth0' });
      }
    } catch (e) {
      t.cleanup();
      throw e;
    }
    return t;
  }

  /** two hosts on different subnets (10.78.1.2 and 10.78.2.2) behind a router namespace. */
  static routed(): Topology {
    const t = new Topology();
    try {
      const r = t.addNs('r');
      t.sw = r;
      sh(['ip', 'netns', 'exec', r, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      for (let i = 1; i <= 2; i++) {
        const ns = t.addNs(`h${i}`);
        sh(['ip', 'link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', r]);
        sh(['ip', '-n', r, 'addr', 'add', `10.78.${i}.1/24`, 'dev', `p${i}`]);
        sh(['ip', '-n', r, 'link', 'set', `p${i}`, 'up']);
        sh(['ip', '-n', ns, 'addr', 'add', `10.78.${i}.2/24`, 'dev', 'eth0']);
        sh(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
        sh(['ip', '-n', ns, 'route', 'add', 'default', 'via', `10.78.${i}.1`]);
        t.hosts.push({ ns, addr: `10.78.${i}.2`, ifname: 'eth0' });
      }
    } catch (e) {
      t.cleanup();
      throw e;
    }
    return t;
  }

  file(name: string, text: string): string {
    const p = join(this.dir, name);
    writeFileSync(p, text);
    return p;
  }

  /** Cuts (or restores) a LAN host's link at the switch. */
  setLink(host: number, up: boolean): void {
    sh(['ip', '-n', this.sw, 'link', 'set', `p${host + 1}`, up ? 'up' : 'down']);
  }

  /** Partitions a LAN host (or heals it): its port leaves the bridge, its own link stays up. */
  partition(host: number, cut: boolean): void {
    sh(['ip', '-n', this.sw, 'link', 'set', `p${host + 1}`, ...(cut ? ['nomaster'] : ['master', 'br0'])]);
  }

  /** Sends one UDP datagram from host to addr (resolving its neighbour entry on the way). */
  udp(host: number, addr: string, port = 9): void {
    const js = `const s=require('dgram').createSocket('udp4');s.send('x',${port},'${addr}',()=>setTimeout(()=>s.close(),200))`;
    sh(['ip', 'netns', 'exec', this.hosts[host].ns, process.execPath, '-e', js]);
  }

  addresses(host: number): string[] {
    return sh(['ip', '-n', this.hosts[host].ns, '-4', '-o', 'addr', 'show', 'dev', this.hosts[host].ifname])
      .split('\n')
      .map((l) => /inet (\S+)\//.exec(l)?.[1])
      .filter((a): a is string => !!a);
  }

  /** indexes of the hosts that have the address */
  holders(vip: string): number[] {
    return this.hosts.map((_, i) => i).filter((i) => this.addresses(i).includes(vip));
  }

  /** Waits until exactly these hosts hold the address; asserts it. */
  async expectHolders(vip: string, hosts: number[], timeoutMs = 3000): Promise<void> {
    const ok = await waitFor(() => this.holders(vip).join() === hosts.join(), timeoutMs, 20);
    if (ok === null) throw new Error(`${vip} is on hosts [${this.holders(vip)}], expected [${hosts}]`);
  }

  mac(host: number): string {
    return sh(['ip', 'netns', 'exec', this.hosts[host].ns, 'cat', `/sys/class/net/${this.hosts[host].ifname}/address`]).trim();
  }

  /** Runs our daemon in host's namespace (`wrap`: a command it runs under, e.g. setpriv with its options). */
  vrrpd(host: number, name: string, conf: string, wrap: string[] = []): Vrrpd {
    const cfg = this.file(`${name}.conf`, conf);
    const status = join(this.dir, `${name}.status.json`);
    const logFile = join(this.dir, `${name}.log`);
    const child = spawn('ip', ['netns', 'exec', this.hosts[host].ns, ...wrap, process.execPath, BUNDLE, '-f', cfg, '-s', status], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const d = new Vrrpd(child, status, logFile, cfg);
    this.procs.push({ child, pids: () => (d.exited ? [] : [child.pid!]) });
    return d;
  }

  /** Runs Debian's keepalived (VRRP subsystem only) in host's namespace. */
  keepalived(host: number, name: string, conf: string): Keepalived {
    const cfg = this.file(`${name}.conf`, conf);
    const pidMain = join(this.dir, `${name}.pid`);
    const pidVrrp = join(this.dir, `${name}-vrrp.pid`);
    const logFile = join(this.dir, `${name}.log`);
    const child = spawn(
      'ip',
      ['netns', 'exec', this.hosts[host].ns, 'keepalived', '-n', '-l', '-D', '-P', '-f', cfg, '-p', pidMain, '-r', pidVrrp],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const k = new Keepalived(child, pidMain, pidVrrp, logFile);
    this.procs.push({ child, pids: () => k.pids() });
    return k;
  }

  cleanup(): void {
    for (const p of this.procs) {
      for (const pid of p.pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
    }
    // anything still inside our namespaces was started by this topology
    for (const ns of this.namespaces) {
      for (const pid of sh(['ip', 'netns', 'pids', ns], false).split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {}
      }
    }
    for (const ns of this.namespaces) sh(['ip', 'netns', 'del', ns], false);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface InstanceState {
  name: string;
  state: string;
  priority: number;
  masterAddress: string | null;
  lastReason: string;
  faults: string[];
  counters: Record<string, number>;
}

/** A daemon's stdout and stderr, collected into `sink.out` and written to logFile as they come. */
function collectOutput(sink: { out: string }, child: ChildProcess, logFile: string): void {
  const add = (b: Buffer) => {
    sink.out += b.toString();
    try {
      writeFileSync(logFile, sink.out);
    } catch {} // after cleanup
  };
  child.stdout!.on('data', add);
  child.stderr!.on('data', add);
}

export class Vrrpd {
  out = '';
  exited = false;
  exitCode: number | null = null;
  private exitWaiters: (() => void)[] = [];

  constructor(
    readonly child: ChildProcess,
    readonly statusFile: string,
    readonly logFile: string,
    readonly configFile: string,
  ) {
    collectOutput(this, child, logFile);
    child.on('exit', (code) => {
      this.exited = true;
      this.exitCode = code;
      for (const w of this.exitWaiters) w();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  status(): { pid: number; instances: InstanceState[] } | null {
    try {
      return JSON.parse(readFileSync(this.statusFile, 'utf8'));
    } catch {
      return null;
    }
  }

  state(instance = 'VI_1'): string | null {
    return this.status()?.instances.find((i) => i.name === instance)?.state ?? null;
  }

  instance(instance = 'VI_1'): InstanceState | undefined {
    return this.status()?.instances.find((i) => i.name === instance);
  }

  kill(sig: NodeJS.Signals): void {
    if (!this.exited) process.kill(this.pid, sig);
  }

  waitExit(timeoutMs = 10_000): Promise<boolean> {
    if (this.exited) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.exitWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }
}

/** running (not a zombie waiting to be reaped) */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

export class Keepalived {
  out = '';
  exited = false;
  constructor(
    readonly child: ChildProcess,
    readonly pidMain: string,
    readonly pidVrrp: string,
    readonly logFile: string,
  ) {
    collectOutput(this, child, logFile);
    child.on('exit', () => (this.exited = true));
  }

  private readPid(f: string): number | null {
    try {
      const n = Number(readFileSync(f, 'utf8').trim());
      return n > 0 ? n : null;
    } catch {
      return null;
    }
  }

  pids(): number[] {
    const out: number[] = [];
    if (!this.exited && this.child.pid) out.push(this.child.pid);
    const v = this.readPid(this.pidVrrp);
    if (v && alive(v)) out.push(v);
    return out;
  }

  async ready(timeoutMs = 10_000): Promise<boolean> {
    return (await waitFor(() => this.readPid(this.pidVrrp) !== null, timeoutMs, 50)) !== null;
  }

  /** A hard failure: the VRRP process dies without a word (the parent is stopped first so it cannot restart it or say goodbye). */
  killHard(): void {
    const main = this.child.pid!;
    const vrrp = this.readPid(this.pidVrrp);
    try {
      process.kill(main, 'SIGSTOP');
    } catch {}
    if (vrrp) {
      try {
        process.kill(vrrp, 'SIGKILL');
      } catch {}
    }
    try {
      process.kill(main, 'SIGKILL');
    } catch {}
  }

  /** A graceful stop (keepalived sends priority 0 and removes its VIPs). */
  term(): void {
    if (!this.exited) process.kill(this.child.pid!, 'SIGTERM');
  }

  async waitGone(timeoutMs = 10_000): Promise<boolean> {
    return (await waitFor(() => this.pids().length === 0, timeoutMs, 20)) !== null;
  }
}

/** A keepalived.conf for one instance. */
export function vrrpConf(o: {
  priority: number;
  version?: 2 | 3;
  advertInt?: number;
  vrid?: number;
  vip?: string;
  state?: 'MASTER' | 'BACKUP';
  nopreempt?: boolean;
  auth?: string;
  unicast?: { src: string; peers: string[] };
  extra?: string;
  global?: string;
}): string {
  return `global_defs {
  vrrp_version ${o.version ?? 2}
${o.global ?? ''}
}
vrrp_instance VI_1 {
  state ${o.state ?? 'BACKUP'}
  interface eth0
  virtual_router_id ${o.vrid ?? 51}
  priority ${o.priority}
  advert_int ${o.advertInt ?? 1}
${o.nopreempt ? '  nopreempt\n' : ''}${o.auth ? `  authentication {\n    auth_type PASS\n    auth_pass ${o.auth}\n  }\n` : ''}${
    o.unicast ? `  unicast_src_ip ${o.unicast.src}\n  unicast_peer {\n${o.unicast.peers.map((p) => `    ${p}\n`).join('')}  }\n` : ''
  }  virtual_ipaddress {
    ${o.vip ?? '10.77.0.100/24'} dev eth0
  }
${o.extra ?? ''}
}
`;
}
