// The daemon: runs the configured VRRP instances on raw sockets, tracks scripts and interfaces,
// manages virtual addresses, runs notify scripts, writes the status file, reloads on SIGHUP and
// leaves cleanly on SIGTERM.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  parseConfig,
  ConfigError,
  type VrrpdConfig,
  type VrrpInstanceConfig,
  type VrrpScriptConfig,
  type VirtualAddress,
} from './config.ts';
import { VrrpInstance, realClock, type InstanceIO, type State, type InstanceStatus } from './instance.ts';
import { encodeAdvert, encodeIp, decodeIp, VRRP_MCAST, AUTH_NONE, AUTH_PASS, VRRP_PROTO } from './packet.ts';
import { ScriptTracker, commandRunner, combineTracking, interfaceUp, type RunAs, type CheckStatus } from './track.ts';
import {
  loadNative,
  interfaceIndex,
  primaryAddress,
  addVip,
  delVip,
  sendGarps,
  vipPresent,
  type VrrpNet,
  type NativeSocket,
} from './net.ts';

export const DEFAULT_STATUS_FILE = '/run/hasetup-vrrpd/status.json';
const INTERFACE_POLL_MS = 500;
const STATUS_PERIOD_MS = 1000;

export interface DaemonOptions {
  configFile: string;
  statusFile: string | null;
  log?: (line: string) => void;
}

export interface StatusFile {
  daemon: 'hasetup-vrrpd';
  pid: number;
  configFile: string;
  routerId: string | null;
  startedAt: string;
  updatedAt: string;
  instances: (Omit<InstanceStatus, 'since'> & {
    interface: string;
    vips: string[];
    since: string;
    scripts: { name: string; status: CheckStatus }[];
  })[];
}

interface Running {
  cfg: VrrpInstanceConfig;
  inst: VrrpInstance;
  sock: NativeSocket | null;
  sockError: string | null;
  /** the interface index the socket was opened on (an interface re-created gets a new one) */
  ifindex: number | null;
  garpTimers: ReturnType<typeof setTimeout>[];
  interfaces: Map<string, boolean>;
}

function sameScript(a: VrrpScriptConfig, b: VrrpScriptConfig): boolean {
  const strip = (s: VrrpScriptConfig) => JSON.stringify({ ...s, where: undefined });
  return strip(a) === strip(b);
}

/** Whether a reload can keep the running instance (and its state). */
function compatible(a: VrrpInstanceConfig, b: VrrpInstanceConfig): boolean {
  return (
    a.interface === b.interface &&
    a.vrid === b.vrid &&
    a.version === b.version &&
    a.unicastSrcIp === b.unicastSrcIp &&
    JSON.stringify(a.unicastPeers) === JSON.stringify(b.unicastPeers)
  );
}

function lookupUser(user: string, group?: string): RunAs {
  const field = (file: string, name: string, idx: number): number | undefined => {
    try {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        const f = line.split(':');
        if (f[0] === name || (/^\d+$/.test(name) && f[2] === name)) return Number(f[idx]);
      }
    } catch {}
    return undefined;
  };
  const uid = field('/etc/passwd', user, 2);
  if (uid === undefined) throw new Error(`script_user: no user ${user}`);
  const gid = group ? field('/etc/group', group, 2) : field('/etc/passwd', user, 3);
  if (gid === undefined) throw new Error(`script_user: no group ${group}`);
  return { uid, gid };
}

export class Daemon {
  config!: VrrpdConfig;
  private net: VrrpNet;
  private running = new Map<string, Running>();
  private trackers = new Map<string, ScriptTracker>();
  private runAs: RunAs = {};
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private statusTimer: ReturnType<typeof setInterval> | null = null;
  private lastStatus = '';
  private statusFailing = false;
  private readonly startedAt = new Date().toISOString();
  private stopping = false;
  private notifyChildren = new Set<ReturnType<typeof spawn>>();
  private readonly log: (line: string) => void;

  constructor(private readonly opts: DaemonOptions) {
    this.log = opts.log ?? ((line) => console.log(line));
    this.net = loadNative();
  }

  private say(inst: string | null, msg: string): void {
    this.log(`${inst ? `(${inst}) ` : ''}${msg}`);
  }

