// An HTTP session: the client side (http-client-side.ts) and the server side of a client connection in mode http.
// This file is the server side of each request: its route (http-route.ts), a server or the queue and the tries
// (connect.ts), the request head and body sent (http-heads.ts, body.ts), the response read and sent back with its
// body, or an Upgrade tunnel; the server's events in each phase; retry-on; the server connection kept for the next
// request or closed.
import { findHeadEnd, MAX_HEAD, parseResponseHead, type RequestHead, type ResponseHead } from './http.ts';
import { connectionTail, rebuiltResponse, requestHeadFor, withExtra } from './http-heads.ts';
import { clock, own } from './reads.ts';
import { send } from './writes.ts';
import type { Server } from './balance.ts';
import type { ConnOwner, ServerConn } from './serverconn.ts';
import { BodyForwarder } from './body.ts';
import type { NoServer } from './connect.ts';
import { route } from './http-route.ts';
import { HttpClientSide, Phase } from './http-client-side.ts';
import { requestCookie, responseCookie } from './persistence.ts';

export class HttpSession extends HttpClientSide implements ConnOwner {
  // the head as sent to the server (kept for a retry, so the client's bytes need no copy of their own)
  private headOut: Buffer | null = null;
  private headKeep = false;
  /** http-request rules changed the request's headers: the head is rebuilt */
  private changed = { headers: false };
  private rspBody = new BodyForwarder();
  private rspStarted = false;
  private keepServer = false;
  private now = 0; // the time of the server read being handled
  /** the server the request's persistence cookie named, when it may take it */
  private cookieSrv: Server | null = null;

  protected override resetServerSide(): void {
    this.headOut = null;
    this.changed.headers = false;
    this.rspBody.start('none');
    this.cookieSrv = null;
  }

  protected override startRequest(req: RequestHead): void {
    const now = clock();
    this.req = req;
    this.log.tHead = now - this.log.t0;
    this.fe.c.req_tot++;
    this.fe.reqRate.hit(now);
    this.keepClient = req.keepAlive && this.fe.cfg.connMode !== 'close' && !this.stopping;
    this.firstReq = false;
    const r = route(req, this.fe.cfg, (name) => this.host.backend(name), this, this.changed);
    if (r.to === 'answer') {
      this.local(r.answer, r.owner, r.server);
      return;
    }
    if (r.to === 'stats') {
      this.serveStats(r.kind, r.owner, r.server);
      return;
    }
    if (r.to === 'nowhere') {
      this.log.beName = this.fe.cfg.name;
      this.localError(503, 'SC', null);
      return;
    }
    const be = r.be;
    this.be = be;
    this.log.beName = be.cfg.name;
    this.to = be.timeoutsFor(this.fe.cfg);
    be.c.req_tot++;
    be.reqRate.hit(now);
    if (req.chunked) this.reqBody.start('chunked');
    else this.reqBody.start('cl', Math.max(req.contentLength, 0));
    this.phase = Phase.Connecting;
    this.cookieSrv = be.cfg.cookie ? requestCookie(be.cfg.cookie, be.servers, req, this.changed).server : null;
    this.link.start(be, this.to, be.cfg.retryOn.includes('conn-failure'), this.cookieSrv);
  }

  /** In the backend's queue. */
  override waiting(): void {
    this.phase = Phase.Queued;
  }

  /** A server with a slot for this request: a pooled connection to it, or a new one. */
  override assigned(s: Server): void {
    const be = this.be!;
    this.log.srvName = s.cfg.name;
    be.c.stot++;
    be.sessRate.hit(clock());
    this.phase = Phase.Connecting;
    const idle =
      this.fe.cfg.connMode === 'keep-alive' && be.cfg.connMode === 'keep-alive' && this.reqDone && !this.req!.upgrade
        ? this.host.takeIdle(s)
        : null;
    if (idle) this.link.reuse(s, idle);
    else this.link.connect(s);
  }

  /** No server for the request: a 503. */
  override failed(why: NoServer): void {
    if (why === 'none') this.log.srvName = '<NOSRV>';
    if (why === 'connect') this.link.tc = clock() - this.link.tConn;
    this.localError(503, why === 'queue' ? 'sQ' : 'SC', null);
  }

  /**
   * retry-on empty-response or response-timeout: the request, whole and without a body (the head as
   * sent is kept), is tried again: on another server when redispatch is due, else on this one at once.
   * False when it cannot be (no retry left, not asked for, a body already sent).
   */
  protected retryAfterServer(why: 'empty-response' | 'response-timeout'): boolean {
    const s = this.srv!;
    if (!this.be!.cfg.retryOn.includes(why) || this.link.tries.left <= 0 || !this.reqDone || this.log.bytesIn !== this.req!.headBytes)
      return false;
    this.log.bytesIn = 0;
    this.phase = Phase.Connecting;
    this.link.retry(s);
    return true;
  }

