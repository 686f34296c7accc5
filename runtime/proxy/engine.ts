// The engine: one per traffic worker. Its listeners and their admission (frontend and global maxconn), the
// configuration in force (frontends, backends, servers), server connections and their idle pool, and the
// sessions (http-session.ts, tcp-session.ts). Health states come from the control plane (control.ts) through
// applyHealth().
import net from 'node:net';
import type { ParsedConfig, ProxyConfig } from './config.ts';
import { effectiveTimeouts } from './config.ts';
import { newCounters, Rate, type Counters } from './counters.ts';
import { Logger } from './log.ts';
import { clock, connectReads } from './reads.ts';
import { BeRt, type SrvRt } from './balance.ts';
import { Doorbells, SharedState } from './shared.ts';
import { TlsTerminator } from './tls-terminate.ts';
import { ServerConn } from './serverconn.ts';
import { HttpSession } from './http-session.ts';
import { TcpSession } from './tcp-session.ts';

export type AdminState = 'ready' | 'drain' | 'maint';

/** What the control plane tells every engine about one server ("backend/server"). */
export interface HealthUpdate {
  key: string;
  up: boolean;
  admin: AdminState;
  since: number; // ms epoch of the last transition to UP (slowstart), 0 = at start
}

export interface LocalResponse {
  status: number;
  headers: [string, string][];
  body: Buffer;
}

export type StatsKind = 'html' | 'csv' | 'prom';

/** Calls from an engine to the control plane. */
export interface ControlLink {
  observe(key: string, ok: boolean, layer: 'layer4' | 'layer7'): void;
  render(kind: StatsKind, proxy: string, uri: string): Promise<LocalResponse>;
  /** A listening socket's handle for host:port made elsewhere (a worker's own SO_REUSEPORT socket); absent: bind here. */
  openListener?(host: string, port: number, backlog: number): Promise<object>;
}

/** A bind's host:port key, what the engine keeps its listeners by. */
function bindKey(b: { host: string; port: number }): string {
  return `${b.host || '0.0.0.0'}:${b.port}`;
}

/** The listening addresses of a configuration, as host:port keys. */
export function listenKeys(cfg: ParsedConfig): Set<string> {
  return new Set(cfg.proxies.flatMap((p) => p.binds.map(bindKey)));
}

const LISTEN_BACKLOG = 4096;
export class FeRt {
  listeners: net.Server[] = [];
  cur = 0;
  pending: net.Socket[] = [];
  c = newCounters();
  connRate = new Rate();
  reqRate = new Rate();
  sessRate = new Rate();
  /** The frontend's own timeouts (a session's until it has a backend), computed once. */
  readonly timeouts: ReturnType<typeof effectiveTimeouts>;
  constructor(public cfg: ProxyConfig) {
    this.timeouts = effectiveTimeouts(cfg, cfg);
  }
}

export interface World {
  cfg: ParsedConfig;
  fes: FeRt[];
  bes: Map<string, BeRt>;
  shared: SharedState;
  /** the TLS termination of each `bind ... ssl` address (host:port) */
  tls: Map<string, TlsTerminator>;
}

/** Where an engine is among the traffic workers, and the state they share (one worker: its own). */
export interface Sharing {
  /** this configuration's shared buffer (shared.ts), the same for every worker */
  sab?: SharedArrayBuffer;
  /** the doorbells of all workers, and this worker's number */
  bells: SharedArrayBuffer;
  worker: number;
  workers: number;
}

export class Engine {
  world!: World;
  actconn = 0;
  logger: Logger;
  private listeners = new Map<string, net.Server>();
  private sessions = new Set<HttpSession | TcpSession>();
  private draining = false;
  private health = new Map<string, HealthUpdate>();

  private bells: Doorbells;
  /** backends with requests of this worker waiting, whatever their configuration */
  private waiting = new Set<BeRt>();

  constructor(
    cfg: ParsedConfig,
    public link: ControlLink,
    sharing: Sharing = { bells: Doorbells.create(), worker: 0, workers: 1 },
  ) {
    this.logger = new Logger(cfg.global.logTag);
    this.bells = new Doorbells(sharing.bells, sharing.worker, sharing.workers);
    this.bells.onRing = () => {
      for (const be of [...this.waiting]) be.dequeue();
    };
    this.world = this.build(cfg, sharing.sab);
  }

  private build(cfg: ParsedConfig, sab: SharedArrayBuffer | undefined): World {
    const shared = new SharedState(cfg, sab);
    const bes = new Map<string, BeRt>();
    const fes: FeRt[] = [];
    for (const p of cfg.proxies) {
      if (p.kind !== 'frontend') bes.set(p.name, new BeRt(p, shared, this.bells, this.waiting));
      if (p.kind !== 'backend') fes.push(new FeRt(p));
    }
    // a configuration made here (one worker, or a test) starts from the health states known so far
    if (!sab)
      for (const b of bes.values())
        for (const s of b.servers) {
          const h = this.health.get(s.key);
          s.up = h ? h.up : true;
          s.admin = h ? h.admin : s.cfg.disabled ? 'maint' : 'ready';
          s.since = h ? h.since : 0;
        }
    for (const b of bes.values()) for (const s of b.servers) s.seenUsable = s.usable();
    const tls = new Map<string, TlsTerminator>();
    for (const fe of fes) for (const b of fe.cfg.binds) if (b.tls) tls.set(bindKey(b), new TlsTerminator(b.tls));
    return { cfg, fes, bes, shared, tls };
  }