  async start(): Promise<void> {
    this.config = parseConfig(this.opts.configFile);
    for (const w of [...this.config.warnings, ...this.config.unknowns]) this.say(null, `warning: ${w.file}:${w.line}: ${w.message}`);
    this.applyScriptSettings();
    await this.syncTrackers();
    this.removeLeftovers();
    for (const cfg of this.config.instances) this.startInstance(cfg);
    this.pollTimer = setInterval(() => this.pollInterfaces(), INTERFACE_POLL_MS);
    this.statusTimer = setInterval(() => this.writeStatus(false), STATUS_PERIOD_MS);
    this.writeStatus(true);
    this.say(null, `started with ${this.config.instances.length} instance(s) from ${this.opts.configFile}`);
  }

  /**
   * At start, before any instance leaves INIT: a VIP of ours already on its interface was left behind
   * by a daemon that did not end cleanly (SIGKILL, the OOM killer, a crash). This host does not hold
   * it (it starts as a backup), so it goes at once: otherwise this host's kernel keeps answering for
   * it (resets to the clients' new connections) until the instance leaves INIT. An address owner
   * (priority 255) becomes master at once and keeps it.
   */
  private removeLeftovers(): void {
    for (const cfg of this.config.instances) {
      if (cfg.priority === 255) continue;
      const left = cfg.vips.filter((v) => vipPresent(v));
      if (left.length === 0) continue;
      const errors = left.map((v) => delVip(this.net, v)).filter((e): e is string => !!e);
      const what = left.map((v) => `${v.address}/${v.prefix} dev ${v.dev}`).join(', ');
      this.say(
        cfg.name,
        `${what} found on the interface at start (left behind by a daemon that did not stop cleanly): ${errors.length ? `not removed: ${errors.join('; ')}` : 'removed before starting as a backup'}`,
      );
    }
  }

  private applyScriptSettings(): void {
    const su = this.config.global.scriptUser;
    this.runAs = su ? lookupUser(su.user, su.group) : {};
  }

  private checkScriptSecurity(argv: string[], what: string): boolean {
    if (!this.config.global.enableScriptSecurity) return true;
    const file = argv[0];
    if (!file.startsWith('/')) {
      this.say(null, `${what}: enable_script_security needs an absolute path, refusing ${file}`);
      return false;
    }
    try {
      const st = statSync(file);
      if (st.uid !== 0 || st.mode & 0o022) {
        this.say(null, `${what}: ${file} is writable by someone other than root, refusing it (enable_script_security)`);
        return false;
      }
    } catch (e) {
      this.say(null, `${what}: ${file}: ${(e as Error).message}`);
      return false;
    }
    return true;
  }

  /** Starts, keeps or replaces the vrrp_script trackers to match the config; waits for new ones' first result. */
  private async syncTrackers(): Promise<void> {
    const first: Promise<void>[] = [];
    for (const [name, t] of this.trackers) {
      const cfg = this.config.scripts[name];
      if (!cfg || !sameScript(cfg, t.cfg)) {
        t.stop();
        this.trackers.delete(name);
      }
    }
    const runner = commandRunner(this.runAs);
    for (const cfg of Object.values(this.config.scripts)) {
      if (this.trackers.has(cfg.name)) continue;
      const secure = this.checkScriptSecurity(cfg.argv, `vrrp_script ${cfg.name}`);
      const t = new ScriptTracker(cfg, secure ? runner : async () => false, realClock, (tr, before) => {
        this.say(null, `vrrp_script ${tr.cfg.name}: ${before} -> ${tr.status}`);
        this.updateTracking();
      });
      this.trackers.set(cfg.name, t);
      first.push(t.start());
    }
    await Promise.all(first);
  }

  private instanceIO(name: string): InstanceIO {
    return {
      sendAdvert: (priority) => this.sendAdvert(name, priority),
      acquire: () => this.acquire(name),
      release: () => this.release(name),
      transition: (from, to, reason) => this.onTransition(name, from, to, reason),
      log: (msg) => {
        this.writeStatus(false);
        this.say(name, msg);
      },
    };
  }

  private vipSet(): Set<string> {
    const s = new Set<string>();
    for (const r of this.running.values()) for (const v of r.cfg.vips) s.add(v.address);
    for (const i of this.config.instances) for (const v of i.vips) s.add(v.address);
    return s;
  }

  private localAddress(cfg: VrrpInstanceConfig): string | null {
    return cfg.unicastSrcIp ?? primaryAddress(cfg.interface, this.vipSet());
  }

