// The data plane: one per traffic worker (the control plane, control.ts, is the main thread's). Its listeners and
// their admission (frontend and global maxconn), the configuration in force (frontends, backends, servers), the
// idle pool of server connections, and the sessions (http-session.ts, tcp-session.ts), which it alone creates:
// they see it as a SessionHost. Health states come from the control plane through applyHealth().
import net from 'node:net';
import type { ParsedConfig } from './config.ts';
import { Logger } from './log.ts';
import { clock } from './reads.ts';
import { Backend, type Server } from './balance.ts';
import { Frontend } from './frontend.ts';
import { Doorbells, SharedState } from './shared.ts';
import { TlsTerminator } from './tls-terminate.ts';
import type { ServerConn } from './serverconn.ts';
import { HttpSession } from './http-session.ts';
import { TcpSession } from './tcp-session.ts';
import type { Session, SessionHost } from './session-host.ts';
import type { ControlLink, HealthUpdate, LocalResponse, Sharing, Snapshot, StatsKind } from './types.ts';

/** A bind's host:port key, what the engine keeps its listeners by. */
function bindKey(b: { host: string; port: number }): string {
  return `${b.host || '0.0.0.0'}:${b.port}`;
}

/** The listening addresses of a configuration, as host:port keys. */
export function listenKeys(cfg: ParsedConfig): Set<string> {
  return new Set(cfg.proxies.flatMap((p) => p.binds.map(bindKey)));
}

const LISTEN_BACKLOG = 4096;
export interface World {
  cfg: ParsedConfig;
  fes: Frontend[];
  bes: Map<string, Backend>;
  shared: SharedState;
  /** the TLS termination of each `bind ... ssl` address (host:port) */
  tls: Map<string, TlsTerminator>;
}

export class DataPlane implements SessionHost {
  world!: World;
  actconn = 0;
  logger: Logger;
  private listeners = new Map<string, net.Server>();
  private sessions = new Set<Session>();
  private draining = false;
  private health = new Map<string, HealthUpdate>();

  private bells: Doorbells;
  /** backends with requests of this worker waiting, whatever their configuration */
  private waiting = new Set<Backend>();

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
    const bes = new Map<string, Backend>();
    const fes: Frontend[] = [];
    for (const p of cfg.proxies) {
      if (p.kind !== 'frontend') bes.set(p.name, new Backend(p, shared, this.bells, this.waiting));
      if (p.kind !== 'backend') fes.push(new Frontend(p));
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
    const wanted = new Map<string, Frontend>();
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

  private setHealth(s: Server, h: HealthUpdate): void {
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

  private accept(fe: Frontend, sock: net.Socket, addr: string): void {
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
  admit(fe: Frontend): void {
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

  sessionEnded(s: Session): void {
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

  backend(name: string): Backend | undefined {
    return this.world.bes.get(name);
  }

  render(kind: StatsKind, proxy: string, uri: string): Promise<LocalResponse> {
    return this.link.render(kind, proxy, uri);
  }

  takeIdle(s: Server): ServerConn | null {
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

  giveIdle(c: ServerConn, s: Server): void {
    c.owner = null;
    if (!s.usable() || s.idle.length >= 64 || this.draining || this.world.bes.get(s.be.cfg.name) !== s.be) {
      c.sock.destroy();
      return;
    }
    c.idleSince = clock();
    s.idle.push(c);
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

  observe(s: Server, ok: boolean, layer: 'layer4' | 'layer7'): void {
    // layer7 observation also counts connection failures, but only a good answer clears the error count
    if (s.cfg.observe !== layer && !(s.cfg.observe === 'layer7' && layer === 'layer4' && !ok)) return;
    // a success is reported only after a failure (it clears the count of failures in a row, and has nothing to
    // clear otherwise): the usual one, every request's, costs no call into the control plane, which in a worker
    // thread is a message to the main thread
    if (ok ? s.observedOk() : (s.observedFailure(), true)) this.link.observe(s.key, ok, layer);
  }
}
