// The record of one HTTP request: its times (HAProxy's TR, Tw, Tc, Tr, Ta), bytes, status, termination state and
// where it went; at its end, the counters of its frontend, backend and server, and its httplog (or tcplog) line.
import type { ProxyConfig } from './config.ts';
import type { Backend, Server } from './balance.ts';
import type { Frontend } from './frontend.ts';
import type { ServerLink } from './connect.ts';
import type { SessionHost } from './session-host.ts';
import { accountRequest, statusClass } from './counters.ts';
import { LOG_INFO, logEscape, tcpLogLine } from './log.ts';
import { clock } from './reads.ts';

export class RequestLog {
  /** the request's first byte */
  t0 = 0;
  /** TR: the time to receive the whole head; Tr: to get the server's head (Tw and Tc: the ServerLink's) */
  tHead = -1;
  tr = -1;
  /** when the head went to the server */
  tSent = 0;
  /** bytes from the client (head and body), to the client */
  bytesIn = 0;
  bytesOut = 0;
  status = 0;
  /** the termination state: two letters, '--' for a normal end */
  term = '--';
  srvName = '<NOSRV>';
  beName = '';

  /** Ready for the next request of the connection. */
  reset(): void {
    this.tHead = this.tr = -1;
    this.bytesIn = this.bytesOut = 0;
    this.status = 0;
    this.term = '--';
    this.srvName = '<NOSRV>';
    this.beName = '';
  }

  /**
   * Adds the finished request to the counters: to its server's when it held a slot there (`srv`; its status
   * classes count answers that came from the server, `fromServer`), its backend's, its frontend's.
   */
  account(fe: Frontend, be: Backend | null, srv: Server | null, fromServer: boolean, link: ServerLink): void {
    const status = this.status;
    const { tw, tc } = link;
    const now = clock();
    if (srv) {
      if (fromServer) statusClass(srv.c, status);
      accountRequest(srv.c, now, this.bytesIn, this.bytesOut, tw, tc, this.tr, now - this.t0);
    }
    if (be && status > 0) {
      if (srv) statusClass(be.c, status);
      accountRequest(be.c, now, this.bytesIn, this.bytesOut, tw, tc, this.tr, now - this.t0);
    }
    if (this.term !== 'LR') statusClass(fe.c, status);
    fe.c.bin += this.bytesIn;
    fe.c.bout += this.bytesOut;
  }

  /** The request's log line (`line`: its request line, or <BADREQ>), when the frontend logs. */
  send(
    host: SessionHost,
    fe: Frontend,
    be: Backend | null,
    srv: Server | null,
    link: ServerLink,
    line: string,
    src: string,
    srcPort: number,
  ): void {
    const cfg: ProxyConfig = fe.cfg;
    if (!cfg.logs.length || (!cfg.httplog && !cfg.tcplog)) return;
    const now = clock();
    let bc = 0;
    if (be) for (let i = 0; i < be.servers.length; i++) bc += be.servers[i].cur;
    const fields = {
      clientIp: src,
      clientPort: srcPort,
      start: this.t0,
      frontend: cfg.name,
      backend: this.beName || cfg.name,
      server: this.srvName,
      TR: this.tHead,
      Tw: link.tw,
      Tc: link.tc,
      Tr: this.tr,
      Ta: now - this.t0,
      status: this.status,
      bytes: this.bytesOut,
      term: this.term,
      actconn: host.actconn,
      feconn: fe.cur,
      beconn: bc,
      srvconn: srv ? srv.cur : 0,
      retries: link.tries.made,
      redispatched: link.tries.redispatched,
      srvQueue: 0,
      backQueue: link.bq,
      requestLine: logEscape(line),
    };
    if (cfg.httplog) host.logger.sendHttp(cfg.logs, LOG_INFO, fields);
    else host.logger.send(cfg.logs, LOG_INFO, tcpLogLine({ ...fields, Tt: now - this.t0 }));
  }
}