  private openSocket(r: Running): void {
    if (r.sock) return;
    try {
      r.ifindex = interfaceIndex(r.cfg.interface);
      r.sock = this.net.open(r.cfg.interface, r.cfg.unicastPeers.length === 0, (pkt) => this.onPacket(r, pkt));
      if (r.sockError) this.say(r.cfg.name, `socket on ${r.cfg.interface} open again`);
      r.sockError = null;
    } catch (e) {
      const msg = `${r.cfg.interface}: ${(e as Error).message}`;
      if (msg !== r.sockError) this.say(r.cfg.name, `cannot open the VRRP socket: ${msg}`);
      r.sockError = msg;
    }
  }

  private onPacket(r: Running, pkt: Buffer): void {
    if (this.running.get(r.cfg.name) !== r) return;
    const ip = decodeIp(pkt);
    if (!ip || ip.protocol !== VRRP_PROTO) return;
    r.inst.receive(ip);
  }

  private startInstance(cfg: VrrpInstanceConfig): void {
    const local = this.localAddress(cfg) ?? '0.0.0.0';
    const inst = new VrrpInstance(cfg, local, this.instanceIO(cfg.name), realClock);
    const r: Running = { cfg, inst, sock: null, sockError: null, ifindex: null, garpTimers: [], interfaces: new Map() };
    this.running.set(cfg.name, r);
    this.openSocket(r);
    this.refreshInterfaces(r);
    const { delta, faults } = this.tracking(r);
    inst.setTracking(delta, faults);
    inst.start();
  }

  private refreshInterfaces(r: Running): boolean {
    let changed = false;
    const names = new Set(r.cfg.trackInterfaces.map((t) => t.name));
    if (r.cfg.trackPrimary) names.add(r.cfg.interface);
    for (const n of names) {
      const up = interfaceUp(n);
      if (r.interfaces.get(n) !== up) {
        if (r.interfaces.has(n)) this.say(r.cfg.name, `interface ${n} is ${up ? 'up' : 'down'}`);
        r.interfaces.set(n, up);
        changed = true;
      }
    }
    for (const n of [...r.interfaces.keys()]) if (!names.has(n)) r.interfaces.delete(n);
    return changed;
  }

  private tracking(r: Running): { delta: number; faults: string[] } {
    const scripts = r.cfg.trackScripts.map((ref) => ({ ref, tracker: this.trackers.get(ref.name)! })).filter((s) => s.tracker);
    const ifs = r.cfg.trackInterfaces.map((ref) => ({ ref, up: r.interfaces.get(ref.name) ?? false }));
    const res = combineTracking(scripts, ifs);
    if (
      r.cfg.trackPrimary &&
      !(r.interfaces.get(r.cfg.interface) ?? false) &&
      !r.cfg.trackInterfaces.some((t) => t.name === r.cfg.interface)
    )
      res.faults.push(`interface ${r.cfg.interface} down`);
    if (!r.sock) res.faults.push(`no VRRP socket (${r.sockError ?? 'not open'})`);
    if (r.inst.localAddress === '0.0.0.0') res.faults.push(`no IPv4 address on ${r.cfg.interface}`);
    return res;
  }

  private updateTracking(): void {
    for (const r of this.running.values()) {
      const { delta, faults } = this.tracking(r);
      r.inst.setTracking(delta, faults);
    }
  }

  private pollInterfaces(): void {
    for (const r of this.running.values()) {
      const changed = this.refreshInterfaces(r);
      if (r.sock && r.ifindex !== null && interfaceIndex(r.cfg.interface) !== r.ifindex) {
        this.say(r.cfg.name, `interface ${r.cfg.interface} was re-created: reopening the socket`);
        this.net.close(r.sock);
        r.sock = null;
      }
      if (!r.sock && interfaceUp(r.cfg.interface)) this.openSocket(r);
      if (r.inst.localAddress === '0.0.0.0') {
        const a = this.localAddress(r.cfg);
        if (a) r.inst.localAddress = a;
      }
      if (changed) this.writeStatus(false);
      const { delta, faults } = this.tracking(r);
      r.inst.setTracking(delta, faults);
    }
  }

