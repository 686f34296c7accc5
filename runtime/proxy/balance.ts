// Balancing and the queue: a backend's servers as the data plane sees them (health, admin state, connections in
// use, the pooled idle connections), the choice of a server for a request, and the backend's queue, where HTTP
// requests and TCP connections alike wait for a server with a free slot.
import type { ProxyConfig, ServerConfig } from './config.ts';
import { effectiveTimeouts } from './config.ts';
import { newCounters, Rate } from './counters.ts';
import { clock } from './reads.ts';
import type { AdminState } from './engine.ts';
import type { ServerConn } from './serverconn.ts';

/** What waits in a backend's queue: an HTTP request or a TCP connection that has no server yet. */
export interface Queued {
  src: string;
  pathForLb(): string;
  /** A server with a free slot for it (null: no server is usable any more), after `waited` ms in the queue. */
  dequeued(s: SrvRt | null, waited: number): void;
  /** `timeout queue` expired after `waited` ms; it has already left the queue. */
  queueExpired(waited: number): void;
}

interface Waiter {
  session: Queued;
  timer: NodeJS.Timeout | null;
  since: number;
}

/**
 * Whether a failed connection's next try goes to another server: `option redispatch` (rd < 0: on the last retry;
 * rd = P > 0: every Pth retry), given the retries left and made so far.
 */
export function redispatchDue(rd: number, retriesLeft: number, retries: number): boolean {
  return rd !== 0 && (rd < 0 ? retriesLeft === -rd - 1 : retries % rd === 0);
}

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

  /**
   * Puts `session` at the end of the queue until a server has a free slot, or for `timeout` ms at most (0: no
   * limit). Returns the number of requests ahead of it (HAProxy's %bq).
   */
  enqueue(session: Queued, timeout: number): number {
    const w: Waiter = { session, timer: null, since: clock() };
    if (timeout > 0)
      w.timer = setTimeout(() => {
        this.remove(w);
        session.queueExpired(clock() - w.since);
      }, timeout);
    const ahead = this.queue.length;
    this.queue.push(w);
    this.c.qcur = this.queue.length;
    if (this.queue.length > this.c.qmax) this.c.qmax = this.queue.length;
    return ahead;
  }

  /** Takes `session` out of the queue (a client that went away while waiting). */
  leave(session: Queued): void {
    const w = this.queue.find((x) => x.session === session);
    if (w) this.remove(w);
  }

  private remove(w: Waiter): void {
    const i = this.queue.indexOf(w);
    if (i >= 0) this.queue.splice(i, 1);
    if (w.timer) clearTimeout(w.timer);
    this.c.qcur = this.queue.length;
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

  /** Requests queued for a backend with no usable server left fail now (503), as HAProxy's do. */
  failQueueWhenNoServer(): void {
    if (!this.queue.length || this.servers.some((s) => s.usable())) return;
    for (const w of this.queue.splice(0)) {
      if (w.timer) clearTimeout(w.timer);
      w.session.dequeued(null, clock() - w.since);
    }
    this.c.qcur = 0;
  }
}
