// A TCP session (mode tcp): one server connection per client connection, bytes piped both ways, with the
// queue, retries and redispatch of HTTP, one inactivity deadline for both sides, and the tcplog line.
import type net from 'node:net';
import { effectiveTimeouts } from './config.ts';
import { LOG_INFO, tcpLogLine } from './log.ts';
import { acceptReads, clock, own } from './reads.ts';
import { send } from './writes.ts';
import { Deadline } from './deadline.ts';
import type { Backend, Server } from './balance.ts';
import type { ServerConn } from './serverconn.ts';
import type { Frontend } from './frontend.ts';
import { ServerLink, type LinkOwner, type NoServer } from './connect.ts';
import type { Session, SessionHost } from './session-host.ts';
import type { Timeouts } from './types.ts';

/** mode tcp: one server connection per client connection, bytes piped both ways. */
export class TcpSession implements LinkOwner, Session {
  src: string;
  private srcPort: number;
  private be: Backend | null;
  private s: net.Socket | null = null;
  /** the server, its slot, the queue and the tries */
  private link: ServerLink;
  private t0 = clock();
  private bytesOut = 0;
  private bytesIn = 0;
  private term = '--';
  private done = false;
  private early: Buffer[] = [];
  private to: Timeouts;
  // Inactivity: bytes moving either way count as activity on both sides (as with a socket timeout, a
  // write to a side is activity on it). One deadline for both: it falls at the shorter of `timeout client`
  // and (once connected) `timeout server` after the last bytes, and names that side when it expires.
  private idle = new Deadline(() =>
    this.end(this.s && this.to.server > 0 && (this.to.client <= 0 || this.to.server < this.to.client) ? 'sD' : 'cD'),
  );
  private idleMs = 0;

  constructor(
    private host: SessionHost,
    public fe: Frontend,
    private c: net.Socket,
  ) {
    this.src = (c.remoteAddress ?? '').replace(/^::ffff:/, '');
    this.srcPort = c.remotePort ?? 0;
    this.link = new ServerLink(this, host);
    const cfg = fe.cfg;
    this.be = (cfg.kind === 'listen' ? host.backend(cfg.name) : cfg.defaultBackend ? host.backend(cfg.defaultBackend) : undefined) ?? null;
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
    this.be.c.stot++;
    this.be.sessRate.hit(clock());
    this.link.start(this.be, this.to);
  }

  pathForLb(): string {
    return '/';
  }

  waiting(): void {}

  assigned(s: Server): void {
    if (!this.done) this.link.connect(s);
  }

  failed(why: NoServer): void {
    this.end(why === 'queue' ? 'sQ' : 'SC');
  }

  connected(sc: ServerConn): void {
    if (this.done) {
      sc.sock.destroy();
      return;
    }
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
  }

  private end(term: string): void {
    if (this.done) return;
    this.done = true;
    this.idle.stop();
    // a normal close by either side after data flowed is a clean end
    if ((term === 'CD' || term === 'SD') && this.s) term = '--';
    this.term = term;
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
    const s = this.link.srv;
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
      this.host.logger.send(
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
          Tw: this.link.tw,
          Tc: this.link.tc,
          Tt: clock() - this.t0,
          bytes: this.bytesOut,
          term: this.term,
          actconn: this.host.actconn,
          feconn: this.fe.cur,
          beconn: bc,
          srvconn: s?.cur ?? 0,
          retries: this.link.tries.made,
          redispatched: this.link.tries.redispatched,
          srvQueue: 0,
          backQueue: this.link.bq,
        }),
      );
    }
    this.link.stop();
    this.host.sessionEnded(this);
  }

  stopWhenIdle(): void {}

  abort(): void {
    this.end('PD');
    this.s?.destroy();
    this.c.destroy();
  }
}
