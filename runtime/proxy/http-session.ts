// An HTTP session: one client connection in mode http, its requests one after the other (keep-alive,
// pipelining), each balanced on its own, forwarded to a server (pooled connections in keep-alive mode) with its
// body, its answer sent back; retries, redispatch, the queue, local answers (errors, stats, monitor-uri), the
// counters and the httplog line of each request.
import type net from 'node:net';
import type { HttpRule, ProxyConfig, effectiveTimeouts } from './config.ts';
import {
  ChunkedTracker,
  HttpError,
  MAX_HEAD,
  errorResponse,
  findHeadEnd,
  headerValue,
  parseRequestHead,
  parseResponseHead,
  type RequestHead,
  type ResponseHead,
} from './http.ts';
import {
  CRLF,
  connectionTail,
  localAnswer,
  rebuiltRequest,
  rebuiltResponse,
  statsAuthorized,
  statsUnauthorized,
  withExtra,
} from './http-heads.ts';
import { LOG_INFO, httpLogLine, tcpLogLine, logEscape } from './log.ts';
import { acceptReads, clock, dataReads, inArena, own } from './reads.ts';
import { send } from './writes.ts';
import { accountRequest, statusClass } from './counters.ts';
import { condMatch, inNet } from './acl.ts';
import { Deadline } from './deadline.ts';
import { redispatchDue, type BeRt, type Queued, type SrvRt } from './balance.ts';
import type { ServerConn, ConnOwner } from './serverconn.ts';
import type { Engine, FeRt, LocalResponse } from './engine.ts';

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

