// A TCP session (mode tcp): one server connection per client connection, bytes piped both ways, with the
// queue, retries and redispatch of HTTP, one inactivity deadline for both sides, and the tcplog line.
import type net from 'node:net';
import { effectiveTimeouts } from './config.ts';
import { LOG_INFO, tcpLogLine } from './log.ts';
import { acceptReads, clock, own } from './reads.ts';
import { send } from './writes.ts';
import { Deadline } from './deadline.ts';
import { redispatchDue, type BeRt, type Queued, type SrvRt } from './balance.ts';
import type { Engine, FeRt } from './engine.ts';

/** mode tcp: one server connection per client connection, bytes piped both ways. */
export class TcpSession implements Queued {
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
  private idle = new Deadline(() =>
    this.end(this.s && this.to.server > 0 && (this.to.client <= 0 || this.to.server < this.to.client) ? 'sD' : 'cD'),
  );
  private idleMs = 0;

  constructor(
    private eng: Engine,
    public fe: FeRt,
    private c: net.Socket,
  ) {
    this.src = (c.remoteAddress ?? '').replace(/^::ffff:/, '');
    this.srcPort = c.remotePort ?? 0;
    const cfg = fe.cfg;
    this.be =
      (cfg.kind === 'listen' ? eng.world.bes.get(cfg.name) : cfg.defaultBackend ? eng.world.bes.get(cfg.defaultBackend) : undefined) ??
      null;
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
    const s = be.take(this.src, '/', exclude);
    if (s === null) {
      this.end('SC');
      return;
    }
    if (s === 'full') {
      this.queued = true;
      this.bq = be.enqueue(this, this.to.queue);
      return;
    }
    if (this.tw < 0) this.tw = 0;
    s.c.lbtot++;
    be.c.lbtot++;
    this.connect(s);
  }

  queueExpired(waited: number): void {
    this.queued = false;
    this.tw = waited;
    this.end('sQ');
  }

  dequeued(s: SrvRt | null, waited: number): void {
    if (!this.queued || this.done) {
      s?.release();
      return;
    }
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
      // a new server's slot was taken by pick(); the previous one's goes back
      this.srv?.release();
      this.srv = s;
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
        if (redispatchDue(this.be!.cfg.redispatch, this.retriesLeft, this.retries)) {
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
    if (this.queued && this.be) this.be.leave(this);
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
          status: 0,
          TR: 0,
          Tr: 0,
          Ta: 0,
          requestLine: '',
          clientIp: this.src,
          clientPort: this.srcPort,
          start: this.t0,
          frontend: fe.name,
          backend: this.be?.cfg.name ?? fe.name,
          server: s?.cfg.name ?? '<NOSRV>',
          Tw: this.tw,
          Tc: this.tc,
          Tt: clock() - this.t0,
          bytes: this.bytesOut,
          term: this.term,
          actconn: this.eng.actconn,
          feconn: this.fe.cur,
          beconn: bc,
          srvconn: s?.cur ?? 0,
          retries: this.retries,
          redispatched: this.redispatched,
          srvQueue: 0,
          backQueue: this.bq,
        }),
      );
    }
    if (s) {
      this.srv = null;
      s.release();
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