  private sendAdvert(name: string, priority: number): void {
    const r = this.running.get(name);
    if (!r || !r.sock) return;
    const cfg = r.cfg;
    const src = r.inst.localAddress;
    const dsts = cfg.unicastPeers.length ? cfg.unicastPeers : [VRRP_MCAST];
    const addresses = cfg.vips.filter((v) => !v.excluded).map((v) => v.address);
    for (const dst of dsts) {
      const adv = encodeAdvert(
        {
          version: cfg.version,
          vrid: cfg.vrid,
          priority,
          interval: r.inst.intervalField,
          addresses,
          authType: cfg.auth ? AUTH_PASS : AUTH_NONE,
          authData: cfg.auth?.pass,
        },
        src,
        dst,
      );
      try {
        this.net.send(r.sock, encodeIp(src, dst, adv), dst);
      } catch (e) {
        this.say(name, `sending the advert to ${dst}: ${(e as Error).message}`);
      }
    }
  }

  private clearGarps(r: Running): void {
    for (const t of r.garpTimers) clearTimeout(t);
    r.garpTimers = [];
  }

  private garpBurst(r: Running, count: number): void {
    for (let i = 0; i < count; i++) for (const e of sendGarps(this.net, r.cfg.vips)) this.say(r.cfg.name, e);
  }

  private acquire(name: string): void {
    const r = this.running.get(name);
    if (!r) return;
    for (const v of r.cfg.vips) {
      const err = addVip(this.net, v);
      if (err) this.say(name, err);
    }
    if (r.inst.state !== 'MASTER') return;
    this.clearGarps(r);
    this.garpBurst(r, Math.max(1, r.cfg.garpMasterRepeat));
    if (r.cfg.garpMasterDelay > 0 && r.cfg.garpMasterRepeat > 0)
      r.garpTimers.push(
        setTimeout(() => r.inst.state === 'MASTER' && this.garpBurst(r, r.cfg.garpMasterRepeat), r.cfg.garpMasterDelay * 1000),
      );
    if (r.cfg.garpMasterRefresh > 0) {
      const t = setInterval(
        () => r.inst.state === 'MASTER' && this.garpBurst(r, r.cfg.garpMasterRefreshRepeat),
        r.cfg.garpMasterRefresh * 1000,
      );
      r.garpTimers.push(t as unknown as ReturnType<typeof setTimeout>);
    }
  }

  private release(name: string, vips?: VirtualAddress[]): void {
    const r = this.running.get(name);
    if (!r) return;
    this.clearGarps(r);
    for (const v of vips ?? r.cfg.vips) {
      const err = delVip(this.net, v);
      if (err) this.say(name, err);
    }
  }

  private onTransition(name: string, from: State, to: State, reason: string): void {
    const r = this.running.get(name);
    const prio = r ? r.inst.priority : 0;
    // the status file first: whoever reads the log line finds the file up to date
    this.writeStatus(true);
    this.say(name, `${from} -> ${to} (priority ${prio}): ${reason}`);
    // leftovers (e.g. after a crash) must not stay on a backup
    if (from === 'INIT' && to !== 'MASTER' && r) this.release(name);
    if (r) this.runNotify(r, to, prio);
  }

  private runNotify(r: Running, to: State, prio: number): void {
    const n = r.cfg.notify;
    const specific =
      to === 'MASTER' ? n.master : to === 'BACKUP' ? n.backup : to === 'FAULT' ? n.fault : to === 'STOP' ? n.stop : undefined;
    const cmds: string[][] = [];
    if (specific) cmds.push(specific);
    if (n.any && to !== 'INIT') cmds.push([...n.any, 'INSTANCE', r.cfg.name, to, String(prio)]);
    for (const argv of cmds) {
      if (!this.checkScriptSecurity(argv, `notify for ${r.cfg.name}`)) continue;
      try {
        const child = spawn(argv[0], argv.slice(1), { stdio: 'ignore', uid: this.runAs.uid, gid: this.runAs.gid });
        this.notifyChildren.add(child);
        const done = () => this.notifyChildren.delete(child);
        child.on('error', (e) => {
          done();
          this.say(r.cfg.name, `notify ${argv[0]}: ${e.message}`);
        });
        child.on('exit', (code) => {
          done();
          if (code) this.say(r.cfg.name, `notify ${argv.join(' ')} exited with ${code}`);
        });
      } catch (e) {
        this.say(r.cfg.name, `notify ${argv[0]}: ${(e as Error).message}`);
      }
    }
  }