export class HttpSession implements Queued, ConnOwner {
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
  private headersChanged = false; // http-request rules changed the request's headers: the head is rebuilt
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
    /** the connection came in over TLS (ssl_fc) */
    readonly tls: boolean,
  ) {
    this.src = c.remoteAddress ?? '';
    if (this.src.startsWith('::ffff:')) this.src = this.src.slice(7);
    this.srcPort = c.remotePort ?? 0;
    this.to = fe.timeouts;
    const reads = (d: Buffer) => {
      this.onClientData(d);
      this.keepBytes();
    };
    if (tls) dataReads(c, reads);
    else acceptReads(c, reads);
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
    if (fe.httpRules.length && this.applyRules(fe.httpRules, req, fe.name)) return;
    for (const r of fe.services)
      if (!r.cond || condMatch(r.cond, req, this.src, this.tls)) {
        this.serveStats('prom', fe, '<PROMEX>');
        return;
      }
    let be: BeRt | undefined;
    for (const u of fe.useBackends)
      if (condMatch(u.cond, req, this.src, this.tls)) {
        be = this.eng.world.bes.get(u.backend);
        break;
      }
    if (!be)
      be =
        fe.kind === 'listen' ? this.eng.world.bes.get(fe.name) : fe.defaultBackend ? this.eng.world.bes.get(fe.defaultBackend) : undefined;
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
    // a backend's own http-request rules come after the switching rules
    if (be.cfg !== fe) {
      if (be.cfg.httpRules.length && this.applyRules(be.cfg.httpRules, req, be.cfg.name)) return;
      for (const r of be.cfg.services)
        if (!r.cond || condMatch(r.cond, req, this.src, this.tls)) {
          this.serveStats('prom', be.cfg, '<PROMEX>');
          return;
        }
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

  /**
   * The http-request rules of a proxy, in order: header changes apply to the request; a redirect answers it (true:
   * the request is answered).
   */
  private applyRules(rules: HttpRule[], req: RequestHead, owner: string): boolean {
    for (const r of rules) {
      if (r.cond && !condMatch(r.cond, req, this.src, this.tls)) continue;
      if (r.action === 'redirect-scheme') {
        const host = headerValue(req.headers, 'host');
        const path = req.uri.startsWith('/') ? req.uri : req.path;
        this.local(
          { status: r.code, headers: [['location', `${r.scheme}://${host ?? ''}${path}`]], body: Buffer.alloc(0) },
          owner,
          '<NOSRV>',
        );
        return true;
      }
      const lname = r.name.toLowerCase();
      const hs = req.headers; // (the request's own list, changed in place)
      if (r.action !== 'add-header') for (let i = hs.length - 1; i >= 0; i--) if (hs[i].lname === lname) hs.splice(i, 1);
      if (r.action !== 'del-header') hs.push({ name: r.name, lname, value: r.value });
      this.headersChanged = true;
    }
    return false;
  }

  private assign(exclude: SrvRt | null): void {
    const be = this.be!;
    const s = be.take(this.src, this.req!.path, exclude);
    if (s === null) {
      this.srvName = '<NOSRV>';
      this.localError(503, 'SC', null);
      return;
    }
    if (s === 'full') {
      this.st = St.Queue;
      this.bq = be.enqueue(this, this.to.queue);
      return;
    }
    if (this.tw < 0) this.tw = 0;
    this.useServer(s);
  }

  queueExpired(waited: number): void {
    this.tw = waited;
    this.localError(503, 'sQ', null);
  }

  dequeued(s: SrvRt | null, waited: number): void {
    if (this.st !== St.Queue) {
      s?.release(); // gone meanwhile: the slot goes to the next one
      return;
    }
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
      // the slot taken by pick() is this request's until release()
      this.counted = true;
      const be = this.be!;
      be.c.stot++;
      be.sessRate.hit(now);
    }
    s.c.lbtot++;
    s.c.stot++; // as HAProxy: every connection attempt is a session on the server
    this.be!.c.lbtot++;
    this.st = St.Connect;
    this.tConn = now;
    const idle =
      this.fe.cfg.connMode === 'keep-alive' && this.be!.cfg.connMode === 'keep-alive' && this.reqDone && !this.req!.upgrade
        ? this.eng.takeIdle(s)
        : null;
    if (idle) {
      s.c.reuse++;
      this.connected(idle);
      return;
    }
    s.c.connect++;
    this.connectTo(s);
  }

  /** One retry counted; true when it was redispatched (to another server, assigned now). */
  private retryCounted(s: SrvRt): boolean {
    const be = this.be!;
    this.retriesLeft--;
    this.retries++;
    s.c.wretr++;
    be.c.wretr++;
    if (!redispatchDue(be.cfg.redispatch, this.retriesLeft, this.retries)) return false;
    this.redispatched = true;
    s.c.wredis++;
    be.c.wredis++;
    this.release(false);
    this.assign(s);
    return true;
  }

  private connectFailed(s: SrvRt): void {
    this.eng.observe(s, false, 'layer4');
    const be = this.be!;
    if (this.retriesLeft <= 0 || !be.cfg.retryOn.includes('conn-failure')) {
      s.c.econ++;
      be.c.econ++;
      this.tc = clock() - this.tConn;
      this.localError(503, 'SC', null);
      return;
    }
    if (this.retryCounted(s)) return;
    // turn-around delay before trying the same server again
    const delay = Math.min(this.to.connect || 1000, 1000);
    this.st = St.Connect;
    setTimeout(() => {
      if (this.st !== St.Connect) return;
      this.useServerAgain(s);
    }, delay);
  }

  /**
   * retry-on empty-response or response-timeout: the request, whole and without a body (the head as
   * sent is kept), is tried again: on another server when redispatch is due, else on this one at once.
   * False when it cannot be (no retry left, not asked for, a body already sent).
   */
  private retryAfterServer(why: 'empty-response' | 'response-timeout'): boolean {
    const be = this.be!;
    const s = this.srv!;
    if (!be.cfg.retryOn.includes(why) || this.retriesLeft <= 0 || !this.reqDone || this.bytesIn !== this.req!.headBytes) return false;
    this.bytesIn = 0;
    if (this.retryCounted(s)) return true;
    this.st = St.Connect;
    this.tConn = clock();
    s.c.connect++;
    this.useServerAgain(s);
    return true;
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
    const mode =
      fe.connMode === 'close' || beCfg.connMode === 'close'
        ? 'close'
        : fe.connMode === 'server-close' || beCfg.connMode === 'server-close'
          ? 'server-close'
          : 'keep-alive';
    this.keepServer = mode === 'keep-alive';
    let extra = '';
    const ff = fe.forwardfor ?? beCfg.forwardfor;
    if (ff && !(ff.except && inNet(this.src, ff.except)) && !(ff.ifnone && req.headers.some((x) => x.lname === ff.header.toLowerCase())))
      extra += `${ff.header}: ${this.src}${CRLF}`;
    if (req.upgrade) {
      extra += `Connection: upgrade${CRLF}${CRLF}`;
      this.keepServer = false;
    } else extra += connectionTail(this.keepServer, req.version, 'Connection');
    const raw = this.reqRaw;
    return raw && !req.hopByHop && !this.headersChanged ? withExtra(raw, raw.length, extra) : rebuiltRequest(req, extra);
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
      const extra = connectionTail(this.keepClient, req.version);
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
      const head = rsp.hopByHop ? rebuiltResponse(rsp, extra) : withExtra(buf, end, extra);
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
    if (
      !this.rspStarted &&
      !this.rsp &&
      (!this.rspBuf || this.rspBuf.length === 0) &&
      reused &&
      this.reqDone &&
      this.bytesIn === this.req!.headBytes
    ) {
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
    // closed without a byte of answer: tried again when retry-on says so
    if (!this.rspStarted && !this.rsp && (!this.rspBuf || this.rspBuf.length === 0) && this.retryAfterServer('empty-response')) return;
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
    if (!this.rsp && (!this.rspBuf || this.rspBuf.length === 0) && this.retryAfterServer('response-timeout')) return;
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
    this.req = this.rsp = null;
    this.reqRaw = this.headOut = this.pendingHead = this.rspBuf = null;
    this.rspTracker = this.reqTracker = null;
    this.srv = null;
    this.be = null;
    this.headersChanged = this.counted = false;
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
      s.release();
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
    this.fe.c.intercepted++;
    if (kind !== 'prom' && !statsAuthorized(owner.stats, this.req!)) {
      this.local(statsUnauthorized(owner.stats), owner.name, name);
      return;
    }
    this.eng.link.render(kind, owner.name, this.req!.uri).then(
      (r) => this.local(r, owner.name, name),
      () =>
        this.local({ status: 500, headers: [['content-type', 'text/plain']], body: Buffer.from('stats unavailable\n') }, owner.name, name),
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
    // a request body we do not read would be taken for the next request: close after answering
    if (req.chunked || req.contentLength > 0) this.keepClient = false;
    const out = localAnswer(r, req, this.keepClient);
    this.bytesOut = out.length;
    this.c.write(out);
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
      accountRequest(s.c, now, this.bytesIn, this.bytesOut, this.tw, this.tc, this.tr, now - this.t0);
    }
    if (this.be && status > 0) {
      if (this.srv && this.counted) statusClass(this.be.c, status);
      accountRequest(this.be.c, now, this.bytesIn, this.bytesOut, this.tw, this.tc, this.tr, now - this.t0);
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
      clientIp: this.src,
      clientPort: this.srcPort,
      start: this.t0,
      frontend: fe.name,
      backend: this.beName || fe.name,
      server: this.srvName,
      TR: this.tHead,
      Tw: this.tw,
      Tc: this.tc,
      Tr: this.tr,
      Ta: now - this.t0,
      status: this.status,
      bytes: this.bytesOut,
      term: this.term,
      actconn: this.eng.actconn,
      feconn: this.fe.cur,
      beconn: bc,
      srvconn: sc,
      retries: this.retries,
      redispatched: this.redispatched,
      srvQueue: 0,
      backQueue: this.bq,
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
    this.be?.leave(this); // a request that was waiting for a server
    this.headDl.stop();
    this.srvDl.stop();
    this.dropServer();
    this.release(true);
    this.eng.sessionEnded(this);
  }
}
