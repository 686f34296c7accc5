// Balancing and the queue: a backend's servers as the data plane sees them (health, admin state, connections in
// use, the pooled idle connections), the choice of a server for a request, and the backend's queue, where HTTP
// requests and TCP connections alike wait for a server with a free slot. What must agree across the workers (the
// round-robin position, the connections per server, maxconn, the queue, health and admin states) is kept in the
// state they share (shared.ts); the rest (counters, idle connections, the requests waiting here) is this worker's.
import type { ProxyConfig, ServerConfig } from './config.ts';
import { effectiveTimeouts } from './config.ts';
import { newCounters, Rate } from './counters.ts';
import { clock } from './reads.ts';
import type { AdminState, Timeouts } from './types.ts';
import {
  B_HAS,
  B_HEAD,
  B_MINE,
  B_QMAX,
  B_QTAIL,
  B_RR,
  B_SMAX,
  B_WAITING,
  S_ADMIN,
  S_CUR,
  S_OBS_CLEAR,
  S_SMAX,
  S_UP,
  before,
  raiseMax,
  type Doorbells,
  type SharedState,
} from './shared.ts';
import type { ServerConn } from './serverconn.ts';

/** What waits in a backend's queue: an HTTP request or a TCP connection that has no server yet. */
export interface Queued {
  src: string;
  /** the server its persistence cookie named: it waits for a slot on that one while that one takes such requests */
  readonly pin: Server | null;
  pathForLb(): string;
  /** A server with a free slot for it (null: no server is usable any more), after `waited` ms in the queue. */
  dequeued(s: Server | null, waited: number): void;
  /** `timeout queue` expired after `waited` ms; it has already left the queue. */
  queueExpired(waited: number): void;
}

interface Waiter {
  session: Queued;
  timer: NodeJS.Timeout | null;
  since: number;
  ticket: number; // its place in the backend's queue, across the workers
}

const ADMIN: AdminState[] = ['ready', 'drain', 'maint'];

export class Server {
  key: string;
  idle: ServerConn[] = [];
  c = newCounters();
  obsErrors = 0;
  /** usable() when this worker last applied a health update (what a change in it must do: dequeue, close idle) */
  seenUsable = true;
  private readonly i32: Int32Array;
  private readonly o: number;
  private readonly f64: Float64Array;
  private readonly fo: number;
  constructor(
    public cfg: ServerConfig,
    public be: Backend,
    shared: SharedState,
    /** its place in the backend */
    readonly idx = 0,
  ) {
    this.key = `${be.cfg.name}/${cfg.name}`;
    this.i32 = shared.i32;
    this.o = shared.layout.servers.get(this.key)!;
    this.f64 = shared.f64;
    this.fo = shared.layout.since.get(this.key)!;
  }
  /** Requests holding a slot on this server, every worker's. */
  get cur(): number {
    return Atomics.load(this.i32, this.o + S_CUR);
  }
  set cur(v: number) {
    Atomics.store(this.i32, this.o + S_CUR, v);
  }
  get smax(): number {
    return Atomics.load(this.i32, this.o + S_SMAX);
  }
  get up(): boolean {
    return Atomics.load(this.i32, this.o + S_UP) === 1;
  }
  set up(v: boolean) {
    Atomics.store(this.i32, this.o + S_UP, v ? 1 : 0);
  }
  get admin(): AdminState {
    return ADMIN[Atomics.load(this.i32, this.o + S_ADMIN)];
  }
  set admin(v: AdminState) {
    Atomics.store(this.i32, this.o + S_ADMIN, ADMIN.indexOf(v));
  }
  get since(): number {
    return this.f64[this.fo];
  }
  set since(v: number) {
    this.f64[this.fo] = v;
  }
  /**
   * Whether an observed success must be reported (`observe`): only when a failure was reported since the last one
   * (a success clears the control plane's count of consecutive failures, and has nothing to clear otherwise).
   */
  observedOk(): boolean {
    if (Atomics.load(this.i32, this.o + S_OBS_CLEAR) === 1) return false;
    return Atomics.exchange(this.i32, this.o + S_OBS_CLEAR, 1) === 0;
  }
  /** An observed failure, reported: the next success is reported too. */
  observedFailure(): void {
    Atomics.store(this.i32, this.o + S_OBS_CLEAR, 0);
  }
  usable(): boolean {
    return this.cfg.weight > 0 && Atomics.load(this.i32, this.o + S_UP) === 1 && Atomics.load(this.i32, this.o + S_ADMIN) === 0;
  }
  /** Whether it takes the requests its persistence cookie names: not DOWN, not in maintenance (drained: yes). */
  persistUsable(): boolean {
    return Atomics.load(this.i32, this.o + S_UP) === 1 && Atomics.load(this.i32, this.o + S_ADMIN) !== 2;
  }
  full(): boolean {
    return this.cfg.maxconn > 0 && this.cur >= this.cfg.maxconn;
  }
  /** Takes a slot on this server (false: it is at its maxconn), for the whole proxy. */
  claim(): boolean {
    const max = this.cfg.maxconn;
    const i32 = this.i32;
    const at = this.o + S_CUR;
    let n: number;
    if (max === 0) n = Atomics.add(i32, at, 1) + 1;
    else
      for (;;) {
        const c = Atomics.load(i32, at);
        if (c >= max) return false;
        if (Atomics.compareExchange(i32, at, c, c + 1) === c) {
          n = c + 1;
          break;
        }
      }
    if (n > Atomics.load(i32, this.o + S_SMAX)) raiseMax(i32, this.o + S_SMAX, n);
    return true;
  }
  /** Gives the slot back, and the freed capacity to the requests waiting for this backend. */
  release(): void {
    Atomics.sub(this.i32, this.o + S_CUR, 1);
    this.be.dequeue();
  }
  weight(now: number): number {
    const w = this.cfg.weight;
    const since = this.since;
    if (this.cfg.slowstart > 0 && since > 0) {
      const el = now - since;
      if (el < this.cfg.slowstart) return Math.max(1, Math.ceil((w * el) / this.cfg.slowstart));
    }
    return w;
  }
}

