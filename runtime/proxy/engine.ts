// The data plane: listeners, HTTP and TCP sessions, load balancing, queues, retries, logging, counters.
// One Engine per process; health states come from the control plane (control.ts) through applyHealth().
import net from 'node:net';
import type { ParsedConfig, ProxyConfig, ServerConfig, Condition, Acl } from './config.ts';
import { effectiveTimeouts, ipv4ToInt } from './config.ts';
import {
  ChunkedTracker, HttpError, MAX_HEAD, errorResponse, findHeadEnd, parseRequestHead, parseResponseHead, headerValue,
  type RequestHead, type ResponseHead,
} from './http.ts';
import { Logger, LOG_INFO, httpLogLine, tcpLogLine, logEscape } from './log.ts';
import { acceptReads, clock, connectReads, inArena, own, type OnBytes } from './reads.ts';
import { send } from './writes.ts';

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

export const COUNTER_KEYS = [
  'scur', 'smax', 'stot', 'bin', 'bout', 'dreq', 'dresp', 'ereq', 'econ', 'eresp', 'wretr', 'wredis', 'lbtot',
  'h1xx', 'h2xx', 'h3xx', 'h4xx', 'h5xx', 'hother', 'req_tot', 'cli_abrt', 'srv_abrt', 'qcur', 'qmax', 'lastsess',
  'qtime', 'ctime', 'rtime', 'ttime', 'conn_tot', 'rate', 'rate_max', 'req_rate', 'req_rate_max', 'connect', 'reuse', 'intercepted', 'idle',
] as const;
export type CounterKey = (typeof COUNTER_KEYS)[number];
export type Counters = Record<CounterKey, number>;

/**
 * A fresh set of counters. Built in one go: an object that gets its 40 properties one keyed store at a
 * time ends up in V8's dictionary mode, where every counter update is a hash lookup and allocates.
 */
export function newCounters(): Counters {
  return Object.fromEntries(COUNTER_KEYS.map((k) => [k, k === 'lastsess' ? -1 : 0])) as Counters;
}

/** Per-second event rate over the current and previous second (like HAProxy's freq counters). */
class Rate {
  private sec = 0;
  private cur = 0;
  private prev = 0;
  max = 0;
  hit(now: number): void {
    const s = Math.floor(now / 1000);
    if (s !== this.sec) {
      this.prev = s === this.sec + 1 ? this.cur : 0;
      this.cur = 0;
      this.sec = s;
    }
    this.cur++;
    const r = this.read(now);
    if (r > this.max) this.max = r;
  }
  read(now: number): number {
    const s = Math.floor(now / 1000);
    if (s === this.sec) return this.cur + Math.round((this.prev * (1000 - (now % 1000))) / 1000);
    if (s === this.sec + 1) return Math.round((this.cur * (1000 - (now % 1000))) / 1000);
    return 0;
  }
}

const avg = (old: number, v: number) => (old === 0 ? v : old + (v - old) / 128);

type Waiter = { session: HttpSession | TcpSession; timer: NodeJS.Timeout | null; since: number };

export class SrvRt {
  key: string;
  up = true;
  admin: AdminState;
  since = 0;
  cur = 0;
  cw = 0; // smooth weighted round robin state
  idle: ServerConn[] = [];
  c = newCounters();
  obsErrors = 0;
  constructor(
    public cfg: ServerConfig,
    public be: BeRt,
  ) {
    this.key = `${be.cfg.name}/${cfg.name}`;
    this.admin = cfg.disabled ? 'maint' : 'ready';
  }
  usable(): boolean {
    return this.up && this.admin === 'ready' && this.cfg.weight > 0;
  }
  full(): boolean {
    return this.cfg.maxconn > 0 && this.cur >= this.cfg.maxconn;
  }
  weight(now: number): number {
    const w = this.cfg.weight;
    if (this.cfg.slowstart > 0 && this.since > 0) {
      const el = now - this.since;
      if (el < this.cfg.slowstart) return Math.max(1, Math.ceil((w * el) / this.cfg.slowstart));
    }
    return w;
  }
}

export class BeRt {
  servers: SrvRt[];
  queue: Waiter[] = [];
  c = newCounters();
  reqRate = new Rate();
  sessRate = new Rate();
  constructor(public cfg: ProxyConfig) {
    this.servers = cfg.servers.map((s) => new SrvRt(s, this));
  }

  private timeouts = new Map<ProxyConfig, ReturnType<typeof effectiveTimeouts>>();

  /** The timeouts of a request from frontend `fe` to this backend (computed once per pair). */
  timeoutsFor(fe: ProxyConfig): ReturnType<typeof effectiveTimeouts> {
    let t = this.timeouts.get(fe);
    if (!t) this.timeouts.set(fe, (t = effectiveTimeouts(fe, this.cfg)));
    return t;
  }

  // pick() runs for every request: it fills these two arrays in place instead of allocating new ones.
  private cands: SrvRt[] = [];
  private open: SrvRt[] = [];

  /**
   * The servers a request may go to, in order, in this.cands[0..n): the usable active servers, or
   * when there is none the first usable backup; `exclude` is left out when another one remains.
   */
  private candidates(exclude: SrvRt | null): number {
    const out = this.cands;
    let n = 0;
    for (const s of this.servers) if (!s.cfg.backup && s.usable()) out[n++] = s;
    if (n === 0) {
      for (const s of this.servers)
        if (s.cfg.backup && s.usable()) {
          out[n++] = s;
          break;
        }
    }
    if (exclude && n > 1) {
      let k = 0;
      for (let i = 0; i < n; i++) if (out[i] !== exclude) out[k++] = out[i];
      n = k;
    }
    return n;
  }

  /** A server for a new request, null when none is usable, 'full' when all usable ones are at maxconn. */
  pick(src: string, path: string, exclude: SrvRt | null): SrvRt | null | 'full' {
    const cands = this.cands;
    const n = this.candidates(exclude);
    if (n === 0) return null;
    const now = clock();
    const algo = this.cfg.balance;
    if (algo === 'first') {
      for (let i = 0; i < n; i++) if (!cands[i].full()) return cands[i];
      return 'full';
    }
    if (algo === 'source' || algo === 'uri') {
      const key = algo === 'source' ? src : this.cfg.balanceArg === 'whole' ? path : path.split('?')[0];
      let h = 2166136261;
      for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619) >>> 0;
      let total = 0;
      for (let i = 0; i < n; i++) total += cands[i].weight(now);
      let x = h % Math.max(total, 1);
      for (let i = 0; i < n; i++) {
        x -= cands[i].weight(now);
        if (x < 0) return cands[i].full() ? 'full' : cands[i];
      }
      return cands[0].full() ? 'full' : cands[0];
    }
    const open = this.open;
    let m = 0;
    for (let i = 0; i < n; i++) if (!cands[i].full()) open[m++] = cands[i];
    if (m === 0) return 'full';
    if (algo === 'leastconn') {
      let best = open[0];
      let bestLoad = Infinity;
      for (let i = 0; i < m; i++) {
        const s = open[i];
        const load = (s.cur + 1) / s.weight(now);
        if (load < bestLoad || (load === bestLoad && s.cw > best.cw)) {
          best = s;
          bestLoad = load;
        }
      }
      // rotate among equally loaded servers
      for (let i = 0; i < m; i++) open[i].cw++;
      best.cw = 0;
      return best;
    }
    // roundrobin / static-rr: smooth weighted round robin
    let total = 0;
    let best = open[0];
    for (let i = 0; i < m; i++) {
      const s = open[i];
      const w = s.weight(now);
      s.cw += w;
      total += w;
      if (s.cw > best.cw) best = s;
    }
    best.cw -= total;
    return best;
  }

  /** Gives freed capacity to queued requests. */
  dequeue(): void {
    while (this.queue.length) {
      const w = this.queue[0];
      const s = this.pick(w.session.src, w.session.pathForLb(), null);
      if (s === 'full') return;
      this.queue.shift();
      this.c.qcur = this.queue.length;
      if (w.timer) clearTimeout(w.timer);
      w.session.dequeued(s, clock() - w.since);
    }
  }
}

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