  /** Opens every listener of the configuration (fails on the first one that cannot be bound). */
  async listen(): Promise<void> {
    await this.bindAll(this.world);
  }

  private async bindAll(w: World): Promise<void> {
    const wanted = new Map<string, FeRt>();
    for (const fe of w.fes) for (const b of fe.cfg.binds) wanted.set(bindKey(b), fe);
    for (const [addr, fe] of wanted) {
      let srv = this.listeners.get(addr);
      if (!srv) {
        srv = net.createServer({ pauseOnConnect: true, noDelay: true, allowHalfOpen: true });
        const i = addr.lastIndexOf(':');
        const host = addr.slice(0, i);
        const port = Number(addr.slice(i + 1));
        const handle = this.link.openListener ? await this.link.openListener(host, port, LISTEN_BACKLOG) : null;
        await new Promise<void>((res, rej) => {
          srv!.once('error', rej);
          const done = () => {
            srv!.off('error', rej);
            res();
          };
          if (handle) srv!.listen(handle, LISTEN_BACKLOG, done);
          else srv!.listen({ host, port, backlog: LISTEN_BACKLOG }, done);
        });
        srv.on('error', () => {});
        this.listeners.set(addr, srv);
      }
      srv.removeAllListeners('connection');
      const s = srv;
      srv.on('connection', (sock: net.Socket) => this.accept(fe, sock, addr));
      fe.listeners.push(s);
    }
    for (const [addr, srv] of this.listeners)
      if (!wanted.has(addr)) {
        srv.close();
        this.listeners.delete(addr);
      }
  }

  /** Swaps in a new configuration; listeners on the same address are kept, sessions finish on the old one. */
  async reload(cfg: ParsedConfig, sab?: SharedArrayBuffer): Promise<void> {
    const w = this.build(cfg, sab);
    // carry the pending accept queues
    for (const fe of this.world.fes) {
      const nfe = w.fes.find((f) => f.cfg.name === fe.cfg.name) ?? w.fes[0];
      if (nfe) nfe.pending.push(...fe.pending);
      else for (const s of fe.pending) s.destroy();
      fe.pending = [];
    }
    // idle pooled server connections belong to the old servers: close them
    for (const b of this.world.bes.values()) for (const s of b.servers) for (const c of [...s.idle]) c.kill();
    await this.bindAll(w);
    this.logger.close();
    this.logger = new Logger(cfg.global.logTag);
    this.world = w;
    for (const fe of w.fes) this.admit(fe);
  }

  private setHealth(s: SrvRt, h: HealthUpdate): void {
    // (with several workers the control plane has written these into the shared state already)
    s.up = h.up;
    s.admin = h.admin;
    s.since = h.since;
    const usable = s.usable();
    if (!s.seenUsable && usable) s.be.dequeue();
    if (!usable) for (const c of [...s.idle]) c.kill();
    s.seenUsable = usable;
  }

  applyHealth(list: HealthUpdate[]): void {
    for (const h of list) {
      this.health.set(h.key, h);
      const [b] = h.key.split('/');
      const be = this.world.bes.get(b);
      const s = be?.servers.find((x) => x.key === h.key);
      if (s) this.setHealth(s, h);
    }
    for (const be of this.world.bes.values()) be.failQueueWhenNoServer();
  }

  // the address each waiting connection came in on (its TLS termination is the configuration's of the moment it starts)
  private cameTo = new WeakMap<net.Socket, string>();

  private accept(fe: FeRt, sock: net.Socket, addr: string): void {
    if (this.draining) {
      sock.destroy();
      return;
    }
    this.cameTo.set(sock, addr);
    fe.pending.push(sock);
    sock.on('error', () => {});
    this.admit(fe);
  }

  /** Starts waiting connections while the frontend and global maxconn allow. */
  admit(fe: FeRt): void {
    const gmax = this.world.cfg.global.maxconn;
    while (fe.pending.length && fe.cur < fe.cfg.maxconn && this.actconn < gmax) {
      const sock = fe.pending.shift()!;
      if (sock.destroyed) continue;
      fe.cur++;
      this.actconn++;
      const now = clock();
      fe.c.conn_tot++;
      fe.c.stot++;
      fe.connRate.hit(now);
      fe.sessRate.hit(now);
      if (fe.cur > fe.c.smax) fe.c.smax = fe.cur;
      const tls = this.world.tls.get(this.cameTo.get(sock) ?? '');
      if (tls) {
        // HTTPS: the session reads and writes the TLS socket, which starts the handshake itself
        const c = tls.wrap(sock);
        c.on('error', () => {});
        this.sessions.add(new HttpSession(this, fe, c, true));
        continue;
      }
      const s = fe.cfg.mode === 'http' ? new HttpSession(this, fe, sock, false) : new TcpSession(this, fe, sock);
      this.sessions.add(s);
      sock.resume();
    }
  }

