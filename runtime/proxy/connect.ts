// Getting a session to its server, for the HTTP and the TCP sessions alike (ServerLink): a server from the
// balancing or else a place in the backend's queue (until `timeout queue`), the connection (within `timeout
// connect`), and what follows a failed one: `retries` tries, a turn-around between tries on the same server, and
// with `option redispatch` a try on another server; the server slot held meanwhile, and the times of it (Tw, Tc).
import net from 'node:net';
import { clock, connectReads } from './reads.ts';
import { ServerConn } from './serverconn.ts';
import type { Backend, Queued, Server } from './balance.ts';
import type { SessionHost } from './session-host.ts';
import type { Timeouts } from './types.ts';

/** A new connection to server `s`; `cb` gets it once it is up, or the error (`timeout` ms at most, 0: no limit). */
export function connectServer(s: Server, timeout: number, cb: (err: Error | null, sc: ServerConn | null) => void): void {
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
    sc = new ServerConn(sock, s.idle);
    cb(null, sc);
  });
}

/**
 * Whether a failed connection's next try goes to another server: `option redispatch` (rd < 0: on the last retry;
 * rd = P > 0: every Pth retry), given the retries left and made so far.
 */
export function redispatchDue(rd: number, retriesLeft: number, retries: number): boolean {
  return rd !== 0 && (rd < 0 ? retriesLeft === -rd - 1 : retries % rd === 0);
}

/** The wait before trying the same server again: HAProxy's 1 s, or `timeout connect` when that is shorter. */
export function turnAround(connectTimeout: number): number {
  return Math.min(connectTimeout || 1000, 1000);
}

/** What comes after a failed try: none left (a connection error), another server, or the same one again. */
export type NextTry = 'give-up' | 'redispatch' | 'again';

/** The tries of one request (or TCP connection): how many are left and were made, and whether one was redispatched. */
export class Retries {
  left = 0;
  made = 0;
  redispatched = false;

  /** A new request on backend `be`: its `retries`. */
  reset(be: Backend | null): void {
    this.left = be ? be.cfg.retries : 0;
    this.made = 0;
    this.redispatched = false;
  }

  /**
   * Counts one more try after server `s` failed; true when it goes to another server (redispatch: the caller
   * gives `s`'s slot back and assigns another), false when it goes to `s` again.
   */
  count(s: Server, be: Backend): boolean {
    this.left--;
    this.made++;
    s.c.wretr++;
    be.c.wretr++;
    if (!redispatchDue(be.cfg.redispatch, this.left, this.made)) return false;
    this.redispatched = true;
    s.c.wredis++;
    be.c.wredis++;
    return true;
  }

  /** A connection to `s` failed: the next try, counted (`allowed` false: retries do not apply to it). */
  afterConnectFailure(s: Server, be: Backend, allowed = true): NextTry {
    if (this.left <= 0 || !allowed) {
      s.c.econ++;
      be.c.econ++;
      return 'give-up';
    }
    return this.count(s, be) ? 'redispatch' : 'again';
  }
}

/** Why a session gets no server: none usable, none left usable while it waited, `timeout queue`, or no connection after its tries. */
export type NoServer = 'none' | 'gone' | 'queue' | 'connect';

/** The session a ServerLink works for. */
export interface LinkOwner {
  readonly src: string;
  pathForLb(): string;
  /** In the backend's queue, until a server has a free slot. */
  waiting(): void;
  /** A server with a slot taken for it (link.srv): connect to it (link.connect) or use a pooled connection (link.reuse). */
  assigned(s: Server): void;
  /** Connected to link.srv. */
  connected(sc: ServerConn): void;
  /** No server for it (a 503 in HTTP). */
  failed(why: NoServer): void;
}

export class ServerLink implements Queued {
  /** the server assigned; its slot is held until release() */
  srv: Server | null = null;
  private holds = false;
  readonly tries = new Retries();
  private state: 'idle' | 'queued' | 'connecting' | 'connected' = 'idle';
  /** Tw (ms in the queue), Tc (ms to connect), -1 when it did not come to that; when the connection was started */
  tw = -1;
  tc = -1;
  tConn = 0;
  /** requests that were ahead in the backend's queue (%bq) */
  bq = 0;
  private be: Backend | null = null;
  private to: Timeouts | null = null;
  private retryConnect = true;
  /** the server the request's persistence cookie named (until a redispatch) */
  pin: Server | null = null;

  constructor(
    private owner: LinkOwner,
    private host: SessionHost,
  ) {}

  get src(): string {
    return this.owner.src;
  }

  pathForLb(): string {
    return this.owner.pathForLb();
  }