/** A connection to a server, reused between requests in keep-alive mode. */
class ServerConn {
  owner: HttpSession | null = null;
  idleSince = 0;
  timeoutSet = -1; // the inactivity timeout currently armed on the socket
  reused = false;
  /** Where the connection's reads go: its HTTP session, or a TCP session's pipe. */
  onBytes: OnBytes = (d) => {
    if (!this.owner) this.kill();
    else this.owner.onSrvData(d);
  };
  constructor(
    public sock: net.Socket,
    public srv: SrvRt,
  ) {
    sock.on('end', () => (this.owner ? this.owner.onSrvEnd() : this.kill()));
    sock.on('error', (e) => (this.owner ? this.owner.onSrvError(e) : this.kill()));
    sock.on('close', () => this.owner?.onSrvError(new Error('closed')));
    sock.on('timeout', () => this.owner?.onSrvTimeout());
    sock.on('drain', () => this.owner?.onSrvDrain());
  }
  kill(): void {
    const i = this.srv.idle.indexOf(this);
    if (i >= 0) this.srv.idle.splice(i, 1);
    this.owner = null;
    this.sock.destroy();
  }
}

function inNet(ip: string, n: { addr: number; bits: number }): boolean {
  const a = ipv4ToInt(ip.startsWith('::ffff:') ? ip.slice(7) : ip);
  if (a === null) return false;
  if (n.bits === 0) return true;
  const mask = (~0 << (32 - n.bits)) >>> 0;
  return ((a & mask) >>> 0) === ((n.addr & mask) >>> 0);
}

function aclMatch(a: Acl, req: RequestHead, src: string): boolean {
  let subject: string | undefined;
  if (a.fetch.startsWith('path')) subject = req.path.split('?')[0];
  else if (a.fetch === 'method') subject = req.method;
  else if (a.fetch === 'src') return a.values.some((v) => {
    const [x, b] = v.split('/');
    return inNet(src, { addr: ipv4ToInt(x)!, bits: b === undefined ? 32 : Number(b) });
  });
  else {
    subject = headerValue(req.headers, a.header!);
  }
  if (subject === undefined) return false;
  if (a.ignoreCase) subject = subject.toLowerCase();
  const s = subject;
  switch (a.fetch) {
    case 'path':
    case 'hdr':
    case 'method':
      return a.values.includes(s);
    case 'path_beg':
    case 'hdr_beg':
      return a.values.some((v) => s.startsWith(v));
    case 'path_end':
    case 'hdr_end':
      return a.values.some((v) => s.endsWith(v));
    case 'path_sub':
    case 'hdr_sub':
      return a.values.some((v) => s.includes(v));
    case 'path_reg':
      return a.values.some((v) => new RegExp(v, a.ignoreCase ? 'i' : '').test(s));
  }
  return false;
}

export function condMatch(c: Condition, req: RequestHead, src: string): boolean {
  const r = c.groups.some((g) => g.every((t) => t.acls.every((a) => aclMatch(a, req, src)) !== t.negate));
  return c.unless ? !r : r;
}

interface World {
  cfg: ParsedConfig;
  fes: FeRt[];
  bes: Map<string, BeRt>;
}

const CRLF = '\r\n';

export class Engine {
  world!: World;
  actconn = 0;
  logger: Logger;
  private listeners = new Map<string, net.Server>();
  private sessions = new Set<HttpSession | TcpSession>();
  private draining = false;
  private health = new Map<string, HealthUpdate>();

  constructor(
    cfg: ParsedConfig,
    public link: ControlLink,
    private workerIndex = 0,
  ) {
    this.logger = new Logger(cfg.global.logTag);
    this.world = this.build(cfg);
  }