export class Backend {
  servers: Server[];
  queue: Waiter[] = []; // this worker's waiting requests, oldest first
  c = newCounters();
  reqRate = new Rate();
  sessRate = new Rate();
  private readonly i32: Int32Array;
  private readonly o: number;
  constructor(
    public cfg: ProxyConfig,
    shared: SharedState,
    private bells: Doorbells,
    /** backends of this worker with requests waiting, for its doorbell */
    private waiting: Set<Backend>,
  ) {
    this.i32 = shared.i32;
    this.o = shared.layout.backends.get(cfg.name)!;
    this.servers = cfg.servers.map((s, i) => new Server(s, this, shared, i));
  }

  private timeouts = new Map<ProxyConfig, Timeouts>();

  /** The timeouts of a request from frontend `fe` to this backend (computed once per pair). */
  timeoutsFor(fe: ProxyConfig): Timeouts {
    let t = this.timeouts.get(fe);
    if (!t) this.timeouts.set(fe, (t = effectiveTimeouts(fe, this.cfg)));
    return t;
  }

  /** Requests waiting in this backend's queue, every worker's. */
  get queued(): number {
    return Atomics.load(this.i32, this.o + B_WAITING);
  }

  /** The most requests at once on this backend's servers, and in its queue. */
  get smax(): number {
    return Atomics.load(this.i32, this.o + B_SMAX);
  }
  get qmax(): number {
    return Atomics.load(this.i32, this.o + B_QMAX);
  }

  // pick() runs for every request: it fills this array in place instead of allocating a new one.
  private cands: Server[] = [];
  // round robin: the cycle of servers for a set of candidates (smooth weighted round robin over one period)
  private cycles = new Map<string, Server[]>();

  /** nbsrv: the usable active servers, or 1 when none is but a backup is (the one that takes the traffic). */
  usableCount(): number {
    let n = 0;
    for (const s of this.servers) if (!s.cfg.backup && s.usable()) n++;
    return n > 0 ? n : this.servers.some((s) => s.cfg.backup && s.usable()) ? 1 : 0;
  }