  /** Ready for the next request, none assigned yet. */
  reset(): void {
    this.be = null;
    this.srv = null;
    this.holds = false;
    this.state = 'idle';
    this.tw = this.tc = -1;
    this.bq = 0;
    this.pin = null;
    this.tries.reset(null);
  }

  /**
   * A server for a request to `be` (`retryConnect` false: a failed connection is not tried again; `pin`: the
   * server its persistence cookie named, which takes it, or queues it while full).
   */
  start(be: Backend, to: Timeouts, retryConnect = true, pin: Server | null = null): void {
    this.be = be;
    this.to = to;
    this.retryConnect = retryConnect;
    this.tries.reset(be);
    this.bq = 0;
    this.pin = pin;
    this.assign(null);
  }

  /** A server from the balancing, or a place in the queue (`exclude`: the server that just failed, if another is usable). */
  private assign(exclude: Server | null): void {
    const be = this.be!;
    const pin = this.pin;
    if (pin && pin.persistUsable() && pin !== exclude) {
      if (pin.claim()) {
        if (this.tw < 0) this.tw = 0;
        this.take(pin);
      } else {
        this.state = 'queued';
        this.bq = be.enqueue(this, this.to!.queue);
        this.owner.waiting();
      }
      return;
    }
    this.pin = null;
    const s = be.take(this.owner.src, this.owner.pathForLb(), exclude);
    if (s === null) {
      this.owner.failed('none');
      return;
    }
    if (s === 'full') {
      this.state = 'queued';
      this.bq = be.enqueue(this, this.to!.queue);
      this.owner.waiting();
      return;
    }
    if (this.tw < 0) this.tw = 0;
    this.take(s);
  }

  private take(s: Server): void {
    this.release();
    this.srv = s;
    this.holds = true;
    this.state = 'idle';
    s.c.lbtot++;
    this.be!.c.lbtot++;
    this.owner.assigned(s);
  }

  queueExpired(waited: number): void {
    this.state = 'idle';
    this.tw = waited;
    this.owner.failed('queue');
  }

  dequeued(s: Server | null, waited: number): void {
    if (this.state !== 'queued') {
      s?.release(); // gone meanwhile: the slot goes to the next one
      return;
    }
    this.state = 'idle';
    this.tw = waited;
    if (!s) this.owner.failed('gone');
    else this.take(s);
  }

  /** A new connection to `s` (an attempt on it, counted). */
  connect(s: Server): void {
    this.state = 'connecting';
    this.tConn = clock();
    s.c.stot++; // as HAProxy: every connection attempt is a session on the server
    s.c.connect++;
    connectServer(s, this.to!.connect, (err, sc) => {
      if (this.state !== 'connecting' || this.srv !== s) {
        sc?.sock.destroy();
        return;
      }
      if (err || !sc) this.connectFailed(s);
      else this.connected(s, sc);
    });
  }

  /** A pooled connection to `s`, taken for this request. */
  reuse(s: Server, sc: ServerConn): void {
    this.tConn = clock();
    s.c.stot++;
    s.c.reuse++;
    this.connected(s, sc);
  }

  private connected(s: Server, sc: ServerConn): void {
    this.state = 'connected';
    this.tc = clock() - this.tConn;
    this.host.observe(s, true, 'layer4');
    this.owner.connected(sc);
  }

  private connectFailed(s: Server): void {
    this.host.observe(s, false, 'layer4');
    const next = this.tries.afterConnectFailure(s, this.be!, this.retryConnect);
    if (next === 'give-up') {
      this.state = 'idle';
      this.owner.failed('connect');
    } else if (next === 'redispatch') this.redispatch(s);
    else
      setTimeout(() => {
        if (this.state === 'connecting' && this.srv === s) this.connect(s);
      }, turnAround(this.to!.connect));
  }

  /** The request tried again after server `s` failed it (retry-on): on another server when redispatch is due, else on `s` at once. */
  retry(s: Server): void {
    if (this.tries.count(s, this.be!)) this.redispatch(s);
    else this.connect(s);
  }

  /** Another server than `s`: its slot goes back first (the balancing may need it), then the balancing again. */
  private redispatch(s: Server): void {
    this.pin = null;
    this.release();
    this.srv = null;
    this.assign(s);
  }

  /** Gives the server slot back (and its capacity to the queue); the server stays named for the log. */
  release(): void {
    if (this.srv && this.holds) {
      this.holds = false;
      this.srv.release();
    }
  }

  /** Whether the slot on srv is held (the request counts on that server). */
  get holding(): boolean {
    return this.holds;
  }

  /** The session is done with it: out of the queue, no connection awaited, the slot given back. */
  stop(): void {
    if (this.state === 'queued') this.be?.leave(this);
    this.state = 'idle';
    this.release();
  }
}