  sessionEnded(s: HttpSession | TcpSession): void {
    if (!this.sessions.delete(s)) return;
    s.fe.cur--;
    this.actconn--;
    this.admit(s.fe);
    if (this.draining && this.sessions.size === 0) this.drainDone?.();
    else if (this.actconn < this.world.cfg.global.maxconn) for (const fe of this.world.fes) if (fe.pending.length) this.admit(fe);
  }

  private drainDone: (() => void) | null = null;

  /** Stops accepting, lets sessions finish (idle keep-alive ones are closed), resolves when all ended or after maxWait. */
  drain(maxWait: number): Promise<void> {
    this.draining = true;
    for (const l of this.listeners.values()) l.close();
    this.listeners.clear();
    for (const fe of this.world.fes) for (const s of fe.pending.splice(0)) s.destroy();
    for (const s of this.sessions) s.stopWhenIdle();
    for (const b of this.world.bes.values()) for (const s of b.servers) for (const c of [...s.idle]) c.kill();
    if (this.sessions.size === 0) return Promise.resolve();
    return new Promise((res) => {
      const t = setTimeout(() => {
        for (const s of this.sessions) s.abort();
        res();
      }, maxWait);
      this.drainDone = () => {
        clearTimeout(t);
        res();
      };
    });
  }

  /** Counters of every proxy and server of the current configuration. */
  snapshot(): Snapshot {
    const now = clock();
    const out: Snapshot = { actconn: this.actconn, pid: process.pid, proxies: {} };
    for (const fe of this.world.fes) {
      const c = {
        ...fe.c,
        scur: fe.cur,
        rate: fe.sessRate.read(now),
        rate_max: fe.sessRate.max,
        req_rate: fe.reqRate.read(now),
        req_rate_max: fe.reqRate.max,
      };
      out.proxies[fe.cfg.name] = { fe: c, servers: {} };
    }
    for (const be of this.world.bes.values()) {
      const e = (out.proxies[be.cfg.name] ??= { servers: {} });
      let scur = 0;
      // (cur, smax, qcur and qmax are the whole proxy's: the statistics take them once, not summed over workers)
      for (const s of be.servers) {
        const cur = s.cur;
        scur += cur;
        e.servers[s.cfg.name] = { ...s.c, scur: cur, smax: s.smax, idle: s.idle.length };
      }
      e.be = { ...be.c, scur, smax: be.smax, qcur: be.queued, qmax: be.qmax, rate: be.sessRate.read(now), rate_max: be.sessRate.max };
    }
    return out;
  }

  connectServer(s: SrvRt, timeout: number, cb: (err: Error | null, sc: ServerConn | null) => void): void {
    let sc: ServerConn | null = null;
    const sock = net.connect({ host: s.cfg.host, port: s.cfg.port, noDelay: true, onread: connectReads((d) => sc?.onBytes(d)) });
    let done = false;
    const t = timeout > 0 ? setTimeout(() => fail(new Error('connect timeout')), timeout) : null;
    const fail = (e: Error) => {
      if (done) return;
      done = true;
      if (t) clearTimeout(t);
      sock.destroy();
      cb(e, null);
    };
    sock.once('error', fail);
    sock.once('connect', () => {
      if (done) return;
      done = true;
      if (t) clearTimeout(t);
      sock.off('error', fail);
      sc = new ServerConn(sock, s);
      cb(null, sc);
    });
  }

  takeIdle(s: SrvRt): ServerConn | null {
    while (s.idle.length) {
      const c = s.idle.pop()!;
      if (!c.sock.destroyed && c.sock.readyState === 'open') {
        c.reused = true;
        return c;
      }
      c.sock.destroy();
    }
    return null;
  }

  giveIdle(c: ServerConn): void {
    c.owner = null;
    if (!c.srv.usable() || c.srv.idle.length >= 64 || this.draining || this.world.bes.get(c.srv.be.cfg.name) !== c.srv.be) {
      c.sock.destroy();
      return;
    }
    c.idleSince = clock();
    c.srv.idle.push(c);
    if (!this.sweeper) {
      this.sweeper = setInterval(() => this.sweepIdle(), 1000);
      this.sweeper.unref();
    }
  }

  private sweeper: NodeJS.Timeout | null = null;

  /** Closes pooled server connections idle for more than 10 s. */
  private sweepIdle(): void {
    const limit = clock() - 10000;
    for (const b of this.world.bes.values())
      for (const s of b.servers) while (s.idle.length && s.idle[0].idleSince < limit) s.idle[0].kill();
  }

  observe(s: SrvRt, ok: boolean, layer: 'layer4' | 'layer7'): void {
    // layer7 observation also counts connection failures, but only a good answer clears the error count
    if (s.cfg.observe === layer || (s.cfg.observe === 'layer7' && layer === 'layer4' && !ok)) this.link.observe(s.key, ok, layer);
  }
}

export interface Snapshot {
  actconn: number;
  pid: number;
  proxies: Record<string, { fe?: Counters; be?: Counters; servers: Record<string, Counters> }>;
}