  /**
   * The servers a request may go to, in order, in this.cands[0..n): the usable active servers, or
   * when there is none the first usable backup; `exclude` is left out when another one remains.
   */
  private candidates(exclude: Server | null): number {
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

  /**
   * A server for a new request, with a slot on it taken (give it back with release()); null when none is usable,
   * 'full' when all usable ones are at their maxconn (or, for a new request, others are already waiting).
   */
  pick(src: string, path: string, exclude: Server | null): Server | null | 'full' {
    const cands = this.cands;
    const n = this.candidates(exclude);
    if (n === 0) return null;
    const algo = this.cfg.balance;
    if (algo === 'first') {
      for (let i = 0; i < n; i++) if (cands[i].claim()) return this.took(cands[i]);
      return 'full';
    }
    const now = clock();
    if (algo === 'source' || algo === 'uri') {
      const key = algo === 'source' ? src : this.cfg.balanceArg === 'whole' ? path : path.split('?')[0];
      let h = 2166136261;
      for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619) >>> 0;
      let total = 0;
      for (let i = 0; i < n; i++) total += cands[i].weight(now);
      let x = h % Math.max(total, 1);
      let s = cands[0];
      for (let i = 0; i < n; i++) {
        x -= cands[i].weight(now);
        if (x < 0) {
          s = cands[i];
          break;
        }
      }
      return s.claim() ? this.took(s) : 'full';
    }
    // one ticket per choice, for the whole proxy: consecutive requests get consecutive tickets whichever worker
    // takes them
    const ticket = Atomics.add(this.i32, this.o + B_RR, 1) >>> 0;
    if (algo === 'leastconn') {
      // the least loaded server that has room; among equals, the rotation of the tickets
      for (let tries = 0; tries < n; tries++) {
        let best: Server | null = null;
        let bestLoad = Infinity;
        for (let k = 0; k < n; k++) {
          const s = cands[(ticket + k) % n];
          if (s.full()) continue;
          const load = (s.cur + 1) / s.weight(now);
          if (load < bestLoad) {
            best = s;
            bestLoad = load;
          }
        }
        if (!best) return 'full';
        if (best.claim()) return this.took(best);
      }
      return 'full';
    }
    // roundrobin / static-rr: the ticket's place in the cycle; a server at its maxconn passes its turn on
    const cycle = this.cycle(n, now);
    for (let k = 0; k < cycle.length; k++) {
      const s = cycle[(ticket + k) % cycle.length];
      if (s.claim()) return this.took(s);
    }
    return 'full';
  }

  private took(s: Server): Server {
    let bc = 0;
    for (const x of this.servers) bc += x.cur;
    if (bc > Atomics.load(this.i32, this.o + B_SMAX)) raiseMax(this.i32, this.o + B_SMAX, bc);
    return s;
  }

  /** The round-robin cycle of candidates cands[0..n), at their weights of the moment (slowstart). */
  private cycle(n: number, now: number): Server[] {
    const cands = this.cands;
    // the usual key: which servers are candidates (a bit each); with a server in slowstart, the weights too
    let mask = 0;
    let ramping = false;
    for (let i = 0; i < n; i++) {
      mask |= 1 << (cands[i].idx & 31);
      if (cands[i].cfg.slowstart > 0 && cands[i].weight(now) !== cands[i].cfg.weight) ramping = true;
    }
    if (!ramping && n === this.lastN && mask === this.lastMask && this.servers.length <= 31) return this.lastCycle;
    let key = '';
    for (let i = 0; i < n; i++) key += `${cands[i].idx}:${cands[i].weight(now)},`;
    let c = this.cycles.get(key);
    if (!c) c = this.buildCycle(n, now, key);
    if (!ramping) {
      this.lastN = n;
      this.lastMask = mask;
      this.lastCycle = c;
    }
    return c;
  }

  private lastN = -1;
  private lastMask = 0;
  private lastCycle: Server[] = [];

  private buildCycle(n: number, now: number, key: string): Server[] {
    const cands = this.cands;
    // smooth weighted round robin over one period: each server its weight's share, spread out
    const ws = cands.slice(0, n).map((s) => s.weight(now));
    const cw = ws.map(() => 0);
    const total = ws.reduce((a, b) => a + b, 0);
    const c: Server[] = [];
    for (let step = 0; step < total; step++) {
      let best = 0;
      for (let i = 0; i < n; i++) {
        cw[i] += ws[i];
        if (cw[i] > cw[best]) best = i;
      }
      cw[best] -= total;
      c.push(cands[best]);
    }
    if (this.cycles.size > 64) this.cycles.clear();
    this.cycles.set(key, c);
    return c;
  }

  /** pick() for a new request: behind the requests already waiting, if any (none usable: null). */
  take(src: string, path: string, exclude: Server | null): Server | null | 'full' {
    if (this.hasWaiters()) return this.servers.some((s) => s.usable()) ? 'full' : null;
    return this.pick(src, path, exclude);
  }

  /** Whether requests are waiting for this backend, in any worker (a new request then waits behind them). */
  hasWaiters(): boolean {
    return Atomics.load(this.i32, this.o + B_WAITING) > 0;
  }