  override connected(sc: ServerConn): void {
    if (this.phase !== Phase.Connecting) {
      sc.sock.destroy();
      return;
    }
    const now = clock();
    this.sc = sc;
    sc.owner = this;
    // timeout server: a deadline moved by the server's activity (a socket timeout would re-arm a timer per read)
    if (sc.timeoutSet !== 0) {
      sc.sock.setTimeout(0);
      sc.timeoutSet = 0;
    }
    this.srvDl.set(now, this.to.server);
    this.rsp = null;
    this.rspBuf = null;
    this.rspStarted = false;
    this.rspBody.start('none');
    const head = this.requestHead();
    this.log.tSent = now;
    this.log.bytesIn += this.req!.headBytes;
    this.phase = Phase.SendBody;
    send(sc.sock, head);
    if (this.reqDone) {
      this.phase = Phase.Response;
      return;
    }
    const pending = this.buf;
    this.buf = null;
    if (pending && pending.length) this.forwardReqBody(pending);
    if (this.c.isPaused()) this.c.resume();
    if (this.phase === Phase.SendBody && this.to.client > 0) {
      this.c.setTimeout(this.to.client);
      this.clientTimeoutSet = true;
    }
  }

  /** The request head for the server, built once (a retry sends the same bytes). */
  protected requestHead(): Buffer {
    if (this.headOut) {
      this.keepServer = this.headKeep;
      return this.headOut;
    }
    const { head, keepServer } = requestHeadFor(this.req!, this.reqRaw, this.changed.headers, this.fe.cfg, this.be!.cfg, this.src);
    this.keepServer = keepServer;
    this.headOut = head;
    this.headKeep = keepServer;
    this.reqRaw = null;
    return head;
  }

  protected override forwardReqBody(d: Buffer): void {
    if (!this.sc) return;
    let n: number;
    try {
      n = this.reqBody.forward(d, this.sc.sock, this.c);
    } catch {
      this.fe.c.ereq++;
      if (this.rspStarted) this.abortBoth('PD', 400);
      else {
        this.dropServer();
        this.localError(400, 'PD', null);
      }
      return;
    }
    this.log.bytesIn += n;
    if (this.srvDl.at) this.srvDl.set(clock(), this.to.server);
    if (n < d.length) this.buf = this.buf && this.buf.length ? Buffer.concat([d.subarray(n), this.buf]) : d.subarray(n);
    if (this.reqDone) {
      this.c.setTimeout(0);
      this.clientTimeoutSet = false;
      if (this.phase === Phase.SendBody) this.phase = Phase.Response;
      if (this.buf && this.buf.length) this.c.pause();
    }
  }

  onSrvDrain(): void {
    if ((this.phase === Phase.SendBody || this.phase === Phase.Tunnel) && this.c.isPaused()) this.c.resume();
  }

  onSrvData(d: Buffer): void {
    if (this.phase === Phase.Tunnel) {
      this.log.bytesOut += d.length;
      if (!this.c.write(own(d))) this.sc!.sock.pause();
      return;
    }
    if (this.phase !== Phase.Response && this.phase !== Phase.SendBody) return;
    const now = clock();
    this.srvDl.set(now, this.to.server);
    if (!this.rsp) {
      this.now = now;
      this.rspBuf = this.rspBuf && this.rspBuf.length ? Buffer.concat([this.rspBuf, d]) : d;
      this.tryResponseHead();
    } else this.forwardRspBody(d);
    this.keepBytes();
  }