  statusObject(): StatusFile {
    return {
      daemon: 'hasetup-vrrpd',
      pid: process.pid,
      configFile: this.opts.configFile,
      routerId: this.config?.global.routerId ?? null,
      startedAt: this.startedAt,
      updatedAt: new Date().toISOString(),
      instances: [...this.running.values()].map((r) => {
        const s = r.inst.status();
        return {
          ...s,
          since: new Date(Date.now() - (realClock.now() - s.since)).toISOString(),
          interface: r.cfg.interface,
          vips: r.cfg.vips.map((v) => `${v.address}/${v.prefix} dev ${v.dev}`),
          scripts: r.cfg.trackScripts.map((t) => ({ name: t.name, status: this.trackers.get(t.name)?.status ?? 'init' })),
        };
      }),
    };
  }

  private writeStatus(force: boolean): void {
    const file = this.opts.statusFile;
    if (!file) return;
    const obj = this.statusObject();
    const key = JSON.stringify({ ...obj, updatedAt: '' });
    if (!force && key === this.lastStatus) return;
    this.lastStatus = key;
    try {
      mkdirSync(dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(obj, null, 2) + '\n');
      renameSync(tmp, file);
      this.statusFailing = false;
    } catch (e) {
      if (!this.statusFailing) this.say(null, `status file ${file}: ${(e as Error).message} (said once until it works again)`);
      this.statusFailing = true;
    }
  }

  /** SIGHUP: re-reads the config; unchanged instances keep their state and addresses. */
  async reload(): Promise<void> {
    let next: VrrpdConfig;
    try {
      next = parseConfig(this.opts.configFile);
    } catch (e) {
      const msg = e instanceof ConfigError ? e.message : (e as Error).message;
      this.say(null, `reload refused, keeping the running configuration:\n${msg}`);
      return;
    }
    const prev = this.config;
    this.config = next;
    try {
      this.applyScriptSettings();
    } catch (e) {
      this.say(null, `reload refused: ${(e as Error).message}`);
      this.config = prev;
      return;
    }
    for (const w of [...next.warnings, ...next.unknowns]) this.say(null, `warning: ${w.file}:${w.line}: ${w.message}`);
    await this.syncTrackers();
    const wanted = new Map(next.instances.map((c) => [c.name, c]));
    for (const [name, r] of [...this.running]) {
      const cfg = wanted.get(name);
      if (cfg && compatible(r.cfg, cfg)) continue;
      this.say(name, cfg ? 'interface, VRID, version or peers changed: restarting the instance' : 'removed from the configuration');
      await this.stopInstance(r, 'removed or replaced by a reload');
    }
    for (const cfg of next.instances) {
      const r = this.running.get(cfg.name);
      if (!r) {
        this.startInstance(cfg);
        continue;
      }
      const old = r.cfg;
      r.cfg = cfg;
      const local = this.localAddress(cfg) ?? r.inst.localAddress;
      r.inst.reconfigure(cfg, local);
      if (r.inst.state === 'MASTER') {
        const key = (v: VirtualAddress) => `${v.address}/${v.prefix}/${v.dev}`;
        const keep = new Set(cfg.vips.map(key));
        const gone = old.vips.filter((v) => !keep.has(key(v)));
        if (gone.length) this.release(cfg.name, gone);
        const had = new Set(old.vips.map(key));
        if (cfg.vips.some((v) => !had.has(key(v)))) this.acquire(cfg.name);
      }
      this.refreshInterfaces(r);
    }
    this.updateTracking();
    this.writeStatus(true);
    this.say(null, `reloaded ${this.opts.configFile}`);
  }

  private async stopInstance(r: Running, reason: string, forget = true): Promise<void> {
    r.inst.shutdown(reason);
    this.clearGarps(r);
    if (r.sock) this.net.close(r.sock);
    r.sock = null;
    if (forget) this.running.delete(r.cfg.name);
  }

  /** SIGTERM: masters send priority 0 and remove their addresses; then the daemon can exit. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    for (const t of this.trackers.values()) t.stop();
    for (const r of [...this.running.values()]) await this.stopInstance(r, 'daemon stopping', false);
    this.writeStatusFinal();
    if (this.statusTimer) clearInterval(this.statusTimer);
    // give notify scripts (notify_stop) a moment to finish
    const deadline = Date.now() + 2000;
    while (this.notifyChildren.size && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
  }

  private writeStatusFinal(): void {
    const file = this.opts.statusFile;
    if (!file) return;
    try {
      const obj = this.statusObject();
      writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify({ ...obj, stopped: true }, null, 2) + '\n');
      renameSync(`${file}.${process.pid}.tmp`, file);
    } catch {}
  }
}