  private build(cfg: ParsedConfig): World {
    const bes = new Map<string, BeRt>();
    const fes: FeRt[] = [];
    for (const p of cfg.proxies) {
      if (p.kind !== 'frontend') bes.set(p.name, new BeRt(p));
      if (p.kind !== 'backend') fes.push(new FeRt(p));
    }
    for (const b of bes.values()) {
      for (const s of b.servers) {
        const h = this.health.get(s.key);
        if (h) this.setHealth(s, h);
      }
      // workers start their round robin at different servers, so that together they spread evenly
      if (b.cfg.balance === 'roundrobin' || b.cfg.balance === 'static-rr') for (let i = 0; i < this.workerIndex % Math.max(1, b.servers.length); i++) b.pick('', '/', null);
    }
    return { cfg, fes, bes };
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
      srv.on('connection', (sock: net.Socket) => this.accept(fe, sock));
      fe.listeners.push(s);
    }
    for (const [addr, srv] of this.listeners) if (!wanted.has(addr)) {
      srv.close();
      this.listeners.delete(addr);
    }
  }

  /** Swaps in a new configuration; listeners on the same address are kept, sessions finish on the old one. */
  async reload(cfg: ParsedConfig): Promise<void> {
    const w = this.build(cfg);
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
    const was = s.usable();
    s.up = h.up;
    s.admin = h.admin;
    s.since = h.since;
    if (!was && s.usable()) s.be.dequeue();
    if (!s.usable()) for (const c of [...s.idle]) c.kill();
  }

  applyHealth(list: HealthUpdate[]): void {
    for (const h of list) {
      this.health.set(h.key, h);
      const [b] = h.key.split('/');
      const be = this.world.bes.get(b);
      const s = be?.servers.find((x) => x.key === h.key);
      if (s) this.setHealth(s, h);
    }
    // requests queued for a backend with no server left fail now (503), as HAProxy does
    for (const be of this.world.bes.values()) if (be.queue.length && !be.servers.some((s) => s.usable())) {
      for (const w of be.queue.splice(0)) {
        if (w.timer) clearTimeout(w.timer);
        w.session.dequeued(null, clock() - w.since);
      }
      be.c.qcur = 0;
    }
  }

  private accept(fe: FeRt, sock: net.Socket): void {
    if (this.draining) {
      sock.destroy();
      return;
    }
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
      const s = fe.cfg.mode === 'http' ? new HttpSession(this, fe, sock) : new TcpSession(this, fe, sock);
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
      const c = { ...fe.c, scur: fe.cur, rate: fe.sessRate.read(now), rate_max: fe.sessRate.max, req_rate: fe.reqRate.read(now), req_rate_max: fe.reqRate.max };
      out.proxies[fe.cfg.name] = { fe: c, servers: {} };
    }
    for (const be of this.world.bes.values()) {
      const e = (out.proxies[be.cfg.name] ??= { servers: {} });
      let scur = 0;
      for (const s of be.servers) {
        scur += s.cur;
        e.servers[s.cfg.name] = { ...s.c, scur: s.cur, idle: s.idle.length };
      }
      e.be = { ...be.c, scur, qcur: be.queue.length, rate: be.sessRate.read(now), rate_max: be.sessRate.max };
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

function statusClass(c: Counters, status: number): void {
  if (status < 100) c.hother++;
  else if (status < 200) c.h1xx++;
  else if (status < 300) c.h2xx++;
  else if (status < 400) c.h3xx++;
  else if (status < 500) c.h4xx++;
  else if (status < 600) c.h5xx++;
  else c.hother++;
}

/**
 * A timeout that is cheap to move, for the ones every request re-arms: moving it only stores the new deadline;
 * the timer is re-armed when it fires before the deadline (for the rest) or when the deadline comes sooner.
 */
class Deadline {
  at = 0; // the deadline (ms since the epoch), 0 when none
  private timer: NodeJS.Timeout | null = null;
  private fireAt = 0;
  constructor(private onExpire: () => void) {}

  set(now: number, ms: number): void {
    if (ms <= 0) {
      this.at = 0;
      return;
    }
    this.at = now + ms;
    if (this.timer && this.fireAt <= this.at) return;
    this.arm(now, ms);
  }

  clear(): void {
    this.at = 0;
  }

  stop(): void {
    this.at = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(now: number, ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.fireAt = now + ms;
    this.timer = setTimeout(() => this.fire(), ms);
  }

  private fire(): void {
    this.timer = null;
    if (!this.at) return;
    const now = clock();
    if (now >= this.at) {
      this.at = 0;
      this.onExpire();
    } else this.arm(now, this.at - now);
  }
}

const enum St {
  Head,
  Queue,
  Connect,
  Body,
  Wait,
  Tunnel,
  Local,
  Closed,
}

export class HttpSession {
  src: string;
  srcPort: number;
  private st = St.Head;
  private buf: Buffer | null = null;
  private headDl = new Deadline(() => this.onHeadTimeout());
  private srvDl = new Deadline(() => {
    if ((this.st === St.Wait || this.st === St.Body) && this.sc) this.onSrvTimeout();
  });
  private clientTimeoutSet = false;
  private firstReq = true;
  private sawBytes = false;
  private stopping = false;
  // the request in flight
  private req: RequestHead | null = null;
  private reqRaw: Buffer | null = null;
  // the head as sent to the server (kept for a retry, so the client's bytes need no copy of their own)
  private headOut: Buffer | null = null;
  private headKeep = false;
  private pendingHead: Buffer | null = null; // response head waiting to leave with the first body bytes
  private be: BeRt | null = null;
  private srv: SrvRt | null = null;
  private sc: ServerConn | null = null;
  private reqTracker: ChunkedTracker | null = null;
  private reqLeft = 0; // Content-Length bytes still to forward
  private reqDone = false;
  private rsp: ResponseHead | null = null;
  private rspBuf: Buffer | null = null;
  private rspTracker: ChunkedTracker | null = null;
  private rspLeft = 0;
  private rspMode: 'none' | 'cl' | 'chunked' | 'close' = 'none';
  private rspStarted = false;
  private keepClient = false;
  private keepServer = false;
  private retriesLeft = 0;
  private retries = 0;
  private redispatched = false;
  private counted = false;
  private exclude: SrvRt | null = null;
  private t0 = 0; // first byte of the request
  private tHead = -1;
  private tw = -1;
  private tc = -1;
  private tr = -1;
  private tSent = 0;
  private tConn = 0;
  private bytesOut = 0;
  private bytesIn = 0;
  private status = 0;
  private term = '--';
  private srvName = '<NOSRV>';
  private beName = '';
  private to!: ReturnType<typeof effectiveTimeouts>;
  private now = 0; // the time of the server read being handled
  private bq = 0;

  constructor(
    private eng: Engine,
    public fe: FeRt,
    private c: net.Socket,
  ) {
    this.src = c.remoteAddress ?? '';
    if (this.src.startsWith('::ffff:')) this.src = this.src.slice(7);
    this.srcPort = c.remotePort ?? 0;
    this.to = fe.timeouts;
    acceptReads(c, (d) => {
      this.onClientData(d);
      this.keepBytes();
    });
    c.on('end', () => this.onClientEnd());
    c.on('close', () => this.onClientClose());
    c.on('drain', () => this.onClientDrain());
    c.on('timeout', () => this.onClientTimeout());
    this.t0 = clock();
    this.headDl.set(this.t0, this.to.httpRequest);
  }

  pathForLb(): string {
    return this.req?.path ?? '/';
  }

  private onHeadTimeout(): void {
    if (this.st !== St.Head) return;
    if (!this.buf || this.buf.length === 0) {
      // idle keep-alive connection, or a connection that never sent anything
      if (this.firstReq && !this.fe.cfg.dontlognull) {
        this.status = 408;
        this.term = 'cR';
        this.logRequest('<BADREQ>');
      }
      this.close();
      return;
    }
    this.fe.c.ereq++;
    this.localError(408, 'cR', '<BADREQ>');
  }

  /** Copies out of the shared read buffer whatever this session keeps past a read (see reads.ts). */
  keepBytes(): void {
    if (this.buf && inArena(this.buf)) this.buf = this.buf.length ? Buffer.from(this.buf) : null;
    if (this.reqRaw && inArena(this.reqRaw)) this.reqRaw = Buffer.from(this.reqRaw);
    if (this.rspBuf && inArena(this.rspBuf)) this.rspBuf = this.rspBuf.length ? Buffer.from(this.rspBuf) : null;
  }

  private onClientData(d: Buffer): void {
    this.sawBytes = true;
    switch (this.st) {
      case St.Head:
        if (!this.buf || this.buf.length === 0) {
          this.t0 = clock();
          if (!this.firstReq) this.headDl.set(this.t0, this.to.httpRequest);
        }
        this.buf = this.buf && this.buf.length ? Buffer.concat([this.buf, d]) : d;
        this.tryHead();
        return;
      case St.Body:
        this.forwardReqBody(d);
        return;
      case St.Tunnel:
        this.bytesIn += d.length;
        if (this.sc && !this.sc.sock.write(own(d))) this.c.pause();
        return;
      case St.Closed:
        return;
      default:
        // Queue, Connect, Wait, Local: keep the bytes (body not yet forwardable, or a pipelined request)
        this.buf = this.buf && this.buf.length ? Buffer.concat([this.buf, d]) : d;
        if (this.buf.length > MAX_HEAD) this.c.pause();
    }
  }

  private tryHead(): void {
    let buf = this.buf!;
    // ignore empty lines before a request line
    let skip = 0;
    while (skip + 1 < buf.length && buf[skip] === 13 && buf[skip + 1] === 10) skip += 2;
    if (skip) buf = this.buf = buf.subarray(skip);
    const end = findHeadEnd(buf);
    if (end < 0) {
      if (buf.length > MAX_HEAD) {
        this.fe.c.ereq++;
        this.localError(431, 'PR', '<BADREQ>');
      }
      return;
    }
    if (end > MAX_HEAD) {
      this.fe.c.ereq++;
      this.localError(431, 'PR', '<BADREQ>');
      return;
    }
    let req: RequestHead;
    try {
      req = parseRequestHead(buf, end);
    } catch (e) {
      this.fe.c.ereq++;
      const he = e instanceof HttpError ? e : new HttpError(400, 'bad request');
      this.localError(he.status, 'PR', '<BADREQ>');
      return;
    }
    this.headDl.clear();
    this.reqRaw = buf.subarray(0, end);
    this.buf = end === buf.length ? null : buf.subarray(end);
    this.startRequest(req);
  }

  private startRequest(req: RequestHead): void {
    const now = clock();
    this.req = req;
    this.tHead = now - this.t0;
    this.fe.c.req_tot++;
    this.fe.reqRate.hit(now);
    this.keepClient = req.keepAlive && this.fe.cfg.connMode !== 'close' && !this.stopping;
    this.firstReq = false;
    const fe = this.fe.cfg;
    // local services
    if (fe.monitorUri && req.path.split('?')[0] === fe.monitorUri) {
      this.local({ status: 200, headers: [['content-type', 'text/plain']], body: Buffer.from('OK\n') }, fe.name, '<NOSRV>');
      return;
    }
    for (const r of fe.services) if (!r.cond || condMatch(r.cond, req, this.src)) {
      this.serveStats('prom', fe, '<PROMEX>');
      return;
    }
    let be: BeRt | undefined;
    for (const u of fe.useBackends) if (condMatch(u.cond, req, this.src)) {
      be = this.eng.world.bes.get(u.backend);
      break;
    }
    if (!be) be = fe.kind === 'listen' ? this.eng.world.bes.get(fe.name) : fe.defaultBackend ? this.eng.world.bes.get(fe.defaultBackend) : undefined;
    const statsOwner = fe.stats.enabled ? fe : be?.cfg.stats.enabled ? be.cfg : null;
    if (statsOwner && req.uri.startsWith(statsOwner.stats.uri)) {
      this.beName = statsOwner.name;
      const rest = req.uri.slice(statsOwner.stats.uri.length);
      this.serveStats(rest.includes(';csv') ? 'csv' : 'html', statsOwner, '<STATS>');
      return;
    }
    if (!be) {
      this.beName = fe.name;
      this.localError(503, 'SC', null);
      return;
    }
    this.be = be;
    this.beName = be.cfg.name;
    this.to = be.timeoutsFor(fe);
    be.c.req_tot++;
    be.reqRate.hit(now);
    // request body framing
    this.reqTracker = req.chunked ? new ChunkedTracker() : null;
    this.reqLeft = req.chunked ? 0 : Math.max(req.contentLength, 0);
    this.reqDone = !req.chunked && this.reqLeft === 0;
    this.retriesLeft = be.cfg.retries;
    this.retries = 0;
    this.bq = 0;
    this.redispatched = false;
    this.exclude = null;
    this.assign(null);
  }

  private assign(exclude: SrvRt | null): void {
    const be = this.be!;
    const s = be.pick(this.src, this.req!.path, exclude);
    if (s === null) {
      this.srvName = '<NOSRV>';
      this.localError(503, 'SC', null);
      return;
    }
    if (s === 'full') {
      this.st = St.Queue;
      const w: Waiter = { session: this, timer: null, since: clock() };
      if (this.to.queue > 0)
        w.timer = setTimeout(() => {
          const i = be.queue.indexOf(w);
          if (i >= 0) be.queue.splice(i, 1);
          be.c.qcur = be.queue.length;
          this.tw = clock() - w.since;
          this.localError(503, 'sQ', null);
        }, this.to.queue);
      this.bq = be.queue.length; // %bq: the requests ahead of this one in the backend queue
      be.queue.push(w);
      be.c.qcur = be.queue.length;
      if (be.queue.length > be.c.qmax) be.c.qmax = be.queue.length;
      return;
    }
    if (this.tw < 0) this.tw = 0;
    this.useServer(s);
  }

  dequeued(s: SrvRt | null, waited: number): void {
    if (this.st !== St.Queue) return;
    this.tw = waited;
    if (!s) {
      this.localError(503, 'SC', null);
      return;
    }
    this.useServer(s);
  }

  private useServer(s: SrvRt): void {
    const now = clock();
    this.srv = s;
    this.srvName = s.cfg.name;
    if (!this.counted) {
      this.counted = true;
      s.cur++;
      const be = this.be!;
      be.c.stot++;
      be.sessRate.hit(now);
      if (s.cur > s.c.smax) s.c.smax = s.cur;
      let bc = 0;
      for (const x of be.servers) bc += x.cur;
      if (bc > be.c.smax) be.c.smax = bc;
    }
    s.c.lbtot++;
    s.c.stot++; // as HAProxy: every connection attempt is a session on the server
    this.be!.c.lbtot++;
    this.st = St.Connect;
    this.tConn = now;
    const idle = this.fe.cfg.connMode === 'keep-alive' && this.be!.cfg.connMode === 'keep-alive' && this.reqDone && !this.req!.upgrade ? this.eng.takeIdle(s) : null;
    if (idle) {
      s.c.reuse++;
      this.connected(idle);
      return;
    }
    s.c.connect++;
    this.connectTo(s);
  }

  private connectFailed(s: SrvRt): void {
    this.eng.observe(s, false, 'layer4');
    const be = this.be!;
    if (this.retriesLeft <= 0) {
      s.c.econ++;
      be.c.econ++;
      this.tc = clock() - this.tConn;
      this.localError(503, 'SC', null);
      return;
    }
    this.retriesLeft--;
    this.retries++;
    s.c.wretr++;
    be.c.wretr++;
    const rd = be.cfg.redispatch;
    const redispatch = rd !== 0 && (rd < 0 ? this.retriesLeft === -rd - 1 : this.retries % rd === 0);
    if (redispatch) {
      this.redispatched = true;
      s.c.wredis++;
      be.c.wredis++;
      this.release(false);
      this.assign(s);
      return;
    }
    // turn-around delay before trying the same server again
    const delay = Math.min(this.to.connect || 1000, 1000);
    this.st = St.Connect;
    setTimeout(() => {
      if (this.st !== St.Connect) return;
      this.useServerAgain(s);
    }, delay);
  }

  private useServerAgain(s: SrvRt): void {
    s.c.stot++;
    this.connectTo(s);
  }

  /** A new connection to server `s` for this request (the state is Connect until it is up or has failed). */
  private connectTo(s: SrvRt): void {
    this.eng.connectServer(s, this.to.connect, (err, sc) => {
      if (this.st !== St.Connect) {
        sc?.sock.destroy();
        return;
      }
      if (err || !sc) this.connectFailed(s);
      else this.connected(sc);
    });
  }

  private connected(sc: ServerConn): void {
    const now = clock();
    this.tc = now - this.tConn;
    this.sc = sc;
    sc.owner = this;
    this.eng.observe(sc.srv, true, 'layer4');
    // timeout server: a deadline moved by the server's activity (a socket timeout would re-arm a timer per read)
    if (sc.timeoutSet !== 0) {
      sc.sock.setTimeout(0);
      sc.timeoutSet = 0;
    }
    this.srvDl.set(now, this.to.server);
    this.rsp = null;
    this.rspBuf = null;
    this.rspStarted = false;
    this.rspMode = 'none';
    const head = this.requestHead();
    this.tSent = now;
    this.bytesIn += this.req!.headBytes;
    this.st = St.Body;
    send(sc.sock, head);
    if (this.reqDone) {
      this.st = St.Wait;
      return;
    }
    const pending = this.buf;
    this.buf = null;
    if (pending && pending.length) this.forwardReqBody(pending);
    if (this.c.isPaused()) this.c.resume();
    if (this.st === St.Body && this.to.client > 0) {
      this.c.setTimeout(this.to.client);
      this.clientTimeoutSet = true;
    }
  }

  /** The request head for the server: the client's bytes when they can go as they are, plus our headers. */
  private requestHead(): Buffer {
    if (this.headOut) {
      this.keepServer = this.headKeep;
      return this.headOut;
    }
    const out = this.buildRequestHead();
    this.headOut = out;
    this.headKeep = this.keepServer;
    this.reqRaw = null;
    return out;
  }

  private buildRequestHead(): Buffer {
    const req = this.req!;
    const fe = this.fe.cfg;
    const beCfg = this.be!.cfg;
    const mode = fe.connMode === 'close' || beCfg.connMode === 'close' ? 'close' : fe.connMode === 'server-close' || beCfg.connMode === 'server-close' ? 'server-close' : 'keep-alive';
    this.keepServer = mode === 'keep-alive';
    let extra = '';
    const ff = fe.forwardfor ?? beCfg.forwardfor;
    if (ff && !(ff.except && inNet(this.src, ff.except)) && !(ff.ifnone && req.headers.some((x) => x.lname === ff.header.toLowerCase()))) extra += `${ff.header}: ${this.src}${CRLF}`;
    if (req.upgrade) {
      extra += `Connection: upgrade${CRLF}`;
      this.keepServer = false;
    } else if (!this.keepServer) extra += `Connection: close${CRLF}`;
    else if (req.version === 10) extra += `Connection: keep-alive${CRLF}`;
    extra += CRLF;
    const raw = this.reqRaw;
    if (raw && !req.hopByHop) {
      // the head minus its blank line, then our headers and the blank line: one buffer, one write
      const out = Buffer.allocUnsafe(raw.length - 2 + extra.length);
      raw.copy(out, 0, 0, raw.length - 2);
      out.write(extra, raw.length - 2, 'latin1');
      return out;
    }
    let h = `${req.method} ${req.uri} HTTP/1.${req.version === 11 ? 1 : 0}${CRLF}`;
    for (const x of req.headers) {
      if (x.lname === 'connection' || x.lname === 'proxy-connection' || x.lname === 'keep-alive') continue;
      h += `${x.name}: ${x.value}${CRLF}`;
    }
    return Buffer.from(h + extra, 'latin1');
  }

  private forwardReqBody(d: Buffer): void {
    if (!this.sc) return;
    let n: number;
    if (this.reqTracker) {
      try {
        n = this.reqTracker.feed(d);
      } catch {
        this.fe.c.ereq++;
        if (this.rspStarted) this.abortBoth('PD', 400);
        else {
          this.dropServer();
          this.localError(400, 'PD', null);
        }
        return;
      }
      if (this.reqTracker.done) this.reqDone = true;
    } else {
      n = Math.min(this.reqLeft, d.length);
      this.reqLeft -= n;
      if (this.reqLeft === 0) this.reqDone = true;
    }
    this.bytesIn += n;
    if (this.srvDl.at) this.srvDl.set(clock(), this.to.server);
    const ok = n > 0 ? this.sc.sock.write(own(n === d.length ? d : d.subarray(0, n))) : true;
    if (n < d.length) this.buf = this.buf && this.buf.length ? Buffer.concat([d.subarray(n), this.buf]) : d.subarray(n);
    if (this.reqDone) {
      this.c.setTimeout(0);
      this.clientTimeoutSet = false;
      if (this.st === St.Body) this.st = St.Wait;
      if (this.buf && this.buf.length) this.c.pause();
    } else if (!ok) this.c.pause();
  }

  onSrvDrain(): void {
    if ((this.st === St.Body || this.st === St.Tunnel) && this.c.isPaused()) this.c.resume();
  }

  onClientDrain(): void {
    if (this.sc && this.sc.sock.isPaused()) this.sc.sock.resume();
  }

  onSrvData(d: Buffer): void {
    if (this.st === St.Tunnel) {
      this.bytesOut += d.length;
      if (!this.c.write(own(d))) this.sc!.sock.pause();
      return;
    }
    if (this.st !== St.Wait && this.st !== St.Body) return;
    const now = clock();
    this.srvDl.set(now, this.to.server);
    if (!this.rsp) {
      this.now = now;
      this.rspBuf = this.rspBuf && this.rspBuf.length ? Buffer.concat([this.rspBuf, d]) : d;
      this.tryResponseHead();
    } else this.forwardRspBody(d);
    this.keepBytes();
  }

  private tryResponseHead(): void {
    for (;;) {
      const buf = this.rspBuf!;
      const end = findHeadEnd(buf);
      if (end < 0) {
        if (buf.length > MAX_HEAD) this.badResponse();
        return;
      }
      let rsp: ResponseHead;
      try {
        rsp = parseResponseHead(buf, end);
      } catch {
        this.badResponse();
        return;
      }
      if (rsp.status >= 100 && rsp.status < 200 && rsp.status !== 101) {
        // interim response (100-continue...): pass it on, wait for the final one
        const head = buf.subarray(0, end);
        this.bytesOut += head.length;
        this.c.write(own(head));
        this.rspBuf = buf.subarray(end);
        if (this.rspBuf.length === 0) return;
        continue;
      }
      this.rsp = rsp;
      this.rspBuf = null;
      this.srv!.c.req_tot++; // as HAProxy: a server's requests are the ones it answered
      this.tr = this.now - this.tSent;
      this.status = rsp.status;
      if (rsp.status === 101) {
        const rest = buf.subarray(end);
        if (!this.req!.upgrade) {
          this.badResponse();
          return;
        }
        this.rspStarted = true;
        const head = buf.subarray(0, end);
        this.bytesOut += head.length;
        this.c.write(own(head));
        this.st = St.Tunnel;
        this.keepClient = false;
        this.keepServer = false;
        this.srvDl.clear();
        this.sc!.sock.setTimeout(this.to.tunnel);
        this.sc!.timeoutSet = this.to.tunnel;
        this.c.setTimeout(this.to.tunnel);
        this.clientTimeoutSet = true;
        if (this.c.isPaused()) this.c.resume();
        if (this.buf && this.buf.length) {
          const b = this.buf;
          this.buf = null;
          this.sc!.sock.write(own(b));
        }
        if (rest.length) {
          this.bytesOut += rest.length;
          this.c.write(own(rest));
        }
        return;
      }
      this.eng.observe(this.srv!, !(rsp.status >= 500 && rsp.status !== 501 && rsp.status !== 505), 'layer7');
      const req = this.req!;
      if (req.method === 'HEAD' || rsp.status === 204 || rsp.status === 304) this.rspMode = 'none';
      else if (rsp.chunked) {
        this.rspMode = 'chunked';
        this.rspTracker = new ChunkedTracker();
      } else if (rsp.contentLength >= 0) {
        this.rspMode = 'cl';
        this.rspLeft = rsp.contentLength;
      } else this.rspMode = 'close';
      if (this.rspMode === 'close' || !rsp.keepAlive) this.keepServer = false;
      if (this.rspMode === 'close' || !this.reqDone) this.keepClient = false;
      let extra = '';
      if (!this.keepClient) extra += `connection: close${CRLF}`;
      else if (req.version === 10) extra += `connection: keep-alive${CRLF}`;
      extra += CRLF;
      const restLen = buf.length - end;
      if (!rsp.hopByHop && this.rspMode === 'cl' && restLen >= this.rspLeft) {
        // the usual case: the whole answer is here; head, our headers and body leave in one buffer, one write
        const hl = end - 2;
        const bodyLen = this.rspLeft;
        const out = Buffer.allocUnsafe(hl + extra.length + bodyLen);
        buf.copy(out, 0, 0, hl);
        out.write(extra, hl, 'latin1');
        if (bodyLen) buf.copy(out, hl + extra.length, end, end + bodyLen);
        this.rspStarted = true;
        this.rspLeft = 0;
        this.bytesOut += out.length;
        send(this.c, out);
        this.responseDone(restLen > bodyLen ? buf.subarray(end + bodyLen) : null);
        return;
      }
      const rest = buf.subarray(end);
      let head: Buffer;
      if (!rsp.hopByHop) {
        head = Buffer.allocUnsafe(end - 2 + extra.length);
        buf.copy(head, 0, 0, end - 2);
        head.write(extra, end - 2, 'latin1');
      } else {
        let h = `HTTP/1.${rsp.version === 11 ? 1 : 0} ${rsp.status}${rsp.reason ? ' ' + rsp.reason : ''}${CRLF}`;
        for (const x of rsp.headers) {
          if (x.lname === 'connection' || x.lname === 'keep-alive' || x.lname === 'proxy-connection') continue;
          h += `${x.name}: ${x.value}${CRLF}`;
        }
        head = Buffer.from(h + extra, 'latin1');
      }
      this.rspStarted = true;
      this.bytesOut += head.length;
      if (this.rspMode === 'none' || (this.rspMode === 'cl' && this.rspLeft === 0) || rest.length === 0) {
        send(this.c, head);
        if (this.rspMode === 'none' || (this.rspMode === 'cl' && this.rspLeft === 0)) this.responseDone(rest);
        return;
      }
      // the head leaves with the first body bytes, in one write
      this.pendingHead = head;
      this.forwardRspBody(rest);
      return;
    }
  }

  private forwardRspBody(d: Buffer): void {
    let n = d.length;
    let done = false;
    if (this.rspMode === 'cl') {
      n = Math.min(this.rspLeft, d.length);
      this.rspLeft -= n;
      done = this.rspLeft === 0;
    } else if (this.rspMode === 'chunked') {
      try {
        n = this.rspTracker!.feed(d);
      } catch {
        this.srv!.c.eresp++;
        this.be!.c.eresp++;
        this.abortBoth('SD', 502);
        return;
      }
      done = this.rspTracker!.done;
    }
    this.bytesOut += n;
    let ok = true;
    const head = this.pendingHead;
    if (head) {
      this.pendingHead = null;
      ok = send(this.c, n > 0 ? Buffer.concat([head, n === d.length ? d : d.subarray(0, n)], head.length + n) : head);
    } else if (n > 0) ok = send(this.c, own(n === d.length ? d : d.subarray(0, n)));
    if (done) {
      this.responseDone(d.subarray(n));
      return;
    }
    if (!ok) this.sc!.sock.pause();
  }

  private badResponse(): void {
    this.srv!.c.eresp++;
    this.be!.c.eresp++;
    this.eng.observe(this.srv!, false, 'layer7');
    this.keepServer = false;
    this.dropServer();
    if (this.rspStarted) this.abortBoth('SH', 502);
    else this.localError(502, 'PH', null);
  }

  onSrvEnd(): void {
    this.onSrvGone(false);
  }

  onSrvError(_e: Error): void {
    this.onSrvGone(true);
  }

  private onSrvGone(_err: boolean): void {
    if (!this.sc) return;
    if (this.st === St.Tunnel) {
      this.dropServer();
      this.finishLog();
      this.c.end();
      this.st = St.Closed;
      return;
    }
    if (this.st !== St.Wait && this.st !== St.Body) return;
    if (this.rsp && this.rspMode === 'close') {
      this.keepServer = false;
      this.responseDone(null);
      return;
    }
    const reused = this.sc.reused;
    this.keepServer = false;
    this.dropServer();
    if (!this.rspStarted && !this.rsp && (!this.rspBuf || this.rspBuf.length === 0) && reused && this.reqDone && this.bytesIn === this.req!.headBytes) {
      // a pooled connection the server had closed: try again on a fresh one
      this.bytesIn = 0;
      this.st = St.Connect;
      this.tConn = clock();
      this.srv!.c.connect++;
      this.srv!.c.stot++;
      const s = this.srv!;
      this.connectTo(s);
      return;
    }
    this.srv!.c.srv_abrt++;
    this.be!.c.srv_abrt++;
    if (this.rspStarted) {
      this.srv!.c.eresp++;
      this.be!.c.eresp++;
      this.abortBoth('SD', this.status);
    } else {
      this.srv!.c.eresp++;
      this.be!.c.eresp++;
      this.eng.observe(this.srv!, false, 'layer7');
      this.localError(502, 'SH', null);
    }
  }

  onSrvTimeout(): void {
    if (this.st === St.Tunnel) {
      this.term = 'sD';
      this.abortBoth('sD', this.status);
      return;
    }
    if (this.rspStarted) {
      this.abortBoth('sD', this.status);
      return;
    }
    this.keepServer = false;
    this.dropServer();
    this.srv!.c.eresp++;
    this.be!.c.eresp++;
    this.eng.observe(this.srv!, false, 'layer7');
    this.localError(504, 'sH', null);
  }

  private onClientTimeout(): void {
    if (this.st === St.Body) {
      this.abortBoth('cD', 408);
      return;
    }
    if (this.st === St.Tunnel || this.st === St.Wait) this.abortBoth('cD', this.status);
  }

  private onClientEnd(): void {
    if (this.st === St.Head) {
      if (this.buf && this.buf.length) {
        this.status = 400;
        this.fe.c.cli_abrt++;
        this.term = 'CR';
        this.logRequest('<BADREQ>');
      } else if (this.firstReq && !this.sawBytes && !this.fe.cfg.dontlognull) {
        this.status = 400;
        this.term = 'CR';
        this.logRequest('<BADREQ>');
      }
      this.close();
      return;
    }
    if (this.st === St.Tunnel) {
      this.sc?.sock.end();
      return;
    }
    if ((this.st === St.Queue || this.st === St.Connect) && this.reqDone) {
      // a half-closed client still gets its answer (no abortonclose)
      this.keepClient = false;
      return;
    }
    if (this.st === St.Body || this.st === St.Queue || this.st === St.Connect) {
      this.fe.c.cli_abrt++;
      if (this.srv) this.srv.c.cli_abrt++;
      if (this.be) this.be.c.cli_abrt++;
      this.abortBoth(this.st === St.Queue ? 'CQ' : this.st === St.Connect ? 'CC' : 'CD', this.status || -1);
      return;
    }
    // Wait / Local: the client half-closed after its request; finish the response, then close
    this.keepClient = false;
  }

  private linger: NodeJS.Timeout | null = null;

  private onClientClose(): void {
    if (this.linger) clearTimeout(this.linger);
    this.linger = null;
    if (this.st === St.Closed) {
      this.cleanup();
      return;
    }
    if (this.st === St.Head || this.st === St.Local) {
      this.st = St.Closed;
      this.cleanup();
      return;
    }
    this.fe.c.cli_abrt++;
    if (this.srv) this.srv.c.cli_abrt++;
    if (this.be) this.be.c.cli_abrt++;
    this.abortBoth(this.st === St.Queue ? 'CQ' : this.st === St.Connect ? 'CC' : 'CD', this.status || -1);
  }

  private responseDone(rest: Buffer | null): void {
    this.srvDl.clear();
    const sc = this.sc;
    if (rest && rest.length && sc) {
      // bytes after the response: the server misbehaves, do not reuse the connection
      this.keepServer = false;
    }
    this.finishLog();
    if (sc) {
      this.sc = null;
      if (this.keepServer && this.reqDone) this.eng.giveIdle(sc);
      else {
        sc.owner = null;
        sc.sock.destroy();
      }
    }
    this.release(true);
    this.nextRequest();
  }

  private nextRequest(): void {
    this.resetRequest();
    if (!this.keepClient || this.stopping) {
      this.close();
      return;
    }
    this.st = St.Head;
    if (this.clientTimeoutSet) {
      this.c.setTimeout(0);
      this.clientTimeoutSet = false;
    }
    const now = clock();
    this.headDl.set(now, this.to.httpKeepAlive);
    if (this.c.isPaused()) this.c.resume();
    if (this.buf && this.buf.length) {
      this.t0 = now;
      this.headDl.set(now, this.to.httpRequest);
      this.tryHead();
    }
  }

  private resetRequest(): void {
    this.req = null;
    this.reqRaw = null;
    this.headOut = null;
    this.pendingHead = null;
    this.rsp = null;
    this.rspBuf = null;
    this.rspTracker = null;
    this.reqTracker = null;
    this.srv = null;
    this.be = null;
    this.counted = false;
    this.tHead = this.tw = this.tc = this.tr = -1;
    this.bytesIn = this.bytesOut = 0;
    this.status = 0;
    this.term = '--';
    this.srvName = '<NOSRV>';
    this.beName = '';
    this.retries = 0;
    this.redispatched = false;
    this.to = this.fe.timeouts;
  }

  /** Gives the server slot back (and the request's queue position to the next one). */
  private release(final: boolean): void {
    const s = this.srv;
    if (s && this.counted) {
      this.counted = false;
      s.cur--;
      s.be.dequeue();
    }
    if (!final) this.srv = null;
  }

  private dropServer(): void {
    this.srvDl.clear();
    const sc = this.sc;
    if (!sc) return;
    this.sc = null;
    sc.owner = null;
    sc.sock.destroy();
  }

  private serveStats(kind: 'html' | 'csv' | 'prom', owner: ProxyConfig, name: string): void {
    this.st = St.Local;
    this.srvName = name;
    this.beName = owner.name;
    const st = owner.stats;
    if (kind !== 'prom' && st.auth.length) {
      const a = headerValue(this.req!.headers, 'authorization');
      const m = a ? /^Basic\s+(\S+)$/i.exec(a) : null;
      const cred = m ? Buffer.from(m[1], 'base64').toString('utf8') : '';
      if (!st.auth.some((u) => `${u.user}:${u.pass}` === cred)) {
        this.fe.c.intercepted++;
        this.local(
          { status: 401, headers: [['content-type', 'text/html'], ['www-authenticate', `Basic realm="${st.realm.replace(/"/g, '')}"`]], body: Buffer.from('<html><body><h1>401 Unauthorized</h1>\nThis page needs a user name and a password.\n</body></html>\n') },
          owner.name,
          name,
        );
        return;
      }
    }
    this.fe.c.intercepted++;
    this.eng.link.render(kind, owner.name, this.req!.uri).then(
      (r) => this.local(r, owner.name, name),
      () => this.local({ status: 500, headers: [['content-type', 'text/plain']], body: Buffer.from('stats unavailable\n') }, owner.name, name),
    );
  }

  private local(r: LocalResponse, beName: string, srvName: string): void {
    if (this.st === St.Closed) return;
    this.st = St.Local;
    this.beName = beName;
    this.srvName = srvName;
    this.status = r.status;
    this.term = 'LR';
    this.tw = this.tc = this.tr = 0;
    const req = this.req!;
    const body = req.method === 'HEAD' ? Buffer.alloc(0) : r.body;
    // a request body we do not read would be taken for the next request: close after answering
    if (req.chunked || req.contentLength > 0) this.keepClient = false;
    let h = `HTTP/1.1 ${r.status} ${r.status === 200 ? 'OK' : r.status === 401 ? 'Unauthorized' : r.status === 500 ? 'Internal Server Error' : ''}${CRLF}`;
    for (const [k, v] of r.headers) h += `${k}: ${v}${CRLF}`;
    h += `content-length: ${r.body.length}${CRLF}cache-control: no-cache${CRLF}`;
    if (!this.keepClient) h += `connection: close${CRLF}`;
    else if (req.version === 10) h += `connection: keep-alive${CRLF}`;
    h += CRLF;
    this.bytesOut = h.length + body.length;
    this.c.write(body.length ? Buffer.concat([Buffer.from(h, 'latin1'), body]) : h);
    statusClass(this.fe.c, r.status);
    this.finishLog();
    this.nextRequest();
  }

  /** Answers with a generated error and closes the client connection. */
  private localError(status: number, term: string, reqLine: string | null): void {
    if (this.st === St.Closed) return;
    this.status = status;
    this.term = term;
    const r = errorResponse(status);
    this.bytesOut = r.length;
    this.c.write(r);
    // (a request that had a server slot is counted for the backend by finishLog)
    if (this.be && !(this.srv && this.counted)) statusClass(this.be.c, status);
    this.keepClient = false;
    this.dropServer();
    if (reqLine) this.logRequest(reqLine);
    else this.finishLog();
    this.release(true);
    this.close();
  }

  private abortBoth(term: string, status: number): void {
    if (this.st === St.Closed) return;
    this.term = term;
    this.status = status;
    this.keepClient = false;
    this.dropServer();
    this.finishLog();
    this.release(true);
    this.st = St.Closed;
    this.c.destroy();
    this.cleanup();
  }

  private finishLog(): void {
    if (!this.req) return;
    const status = this.status;
    const now = clock();
    if (this.srv && this.counted) {
      const s = this.srv;
      // only answers that came from the server count in its status classes (not our 503/504)
      if (this.rsp) statusClass(s.c, status);
      s.c.bin += this.bytesIn;
      s.c.bout += this.bytesOut;
      s.c.lastsess = now;
      if (this.tw >= 0) s.c.qtime = avg(s.c.qtime, this.tw);
      if (this.tc >= 0) s.c.ctime = avg(s.c.ctime, this.tc);
      if (this.tr >= 0) s.c.rtime = avg(s.c.rtime, this.tr);
      s.c.ttime = avg(s.c.ttime, now - this.t0);
    }
    if (this.be && status > 0) {
      if (this.srv && this.counted) statusClass(this.be.c, status);
      this.be.c.bin += this.bytesIn;
      this.be.c.bout += this.bytesOut;
      this.be.c.lastsess = now;
      if (this.tw >= 0) this.be.c.qtime = avg(this.be.c.qtime, this.tw);
      if (this.tc >= 0) this.be.c.ctime = avg(this.be.c.ctime, this.tc);
      if (this.tr >= 0) this.be.c.rtime = avg(this.be.c.rtime, this.tr);
      this.be.c.ttime = avg(this.be.c.ttime, now - this.t0);
    }
    if (this.term !== 'LR') statusClass(this.fe.c, status);
    this.fe.c.bin += this.bytesIn;
    this.fe.c.bout += this.bytesOut;
    const r = this.req;
    const fe = this.fe.cfg;
    if (fe.logs.length && (fe.httplog || fe.tcplog)) this.logRequest(`${r.method} ${r.uri} HTTP/1.${r.version === 11 ? 1 : 0}`);
    this.req = null;
  }

  private logRequest(line: string): void {
    const fe = this.fe.cfg;
    if (!fe.logs.length || (!fe.httplog && !fe.tcplog)) return;
    const now = clock();
    let bc = 0;
    let sc = 0;
    const be = this.be;
    if (be) for (const s of be.servers) bc += s.cur;
    if (this.srv) sc = this.srv.cur;
    const fields = {
      clientIp: this.src, clientPort: this.srcPort, start: this.t0, frontend: fe.name, backend: this.beName || fe.name,
      server: this.srvName, TR: this.tHead, Tw: this.tw, Tc: this.tc, Tr: this.tr, Ta: now - this.t0, status: this.status,
      bytes: this.bytesOut, term: this.term, actconn: this.eng.actconn, feconn: this.fe.cur, beconn: bc, srvconn: sc,
      retries: this.retries, redispatched: this.redispatched, srvQueue: 0, backQueue: this.bq,
      requestLine: logEscape(line),
    };
    this.eng.logger.send(fe.logs, LOG_INFO, fe.httplog ? httpLogLine(fields) : tcpLogLine({ ...fields, Tt: now - this.t0 }));
  }

  stopWhenIdle(): void {
    this.stopping = true;
    this.keepClient = false;
    if (this.st === St.Head && (!this.buf || this.buf.length === 0)) this.close();
  }

  abort(): void {
    this.abortBoth(this.term === '--' ? 'PD' : this.term, this.status);
    this.c.destroy();
  }

  private close(): void {
    this.headDl.stop();
    this.srvDl.stop();
    if (this.st === St.Closed) return;
    this.st = St.Closed;
    this.c.end();
    // do not wait forever for a client that does not read its last response (the timer goes when the socket
    // closes: a pending timer would keep the socket in memory, and closed sockets would pile up in close mode)
    this.linger = setTimeout(() => this.c.destroy(), 5000);
    this.linger.unref();
    this.cleanup();
  }

  private cleanup(): void {
    this.headDl.stop();
    this.srvDl.stop();
    this.dropServer();
    this.release(true);
    this.eng.sessionEnded(this);
  }
}

/** mode tcp: one server connection per client connection, bytes piped both ways. */
export class TcpSession {
  src: string;
  private srcPort: number;
  private be: BeRt | null;
  private srv: SrvRt | null = null;
  private s: net.Socket | null = null;
  private retriesLeft = 0;
  private retries = 0;
  private redispatched = false;
  private t0 = clock();
  private tw = -1;
  private tc = -1;
  private tConn = 0;
  private bytesOut = 0;
  private bytesIn = 0;
  private term = '--';
  private done = false;
  private queued = false;
  private early: Buffer[] = [];
  private bq = 0;
  private to: ReturnType<typeof effectiveTimeouts>;
  // Inactivity: bytes moving either way count as activity on both sides (as with a socket timeout, a
  // write to a side is activity on it). One deadline for both: it falls at the shorter of `timeout client`
  // and (once connected) `timeout server` after the last bytes, and names that side when it expires.
  private idle = new Deadline(() => this.end(this.s && this.to.server > 0 && (this.to.client <= 0 || this.to.server < this.to.client) ? 'sD' : 'cD'));
  private idleMs = 0;

  constructor(
    private eng: Engine,
    public fe: FeRt,
    private c: net.Socket,
  ) {
    this.src = (c.remoteAddress ?? '').replace(/^::ffff:/, '');
    this.srcPort = c.remotePort ?? 0;
    const cfg = fe.cfg;
    this.be = (cfg.kind === 'listen' ? eng.world.bes.get(cfg.name) : cfg.defaultBackend ? eng.world.bes.get(cfg.defaultBackend) : undefined) ?? null;
    this.to = effectiveTimeouts(cfg, this.be?.cfg ?? cfg);
    c.on('close', () => this.end(this.s ? 'CD' : 'CC'));
    acceptReads(c, (d) => {
      this.bytesIn += d.length;
      if (this.idleMs) this.idle.set(clock(), this.idleMs);
      if (this.s) {
        if (!send(this.s, own(d))) c.pause();
        return;
      }
      // bytes sent before the server connection is up wait for it
      this.early.push(Buffer.from(d));
      c.pause();
    });
    this.idleMs = this.to.client;
    if (this.idleMs) this.idle.set(this.t0, this.idleMs);
    if (!this.be) {
      this.end('SC');
      return;
    }
    this.retriesLeft = this.be.cfg.retries;
    this.be.c.stot++;
    this.be.sessRate.hit(clock());
    this.assign(null);
  }

  pathForLb(): string {
    return '/';
  }

  private assign(exclude: SrvRt | null): void {
    const be = this.be!;
    const s = be.pick(this.src, '/', exclude);
    if (s === null) {
      this.end('SC');
      return;
    }
    if (s === 'full') {
      const w: Waiter = { session: this, timer: null, since: clock() };
      this.queued = true;
      if (this.to.queue > 0)
        w.timer = setTimeout(() => {
          const i = be.queue.indexOf(w);
          if (i >= 0) be.queue.splice(i, 1);
          be.c.qcur = be.queue.length;
          this.queued = false;
          this.tw = clock() - w.since;
          this.end('sQ');
        }, this.to.queue);
      this.bq = be.queue.length; // %bq: the requests ahead of this one in the backend queue
      be.queue.push(w);
      be.c.qcur = be.queue.length;
      if (be.queue.length > be.c.qmax) be.c.qmax = be.queue.length;
      return;
    }
    if (this.tw < 0) this.tw = 0;
    s.c.lbtot++;
    be.c.lbtot++;
    this.connect(s);
  }

  dequeued(s: SrvRt | null, waited: number): void {
    if (!this.queued || this.done) return;
    this.queued = false;
    this.tw = waited;
    if (!s) this.end('SC');
    else {
      s.c.lbtot++;
      this.be!.c.lbtot++;
      this.connect(s);
    }
  }

  private connect(s: SrvRt): void {
    if (this.done) return;
    if (this.srv !== s) {
      if (this.srv) {
        this.srv.cur--;
        this.srv.be.dequeue();
      }
      this.srv = s;
      s.cur++;
      if (s.cur > s.c.smax) s.c.smax = s.cur;
    }
    s.c.stot++;
    s.c.connect++;
    this.tConn = clock();
    this.eng.connectServer(s, this.to.connect, (err, sc) => {
      if (this.done) {
        sc?.sock.destroy();
        return;
      }
      if (err || !sc) {
        this.eng.observe(s, false, 'layer4');
        if (this.retriesLeft <= 0) {
          s.c.econ++;
          this.be!.c.econ++;
          this.end('SC');
          return;
        }
        this.retriesLeft--;
        this.retries++;
        s.c.wretr++;
        this.be!.c.wretr++;
        const rd = this.be!.cfg.redispatch;
        if (rd !== 0 && (rd < 0 ? this.retriesLeft === -rd - 1 : this.retries % rd === 0)) {
          this.redispatched = true;
          s.c.wredis++;
          this.be!.c.wredis++;
          this.assign(s);
        } else setTimeout(() => this.connect(s), Math.min(this.to.connect || 1000, 1000));
        return;
      }
      this.eng.observe(s, true, 'layer4');
      this.tc = clock() - this.tConn;
      // plain sockets for piping: drop the ServerConn dispatchers
      const sock = sc.sock;
      const c = this.c;
      sc.onBytes = (d) => {
        this.bytesOut += d.length;
        if (this.idleMs) this.idle.set(clock(), this.idleMs);
        if (!send(c, own(d))) sock.pause();
      };
      sock.removeAllListeners('end');
      sock.removeAllListeners('error');
      sock.removeAllListeners('close');
      sock.removeAllListeners('timeout');
      sock.removeAllListeners('drain');
      this.s = sock;
      sock.on('error', () => {});
      for (const b of this.early.splice(0)) sock.write(b);
      c.on('drain', () => sock.resume());
      sock.on('drain', () => c.resume());
      c.on('end', () => sock.end());
      sock.on('end', () => c.end());
      sock.on('close', () => this.end('SD'));
      const { client, server } = this.to;
      this.idleMs = client > 0 && server > 0 ? Math.min(client, server) : client > 0 ? client : server;
      if (this.idleMs) this.idle.set(clock(), this.idleMs);
      else this.idle.stop();
      this.c.resume();
    });
  }

  private end(term: string): void {
    if (this.done) return;
    this.done = true;
    this.idle.stop();
    // a normal close by either side after data flowed is a clean end
    if ((term === 'CD' || term === 'SD') && this.s) term = '--';
    this.term = term;
    if (this.queued && this.be) {
      const i = this.be.queue.findIndex((w) => w.session === this);
      if (i >= 0) {
        const w = this.be.queue.splice(i, 1)[0];
        if (w.timer) clearTimeout(w.timer);
      }
      this.be.c.qcur = this.be.queue.length;
    }
    this.s?.destroySoon();
    this.c.destroySoon();
    // sockets still flushing get a second, then go; the timer goes as soon as both are closed
    const sockets = [this.c, ...(this.s ? [this.s] : [])].filter((x) => !x.destroyed);
    if (sockets.length) {
      const t = setTimeout(() => {
        for (const x of sockets) x.destroy();
      }, 1000);
      t.unref();
      let open = sockets.length;
      for (const x of sockets) x.once('close', () => --open === 0 && clearTimeout(t));
    }
    const s = this.srv;
    if (s) {
      s.c.bin += this.bytesIn;
      s.c.bout += this.bytesOut;
      s.c.lastsess = clock();
    }
    if (this.be) {
      this.be.c.bin += this.bytesIn;
      this.be.c.bout += this.bytesOut;
    }
    this.fe.c.bin += this.bytesIn;
    this.fe.c.bout += this.bytesOut;
    const fe = this.fe.cfg;
    if (fe.logs.length && (fe.tcplog || fe.httplog) && !(fe.dontlognull && this.bytesIn === 0)) {
      let bc = 0;
      if (this.be) for (const x of this.be.servers) bc += x.cur;
      this.eng.logger.send(
        fe.logs,
        LOG_INFO,
        tcpLogLine({
          status: 0, TR: 0, Tr: 0, Ta: 0, requestLine: '',
          clientIp: this.src, clientPort: this.srcPort, start: this.t0, frontend: fe.name, backend: this.be?.cfg.name ?? fe.name,
          server: s?.cfg.name ?? '<NOSRV>', Tw: this.tw, Tc: this.tc, Tt: clock() - this.t0, bytes: this.bytesOut, term: this.term,
          actconn: this.eng.actconn, feconn: this.fe.cur, beconn: bc, srvconn: s?.cur ?? 0, retries: this.retries,
          redispatched: this.redispatched, srvQueue: 0, backQueue: this.bq,
        }),
      );
    }
    if (s) {
      s.cur--;
      this.srv = null;
      s.be.dequeue();
    }
    this.eng.sessionEnded(this);
  }

  stopWhenIdle(): void {}

  abort(): void {
    this.end('PD');
    this.s?.destroy();
    this.c.destroy();
  }
}