  protected tryResponseHead(): void {
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
        this.log.bytesOut += head.length;
        this.c.write(own(head));
        this.rspBuf = buf.subarray(end);
        if (this.rspBuf.length === 0) return;
        continue;
      }
      this.rsp = rsp;
      this.rspBuf = null;
      this.srv!.c.req_tot++; // as HAProxy: a server's requests are the ones it answered
      this.log.tr = this.now - this.log.tSent;
      this.log.status = rsp.status;
      if (rsp.status === 101) this.startTunnel(buf, end);
      else this.startResponse(rsp, buf, end);
      return;
    }
  }

  /** A 101 answer to an Upgrade request: the head goes to the client, then bytes flow both ways as they come. */
  protected startTunnel(buf: Buffer, end: number): void {
    const rest = buf.subarray(end);
    if (!this.req!.upgrade) {
      this.badResponse();
      return;
    }
    this.rspStarted = true;
    const head = buf.subarray(0, end);
    this.log.bytesOut += head.length;
    this.c.write(own(head));
    this.phase = Phase.Tunnel;
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
      this.log.bytesOut += rest.length;
      this.c.write(own(rest));
    }
  }

  /** A final answer's head (ending at `end` in `buf`): its body's framing, then the head to the client. */
  protected startResponse(rsp: ResponseHead, buf: Buffer, end: number): void {
    this.host.observe(this.srv!, !(rsp.status >= 500 && rsp.status !== 501 && rsp.status !== 505), 'layer7');
    const req = this.req!;
    const body = this.rspBody;
    if (req.method === 'HEAD' || rsp.status === 204 || rsp.status === 304) body.start('none');
    else if (rsp.chunked) body.start('chunked');
    else if (rsp.contentLength >= 0) body.start('cl', rsp.contentLength);
    else body.start('close');
    if (body.framing === 'close' || !rsp.keepAlive) this.keepServer = false;
    if (body.framing === 'close' || !this.reqDone) this.keepClient = false;
    let extra = connectionTail(this.keepClient, req.version);
    let rebuild = rsp.hopByHop;
    const ck = this.be!.cfg.cookie;
    if (ck) {
      // persistence: the server's Set-Cookie of the cookie's name, and ours; direct: it went where its cookie said
      const add = { lines: '' };
      const direct = this.cookieSrv === this.srv && !this.link.tries.redispatched;
      if (responseCookie(ck, this.srv!, direct, req.method, rsp, add)) rebuild = true;
      extra = add.lines + extra;
    }
    const restLen = buf.length - end;
    if (!rebuild && body.framing === 'cl' && restLen >= body.left) {
      // the usual case: the whole answer is here; head, our headers and body leave in one buffer, one write
      const hl = end - 2;
      const bodyLen = body.left;
      const out = Buffer.allocUnsafe(hl + extra.length + bodyLen);
      buf.copy(out, 0, 0, hl);
      out.write(extra, hl, 'latin1');
      if (bodyLen) buf.copy(out, hl + extra.length, end, end + bodyLen);
      this.rspStarted = true;
      body.left = 0;
      this.log.bytesOut += out.length;
      send(this.c, out);
      this.responseDone(restLen > bodyLen ? buf.subarray(end + bodyLen) : null);
      return;
    }
    const rest = buf.subarray(end);
    const head = rebuild ? rebuiltResponse(rsp, extra) : withExtra(buf, end, extra);
    this.rspStarted = true;
    this.log.bytesOut += head.length;
    if (body.done || rest.length === 0) {
      send(this.c, head);
      if (body.done) this.responseDone(rest);
      return;
    }
    // the head leaves with the first body bytes, in one write
    body.head = head;
    this.forwardRspBody(rest);
  }

  protected forwardRspBody(d: Buffer): void {
    const body = this.rspBody;
    let n: number;
    try {
      n = body.forward(d, this.c, this.sc!.sock);
    } catch {
      this.srv!.c.eresp++;
      this.be!.c.eresp++;
      this.abortBoth('SD', 502);
      return;
    }
    this.log.bytesOut += n;
    if (body.done) this.responseDone(d.subarray(n));
  }

  protected badResponse(): void {
    this.srv!.c.eresp++;
    this.be!.c.eresp++;
    this.host.observe(this.srv!, false, 'layer7');
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

  protected onSrvGone(_err: boolean): void {
    if (!this.sc) return;
    if (this.phase === Phase.Tunnel) {
      this.dropServer();
      this.finishLog();
      this.c.end();
      this.phase = Phase.Closed;
      return;
    }
    if (this.phase !== Phase.Response && this.phase !== Phase.SendBody) return;
    if (this.rsp && this.rspBody.framing === 'close') {
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
      this.log.bytesIn === this.req!.headBytes
    ) {
      // a pooled connection the server had closed: try again on a fresh one
      this.log.bytesIn = 0;
      this.phase = Phase.Connecting;
      this.link.connect(this.srv!);
      return;
    }
    // closed without a byte of answer: tried again when retry-on says so
    if (!this.rspStarted && !this.rsp && (!this.rspBuf || this.rspBuf.length === 0) && this.retryAfterServer('empty-response')) return;
    this.srv!.c.srv_abrt++;
    this.be!.c.srv_abrt++;
    if (this.rspStarted) {
      this.srv!.c.eresp++;
      this.be!.c.eresp++;
      this.abortBoth('SD', this.log.status);
    } else {
      this.srv!.c.eresp++;
      this.be!.c.eresp++;
      this.host.observe(this.srv!, false, 'layer7');
      this.localError(502, 'SH', null);
    }
  }

  override onSrvTimeout(): void {
    if (this.phase === Phase.Tunnel) {
      this.log.term = 'sD';
      this.abortBoth('sD', this.log.status);
      return;
    }
    if (this.rspStarted) {
      this.abortBoth('sD', this.log.status);
      return;
    }
    this.keepServer = false;
    this.dropServer();
    if (!this.rsp && (!this.rspBuf || this.rspBuf.length === 0) && this.retryAfterServer('response-timeout')) return;
    this.srv!.c.eresp++;
    this.be!.c.eresp++;
    this.host.observe(this.srv!, false, 'layer7');
    this.localError(504, 'sH', null);
  }

  protected responseDone(rest: Buffer | null): void {
    this.srvDl.clear();
    const sc = this.sc;
    if (rest && rest.length && sc) {
      // bytes after the response: the server misbehaves, do not reuse the connection
      this.keepServer = false;
    }
    this.finishLog();
    if (sc) {
      this.sc = null;
      if (this.keepServer && this.reqDone) this.host.giveIdle(sc, this.srv!);
      else {
        sc.owner = null;
        sc.sock.destroy();
      }
    }
    this.link.stop();
    this.nextRequest();
  }
}
