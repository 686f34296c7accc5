// The client side of an HTTP session (http-session.ts adds the server side): one client connection in mode http,
// its request heads read one after the other (keep-alive, pipelining), the client's events (a close, a half-close,
// a timeout) in each phase of the request in flight, the proxy's own answers (errors, the stats page, redirects,
// monitor-uri), the end of each request (its counters and log line: request-log.ts) and of the connection.
import type net from 'node:net';
import type { ProxyConfig } from './config.ts';
import { HttpError, MAX_HEAD, errorResponse, findHeadEnd, parseRequestHead, type RequestHead, type ResponseHead } from './http.ts';
import { localAnswer, statsAuthorized, statsUnauthorized } from './http-heads.ts';
import { acceptReads, clock, dataReads, inArena, own } from './reads.ts';
import { statusClass } from './counters.ts';
import { Deadline } from './deadline.ts';
import type { Backend, Server } from './balance.ts';
import type { ServerConn } from './serverconn.ts';
import type { Frontend } from './frontend.ts';
import type { Session, SessionHost } from './session-host.ts';
import type { LocalResponse, Timeouts } from './types.ts';
import { BodyForwarder } from './body.ts';
import { ServerLink, type LinkOwner, type NoServer } from './connect.ts';
import { RequestLog } from './request-log.ts';

/** Where the session is with its request in flight. */
export const enum Phase {
  /** reading a request head, or idle between two requests */
  ReadHead,
  /** in the backend's queue, waiting for a server with a free slot */
  Queued,
  /** connecting to the server, or waiting to try again */
  Connecting,
  /** the head sent, the request body going to the server */
  SendBody,
  /** the request sent: the response awaited, then forwarded */
  Response,
  /** an Upgrade tunnel, after a 101 */
  Tunnel,
  /** the proxy answers itself (stats, redirect, monitor-uri) */
  LocalAnswer,
  Closed,
}

export abstract class HttpClientSide implements LinkOwner, Session {
  src: string;
  srcPort: number;
  protected phase = Phase.ReadHead;
  /** the client's bytes not used yet: a head being read, a body not yet forwardable, a pipelined request */
  protected buf: Buffer | null = null;
  protected headDl = new Deadline(() => this.onHeadTimeout());
  /** timeout server: a deadline moved by the server's activity (a socket timeout would re-arm a timer per read) */
  protected srvDl = new Deadline(() => {
    if ((this.phase === Phase.Response || this.phase === Phase.SendBody) && this.sc) this.onSrvTimeout();
  });
  protected clientTimeoutSet = false;
  protected firstReq = true;
  protected sawBytes = false;
  protected stopping = false;
  // the request in flight
  protected req: RequestHead | null = null;
  protected reqRaw: Buffer | null = null;
  protected reqBody = new BodyForwarder();
  protected be: Backend | null = null;
  /** the server of the request in flight, its slot, its queue and its tries */
  protected link: ServerLink;
  protected sc: ServerConn | null = null;
  protected rsp: ResponseHead | null = null;
  protected rspBuf: Buffer | null = null;
  protected keepClient = false;
  protected log = new RequestLog();
  protected to: Timeouts;
  protected linger: NodeJS.Timeout | null = null;

  /** A request head was read (`this.req`, `this.reqRaw`): route it, and send it on. */
  protected abstract startRequest(req: RequestHead): void;
  /** Body bytes from the client, for the server. */
  protected abstract forwardReqBody(d: Buffer): void;
  /** `timeout server` expired. */
  abstract onSrvTimeout(): void;
  /** The server side's own state, cleared for the next request. */
  protected abstract resetServerSide(): void;
  abstract waiting(): void;
  abstract assigned(s: Server): void;
  abstract failed(why: NoServer): void;
  abstract connected(sc: ServerConn): void;

  constructor(
    protected host: SessionHost,
    public fe: Frontend,
    protected c: net.Socket,
    /** the connection came in over TLS (ssl_fc) */
    readonly tls: boolean,
  ) {
    this.src = c.remoteAddress ?? '';
    if (this.src.startsWith('::ffff:')) this.src = this.src.slice(7);
    this.srcPort = c.remotePort ?? 0;
    this.to = fe.timeouts;
    this.link = new ServerLink(this, host);
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
    this.log.t0 = clock();
    this.headDl.set(this.log.t0, this.to.httpRequest);
  }

  pathForLb(): string {
    return this.req?.path ?? '/';
  }

  protected get srv(): Server | null {
    return this.link.srv;
  }

  protected get reqDone(): boolean {
    return this.reqBody.done;
  }