  /**
   * Puts `session` at the end of the queue until a server has a free slot, or for `timeout` ms at most (0: no
   * limit). Returns the number of requests ahead of it (HAProxy's %bq), every worker's.
   */
  enqueue(session: Queued, timeout: number): number {
    const i32 = this.i32;
    const w: Waiter = { session, timer: null, since: clock(), ticket: Atomics.add(i32, this.o + B_QTAIL, 1) };
    if (timeout > 0)
      w.timer = setTimeout(() => {
        this.remove(w);
        session.queueExpired(clock() - w.since);
      }, timeout);
    this.queue.push(w);
    if (this.queue.length === 1) this.publishHead();
    Atomics.add(i32, this.o + B_MINE + this.bells.me, 1);
    const waiting = Atomics.add(i32, this.o + B_WAITING, 1) + 1;
    if (waiting > Atomics.load(i32, this.o + B_QMAX)) raiseMax(i32, this.o + B_QMAX, waiting);
    this.c.qcur = this.queue.length;
    if (this.queue.length > this.c.qmax) this.c.qmax = this.queue.length;
    // a slot freed while this request was getting its ticket is taken now
    queueMicrotask(() => this.dequeue());
    return waiting - 1;
  }

  /** Takes `session` out of the queue (a client that went away while waiting). */
  leave(session: Queued): void {
    const w = this.queue.find((x) => x.session === session);
    if (w) this.remove(w);
  }

  private remove(w: Waiter): void {
    const i = this.queue.indexOf(w);
    if (i < 0) return;
    this.queue.splice(i, 1);
    if (w.timer) clearTimeout(w.timer);
    this.left(1);
    this.c.qcur = this.queue.length;
    if (i === 0) {
      this.publishHead();
      this.ringOldest(); // it may have been the one the others waited behind
    }
  }

  /** `n` of this worker's requests left the queue. */
  private left(n: number): void {
    Atomics.sub(this.i32, this.o + B_MINE + this.bells.me, n);
    Atomics.sub(this.i32, this.o + B_WAITING, n);
  }

  /** This worker's oldest waiting ticket for the others to see (or none). */
  private publishHead(): void {
    const me = this.bells.me;
    if (this.queue.length) {
      Atomics.store(this.i32, this.o + B_HEAD + me, this.queue[0].ticket);
      Atomics.store(this.i32, this.o + B_HAS + me, 1);
      this.waiting.add(this);
      this.bells.listen();
    } else {
      Atomics.store(this.i32, this.o + B_HAS + me, 0);
      this.waiting.delete(this);
      if (this.waiting.size === 0) this.bells.stop();
    }
  }

  /** The worker whose oldest request has waited longest, or -1 when none waits. */
  private oldest(): number {
    let best = -1;
    let ticket = 0;
    const i32 = this.i32;
    for (let w = 0; w < this.bells.workers; w++) {
      if (Atomics.load(i32, this.o + B_HAS + w) !== 1) continue;
      const t = Atomics.load(i32, this.o + B_HEAD + w);
      if (best < 0 || before(t, ticket)) {
        best = w;
        ticket = t;
      }
    }
    return best;
  }

  private ringOldest(): void {
    if (!this.hasWaiters()) return;
    const w = this.oldest();
    if (w >= 0 && w !== this.bells.me) this.bells.ring(w);
  }

  /**
   * Gives freed capacity to waiting requests: this worker's, in ticket order, while its oldest is the oldest of
   * all; then the worker whose request is next is rung.
   */
  dequeue(): void {
    if (this.queue.length === 0) {
      if (this.hasWaiters()) this.ringOldest();
      return;
    }
    // a request waiting for the server its cookie named passes its turn while that server is full
    let i = 0;
    while (i < this.queue.length) {
      if (this.bells.workers > 1 && this.oldest() !== this.bells.me) break;
      const w = this.queue[i];
      const pin = w.session.pin;
      let s: Server | null | 'full';
      if (pin && pin.persistUsable()) {
        if (!pin.claim()) {
          i++;
          continue;
        }
        s = this.took(pin);
      } else {
        s = this.pick(w.session.src, w.session.pathForLb(), null);
        if (s === 'full') return;
      }
      this.queue.splice(i, 1);
      this.left(1);
      if (i === 0) this.publishHead();
      this.c.qcur = this.queue.length;
      if (w.timer) clearTimeout(w.timer);
      w.session.dequeued(s, clock() - w.since);
    }
    this.ringOldest();
  }

  /** Requests queued here for a backend with no usable server left fail now (503), as HAProxy's do. */
  failQueueWhenNoServer(): void {
    if (!this.queue.length || this.servers.some((s) => s.usable())) return;
    // (a request for the server its cookie named, drained but up, still waits for it)
    const all = this.queue.filter((w) => !w.session.pin?.persistUsable());
    if (!all.length) return;
    this.queue = this.queue.filter((w) => !all.includes(w));
    this.left(all.length);
    this.publishHead();
    this.c.qcur = this.queue.length;
    for (const w of all) {
      if (w.timer) clearTimeout(w.timer);
      w.session.dequeued(null, clock() - w.since);
    }
  }
}