  protected onHeadTimeout(): void {
    if (this.phase !== Phase.ReadHead) return;
    if (!this.buf || this.buf.length === 0) {
      // idle keep-alive connection, or a connection that never sent anything
      if (this.firstReq && !this.fe.cfg.dontlognull) {
        this.log.status = 408;
        this.log.term = 'cR';
        this.logLine('<BADREQ>');
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

  protected onClientData(d: Buffer): void {
    this.sawBytes = true;
    switch (this.phase) {
      case Phase.ReadHead:
        if (!this.buf || this.buf.length === 0) {
          this.log.t0 = clock();
          if (!this.firstReq) this.headDl.set(this.log.t0, this.to.httpRequest);
        }
        this.buf = this.buf && this.buf.length ? Buffer.concat([this.buf, d]) : d;
        this.tryHead();
        return;
      case Phase.SendBody:
        this.forwardReqBody(d);
        return;
      case Phase.Tunnel:
        this.log.bytesIn += d.length;
        if (this.sc && !this.sc.sock.write(own(d))) this.c.pause();
        return;
      case Phase.Closed:
        return;
      default:
        // Queued, Connecting, Response, LocalAnswer: keep the bytes (body not yet forwardable, or a pipelined request)
        this.buf = this.buf && this.buf.length ? Buffer.concat([this.buf, d]) : d;
        if (this.buf.length > MAX_HEAD) this.c.pause();
    }
  }

  protected tryHead(): void {
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

  onClientDrain(): void {
    if (this.sc && this.sc.sock.isPaused()) this.sc.sock.resume();
  }

  protected onClientTimeout(): void {
    if (this.phase === Phase.SendBody) {
      this.abortBoth('cD', 408);
      return;
    }
    if (this.phase === Phase.Tunnel || this.phase === Phase.Response) this.abortBoth('cD', this.log.status);
  }

  protected onClientEnd(): void {
    if (this.phase === Phase.ReadHead) {
      if (this.buf && this.buf.length) {
        this.log.status = 400;
        this.fe.c.cli_abrt++;
        this.log.term = 'CR';
        this.logLine('<BADREQ>');
      } else if (this.firstReq && !this.sawBytes && !this.fe.cfg.dontlognull) {
        this.log.status = 400;
        this.log.term = 'CR';
        this.logLine('<BADREQ>');
      }
      this.close();
      return;
    }
    if (this.phase === Phase.Tunnel) {
      this.sc?.sock.end();
      return;
    }
    if ((this.phase === Phase.Queued || this.phase === Phase.Connecting) && this.reqDone && !this.be?.cfg.abortonclose) {
      // a half-closed client still gets its answer (without abortonclose)
      this.keepClient = false;
      return;
    }
    if (this.phase === Phase.SendBody || this.phase === Phase.Queued || this.phase === Phase.Connecting) {
      this.fe.c.cli_abrt++;
      if (this.srv) this.srv.c.cli_abrt++;
      if (this.be) this.be.c.cli_abrt++;
      this.abortBoth(this.phase === Phase.Queued ? 'CQ' : this.phase === Phase.Connecting ? 'CC' : 'CD', this.log.status || -1);
      return;
    }
    // Wait / Local: the client half-closed after its request; finish the response, then close
    this.keepClient = false;
  }

  protected onClientClose(): void {
    if (this.linger) clearTimeout(this.linger);
    this.linger = null;
    if (this.phase === Phase.Closed) {
      this.cleanup();
      return;
    }
    if (this.phase === Phase.ReadHead || this.phase === Phase.LocalAnswer) {
      this.phase = Phase.Closed;
      this.cleanup();
      return;
    }
    this.fe.c.cli_abrt++;
    if (this.srv) this.srv.c.cli_abrt++;
    if (this.be) this.be.c.cli_abrt++;
    this.abortBoth(this.phase === Phase.Queued ? 'CQ' : this.phase === Phase.Connecting ? 'CC' : 'CD', this.log.status || -1);
  }

  protected nextRequest(): void {
    this.resetRequest();
    if (!this.keepClient || this.stopping) {
      this.close();
      return;
    }
    this.phase = Phase.ReadHead;
    if (this.clientTimeoutSet) {
      this.c.setTimeout(0);
      this.clientTimeoutSet = false;
    }
    const now = clock();
    this.headDl.set(now, this.to.httpKeepAlive);
    if (this.c.isPaused()) this.c.resume();
    if (this.buf && this.buf.length) {
      this.log.t0 = now;
      this.headDl.set(now, this.to.httpRequest);
      this.tryHead();
    }
  }

  protected resetRequest(): void {
    this.req = this.rsp = null;
    this.reqRaw = this.rspBuf = null;
    this.reqBody.start('none');
    this.be = null;
    this.resetServerSide();
    this.log.reset();
    this.link.reset();
    this.to = this.fe.timeouts;
  }

  protected dropServer(): void {
    this.srvDl.clear();
    const sc = this.sc;
    if (!sc) return;
    this.sc = null;
    sc.owner = null;
    sc.sock.destroy();
  }

  protected serveStats(kind: 'html' | 'csv' | 'prom', owner: ProxyConfig, name: string): void {
    this.phase = Phase.LocalAnswer;
    this.log.srvName = name;
    this.log.beName = owner.name;
    this.fe.c.intercepted++;
    if (kind !== 'prom' && !statsAuthorized(owner.stats, this.req!)) {
      this.local(statsUnauthorized(owner.stats), owner.name, name);
      return;
    }
    this.host.render(kind, owner.name, this.req!.uri).then(
      (r) => this.local(r, owner.name, name),
      () =>
        this.local({ status: 500, headers: [['content-type', 'text/plain']], body: Buffer.from('stats unavailable\n') }, owner.name, name),
    );
  }

  protected local(r: LocalResponse, beName: string, srvName: string): void {
    if (this.phase === Phase.Closed) return;
    this.phase = Phase.LocalAnswer;
    this.log.beName = beName;
    this.log.srvName = srvName;
    this.log.status = r.status;
    this.log.term = 'LR';
    this.link.tw = this.link.tc = this.log.tr = 0;
    const req = this.req!;
    // a request body we do not read would be taken for the next request: close after answering
    if (req.chunked || req.contentLength > 0) this.keepClient = false;
    const out = localAnswer(r, req, this.keepClient);
    this.log.bytesOut = out.length;
    this.c.write(out);
    statusClass(this.fe.c, r.status);
    this.finishLog();
    this.nextRequest();
  }

  /** Answers with a generated error and closes the client connection. */
  protected localError(status: number, term: string, reqLine: string | null): void {
    if (this.phase === Phase.Closed) return;
    this.log.status = status;
    this.log.term = term;
    // errorfile: the backend's, else the frontend's
    const custom = this.be?.cfg.errorfiles[status] ?? this.fe.cfg.errorfiles[status];
    const r = custom !== undefined ? Buffer.from(custom, 'latin1') : errorResponse(status);
    this.log.bytesOut = r.length;
    this.c.write(r);
    // (a request that had a server slot is counted for the backend by finishLog)
    if (this.be && !this.link.holding) statusClass(this.be.c, status);
    this.keepClient = false;
    this.dropServer();
    if (reqLine) this.logLine(reqLine);
    else this.finishLog();
    this.link.stop();
    this.close();
  }

  protected abortBoth(term: string, status: number): void {
    if (this.phase === Phase.Closed) return;
    this.log.term = term;
    this.log.status = status;
    this.keepClient = false;
    this.dropServer();
    this.finishLog();
    this.link.stop();
    this.phase = Phase.Closed;
    this.c.destroy();
    this.cleanup();
  }

  /** The end of a request: its counters, and its log line. */
  protected finishLog(): void {
    if (!this.req) return;
    const counted = this.link.holding ? this.srv : null;
    // only answers that came from the server count in its status classes (not our 503/504)
    this.log.account(this.fe, this.be, counted, this.rsp !== null, this.link);
    const r = this.req;
    const fe = this.fe.cfg;
    if (fe.logs.length && (fe.httplog || fe.tcplog)) this.logLine(`${r.method} ${r.uri} HTTP/1.${r.version === 11 ? 1 : 0}`);
    this.req = null;
  }

  protected logLine(line: string): void {
    this.log.send(this.host, this.fe, this.be, this.srv, this.link, line, this.src, this.srcPort);
  }

  stopWhenIdle(): void {
    this.stopping = true;
    this.keepClient = false;
    if (this.phase === Phase.ReadHead && (!this.buf || this.buf.length === 0)) this.close();
  }

  abort(): void {
    this.abortBoth(this.log.term === '--' ? 'PD' : this.log.term, this.log.status);
    this.c.destroy();
  }

  protected close(): void {
    this.headDl.stop();
    this.srvDl.stop();
    if (this.phase === Phase.Closed) return;
    this.phase = Phase.Closed;
    this.c.end();
    // do not wait forever for a client that does not read its last response (the timer goes when the socket
    // closes: a pending timer would keep the socket in memory, and closed sockets would pile up in close mode)
    this.linger = setTimeout(() => this.c.destroy(), 5000);
    this.linger.unref();
    this.cleanup();
  }

  protected cleanup(): void {
    this.headDl.stop();
    this.srvDl.stop();
    this.dropServer();
    this.link.stop();
    this.host.sessionEnded(this);
  }
}
