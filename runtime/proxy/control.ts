// The control plane: health checks and server states (one authority for every worker), the runtime
// API on the stats socket, and the statistics rendered from the counters of every worker.
import net from 'node:net';
import { hostname } from 'node:os';
import { chmodSync, unlinkSync } from 'node:fs';
import type { ParsedConfig, ProxyConfig, ServerConfig } from './config.ts';
import type { AdminState, HealthUpdate, LocalResponse, Snapshot, StatsKind } from './types.ts';
import { Logger, LOG_ALERT, LOG_NOTICE } from './log.ts';
import { renderCsv, renderHtml, renderPrometheus, checkDescription, type ServerHealth, type StatsView } from './stats.ts';

/** The engines the control plane drives: the local one, or the workers of a cluster. */
export interface Plane {
  applyConfig(cfg: ParsedConfig): Promise<void>;
  applyHealth(list: HealthUpdate[]): void;
  snapshots(): Promise<Snapshot[]>;
}

interface Checker {
  key: string;
  srv: ServerConfig;
  px: ProxyConfig;
  timer: NodeJS.Timeout | null;
  /** When the timer fires (Date.now() scale). */
  due: number;
  running: boolean;
  stopped: boolean;
}

export class Control {
  health = new Map<string, ServerHealth>();
  private checkers = new Map<string, Checker>();
  private obsErrors = new Map<string, number>();
  private sockets: net.Server[] = [];
  private logger: Logger;
  started = Date.now();

  constructor(
    public cfg: ParsedConfig,
    private plane: Plane,
  ) {
    this.logger = new Logger(cfg.global.logTag);
    this.syncServers(cfg, true);
  }

  /** Creates or keeps the health entry of every server, starts and stops checkers. */
  private syncServers(cfg: ParsedConfig, initial: boolean): void {
    const keep = new Set<string>();
    for (const p of cfg.proxies) {
      if (p.kind === 'frontend') continue;
      for (const s of p.servers) {
        const key = `${p.name}/${s.name}`;
        keep.add(key);
        let h = this.health.get(key);
        if (!h) {
          h = {
            key,
            up: true,
            admin: s.disabled ? 'maint' : 'ready',
            since: 0,
            checked: s.check,
            health: s.rise,
            checkStatus: s.check ? 'INI' : '',
            checkCode: null,
            checkDuration: null,
            checkDesc: '',
            chkfail: 0,
            chkdown: 0,
            lastchg: Date.now(),
            downtime: 0,
            downSince: 0,
            lastChk: '',
          };
          this.health.set(key, h);
        } else {
          // carried over from the previous configuration; the admin state follows a changed 'disabled'
          h.checked = s.check;
          if (!s.check && !h.up) {
            h.up = true;
            h.health = s.rise;
          }
          if (h.health > s.rise + s.fall - 1) h.health = s.rise + s.fall - 1;
        }
        const old = this.checkers.get(key);
        if (old) {
          old.stopped = true;
          if (old.timer) clearTimeout(old.timer);
          this.checkers.delete(key);
        }
        if (s.check) {
          const c: Checker = { key, srv: s, px: p, timer: null, due: 0, running: false, stopped: false };
          this.checkers.set(key, c);
          // spread the first checks over one interval, as HAProxy does
          this.schedule(c, initial || !old ? Math.floor(Math.random() * Math.min(s.inter, 1000)) : s.inter);
        }
      }
    }
    for (const k of [...this.health.keys()]) if (!keep.has(k)) this.health.delete(k);
  }

  start(): void {
    for (const s of this.cfg.global.statsSockets) this.openSocket(s.path, s.mode, s.level);
    this.pushAll();
  }

  async reload(cfg: ParsedConfig): Promise<void> {
    await this.plane.applyConfig(cfg);
    const oldSockets = this.cfg.global.statsSockets.map((s) => `${s.path}|${s.mode}|${s.level}`).join(',');
    this.cfg = cfg;
    this.syncServers(cfg, false);
    this.logger.close();
    this.logger = new Logger(cfg.global.logTag);
    if (cfg.global.statsSockets.map((s) => `${s.path}|${s.mode}|${s.level}`).join(',') !== oldSockets) {
      this.closeSockets();
      for (const s of cfg.global.statsSockets) this.openSocket(s.path, s.mode, s.level);
    }
    this.pushAll();
  }

  stop(): void {
    for (const c of this.checkers.values()) {
      c.stopped = true;
      if (c.timer) clearTimeout(c.timer);
    }
    this.checkers.clear();
    this.closeSockets();
    this.logger.close();
  }

  private closeSockets(): void {
    for (const s of this.sockets) s.close();
    this.sockets = [];
  }

  private update(h: ServerHealth): HealthUpdate {
    return { key: h.key, up: h.up, admin: h.admin, since: h.since };
  }

  pushAll(): void {
    this.plane.applyHealth([...this.health.values()].map((h) => this.update(h)));
  }

  healthUpdates(): HealthUpdate[] {
    return [...this.health.values()].map((h) => this.update(h));
  }

  private schedule(c: Checker, ms: number): void {
    if (c.stopped) return;
    if (c.timer) clearTimeout(c.timer);
    c.due = Date.now() + ms;
    c.timer = setTimeout(() => this.runCheck(c), ms);
  }

  /**
   * The next check no later than `ms` from now (on-error): it never postpones one, or errors on
   * real traffic arriving faster than `ms` would keep the check from ever running.
   */
  private bringForward(c: Checker, ms: number): void {
    if (c.running || (c.timer && c.due <= Date.now() + ms)) return;
    this.schedule(c, ms);
  }

  private nextInterval(c: Checker): number {
    const h = this.health.get(c.key)!;
    const s = c.srv;
    const full = s.rise + s.fall - 1;
    if (h.up && h.health >= full) return s.inter;
    if (!h.up && h.health === 0) return s.downinter ?? s.inter;
    return s.fastinter ?? s.inter;
  }

  private runCheck(c: Checker): void {
    if (c.stopped || c.running) return;
    c.running = true;
    const s = c.srv;
    const timeout =
      c.px.timeouts.check !== undefined
        ? Math.min(c.px.timeouts.connect ?? c.px.timeouts.check, c.px.timeouts.check)
        : Math.min(c.px.timeouts.connect ?? s.inter, s.inter);
    const t0 = Date.now();
    const sock = net.connect({ host: s.host, port: s.checkPort ?? s.port });
    let done = false;
    let data = '';
    const finish = (ok: boolean, status: string, code: number | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      c.running = false;
      if (c.stopped) return;
      this.checkResult(c, ok, status, code, Date.now() - t0);
      this.schedule(c, this.nextInterval(c));
    };
    let timer = setTimeout(() => finish(false, 'L4TOUT', null), timeout);
    sock.on('error', (e: NodeJS.ErrnoException) =>
      finish(false, data || connected ? 'L7RSP' : e.code === 'ECONNREFUSED' ? 'L4CON' : 'SOCKERR', null),
    );
    let connected = false;
    sock.on('connect', () => {
      connected = true;
      if (!c.px.httpchk) {
        finish(true, 'L4OK', null);
        return;
      }
      clearTimeout(timer);
      const readTimeout = c.px.timeouts.check ?? s.inter;
      timer = setTimeout(() => finish(false, 'L7TOUT', null), readTimeout);
      const hc = c.px.httpchk;
      let req = `${hc.method} ${hc.uri} ${hc.version}\r\n`;
      if (hc.host) req += `Host: ${hc.host}\r\n`;
      else if (hc.version === 'HTTP/1.1') req += `Host: ${s.host}\r\n`;
      req += 'Connection: close\r\nUser-Agent: hasetup-proxy-check\r\n\r\n';
      sock.write(req);
    });
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      data += d;
      const nl = data.indexOf('\n');
      if (nl < 0 && data.length < 4096) return;
      const line = (nl < 0 ? data : data.slice(0, nl)).replace(/\r$/, '');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(line);
      if (!m) {
        finish(false, 'L7RSP', null);
        return;
      }
      const code = Number(m[1]);
      const ex = c.px.checkExpect;
      if (!ex) {
        finish(code >= 200 && code < 400, code >= 200 && code < 400 ? 'L7OK' : 'L7STS', code);
        return;
      }
      if (ex.kind === 'string') {
        // needs the whole body: wait for the end of the response
        return;
      }
      let ok: boolean;
      if (ex.kind === 'status')
        ok = ex.value.split(',').some((r) => {
          const [a, b] = r.split('-').map(Number);
          return b === undefined ? code === a : code >= a && code <= b;
        });
      else ok = new RegExp(ex.value).test(String(code));
      if (ex.negate) ok = !ok;
      finish(ok, ok ? 'L7OK' : 'L7STS', code);
    });
    sock.on('end', () => {
      const ex = c.px.checkExpect;
      if (c.px.httpchk && ex?.kind === 'string') {
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
        const body = data.slice(data.indexOf('\r\n\r\n') + 4);
        let ok = !!m && body.includes(ex.value);
        if (ex.negate) ok = !ok;
        finish(ok, ok ? 'L7OK' : 'L7RSP', m ? Number(m[1]) : null);
      } else finish(false, connected ? 'L7RSP' : 'L4CON', null);
    });
  }

  private checkResult(c: Checker, ok: boolean, status: string, code: number | null, duration: number): void {
    const h = this.health.get(c.key);
    if (!h) return;
    h.checkStatus = status;
    h.checkCode = code;
    h.checkDuration = duration;
    h.lastChk = status === 'L7STS' && code !== null ? `HTTP status check returned code <${code}>` : checkDescription(status);
    if (ok) this.checkPassed(c.key, c.srv, c.px, status, duration);
    else this.checkFailed(c.key, c.srv, c.px, status, duration);
  }

  private checkPassed(key: string, s: ServerConfig, px: ProxyConfig, status: string, duration: number): void {
    const h = this.health.get(key)!;
    const full = s.rise + s.fall - 1;
    // an UP server is fully healthy again after one good check; a DOWN one needs `rise` of them
    if (h.up) h.health = full;
    else h.health++;
    if (!h.up && h.health >= s.rise) {
      h.up = true;
      h.health = full;
      h.since = Date.now();
      h.lastchg = h.since;
      if (h.downSince) h.downtime += h.since - h.downSince;
      h.downSince = 0;
      this.announce(px, s, true, `${checkDescription(status)}, check duration: ${duration}ms`);
    }
  }

  private checkFailed(key: string, s: ServerConfig, px: ProxyConfig, status: string, duration: number, forceDown = false): void {
    const h = this.health.get(key)!;
    if (h.up) h.chkfail++;
    if (forceDown) h.health = 0;
    else if (h.health > 0) h.health--;
    if (h.up && (h.health < s.rise || forceDown)) {
      h.up = false;
      h.health = 0;
      h.chkdown++;
      h.lastchg = Date.now();
      h.downSince = h.lastchg;
      this.announce(px, s, false, `${checkDescription(status)}${duration >= 0 ? `, check duration: ${duration}ms` : ''}`);
    }
  }

  private announce(px: ProxyConfig, s: ServerConfig, up: boolean, why: string): void {
    let act = 0;
    let bck = 0;
    for (const o of px.servers) {
      const oh = this.health.get(`${px.name}/${o.name}`);
      if (oh && oh.up && oh.admin === 'ready') {
        if (o.backup) bck++;
        else act++;
      }
    }
    const msg = `Server ${px.name}/${s.name} is ${up ? 'UP' : 'DOWN'}, reason: ${why}. ${act} active and ${bck} backup servers ${up ? 'online' : 'left'}. 0 sessions requeued, 0 total in queue.`;
    process.stderr.write(`[WARNING] (${process.pid}) : ${msg}\n`);
    const targets = px.logs.length ? px.logs : this.cfg.global.logs;
    this.logger.send(targets, up ? LOG_NOTICE : LOG_ALERT, msg);
    if (!up && act + bck === 0) {
      const m2 = `backend ${px.name} has no server available!`;
      process.stderr.write(`[ALERT] (${process.pid}) : ${m2}\n`);
      this.logger.send(targets, LOG_ALERT, m2);
    }
    this.plane.applyHealth([this.update(this.health.get(`${px.name}/${s.name}`)!)]);
  }

  /** An 'observe' result reported by an engine. */
  observe(key: string, ok: boolean): void {
    const [b, n] = key.split('/');
    const px = this.cfg.proxies.find((p) => p.name === b && p.kind !== 'frontend');
    const s = px?.servers.find((x) => x.name === n);
    if (!px || !s || !s.observe) return;
    if (ok) {
      this.obsErrors.set(key, 0);
      return;
    }
    const n2 = (this.obsErrors.get(key) ?? 0) + 1;
    this.obsErrors.set(key, n2);
    if (n2 < s.errorLimit) return;
    this.obsErrors.set(key, 0);
    const h = this.health.get(key);
    if (!h) return;
    const c = this.checkers.get(key);
    switch (s.onError) {
      case 'fastinter':
        if (c) this.bringForward(c, s.fastinter ?? s.inter);
        break;
      case 'fail-check':
        this.checkFailed(key, s, px, 'L7STS', -1);
        if (c) this.bringForward(c, s.fastinter ?? s.inter);
        break;
      case 'sudden-death':
        if (h.up) h.health = Math.min(h.health, s.rise);
        this.checkFailed(key, s, px, 'L7STS', -1);
        if (c) this.bringForward(c, s.fastinter ?? s.inter);
        break;
      case 'mark-down':
        this.checkFailed(key, s, px, 'L7STS', -1, true);
        if (c) this.schedule(c, s.downinter ?? s.inter);
        break;
    }
  }

  setAdmin(key: string, admin: AdminState): boolean {
    const h = this.health.get(key);
    if (!h) return false;
    if (h.admin === admin) return true;
    h.admin = admin;
    h.lastchg = Date.now();
    if (admin === 'ready') h.since = Date.now();
    this.plane.applyHealth([this.update(h)]);
    return true;
  }

  private async view(): Promise<StatsView> {
    return { cfg: this.cfg, health: this.health, snaps: await this.plane.snapshots(), started: this.started };
  }

  async render(kind: StatsKind, proxy: string, uri: string): Promise<LocalResponse> {
    const v = await this.view();
    if (kind === 'csv') return { status: 200, headers: [['content-type', 'text/plain']], body: Buffer.from(renderCsv(v)) };
    if (kind === 'prom')
      return { status: 200, headers: [['content-type', 'text/plain; version=0.0.4']], body: Buffer.from(renderPrometheus(v)) };
    const p = this.cfg.proxies.find((x) => x.name === proxy);
    const base = uri.split(';')[0];
    return {
      status: 200,
      headers: [['content-type', 'text/html']],
      body: Buffer.from(
        renderHtml(v, {
          uri: base,
          refresh: p?.stats.refresh,
          hideVersion: p?.stats.hideVersion ?? false,
          node: p?.stats.showNode === undefined ? undefined : p.stats.showNode || this.cfg.global.node || hostname(),
        }),
      ),
    };
  }

  private openSocket(path: string, mode: number | undefined, level: 'user' | 'operator' | 'admin'): void {
    try {
      unlinkSync(path);
    } catch {}
    // half-open: a client that sends its command and shuts its side (echo cmd | socat) still gets the answer
    const srv = net.createServer({ allowHalfOpen: true }, (c) => {
      let buf = '';
      let interactive = false;
      let busy = false;
      let ended = false;
      c.setEncoding('utf8');
      c.on('error', () => {});
      c.on('end', () => {
        ended = true;
        if (!busy) c.end();
      });
      // an idle session is closed after 'stats timeout' (10 s by default, as in HAProxy)
      c.setTimeout(this.cfg.global.statsTimeout ?? 10000, () => c.destroy());
      c.on('data', async (d: string) => {
        if (busy) {
          buf += d;
          return;
        }
        busy = true;
        try {
          await onData(d);
          // lines that came in meanwhile
          while (!c.writableEnded && buf.includes('\n')) await onData('');
        } finally {
          busy = false;
          if (ended && !c.writableEnded) c.end();
        }
      });
      const onData = async (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, '');
          buf = buf.slice(nl + 1);
          let out = '';
          for (const cmd of line.split(';')) {
            const t = cmd.trim();
            if (t === 'prompt') {
              interactive = !interactive;
              continue;
            }
            if (t === 'quit') {
              c.end();
              return;
            }
            out += await this.command(t, level);
          }
          c.write(out + (interactive ? '\n> ' : ''));
          if (!interactive) {
            c.end();
            return;
          }
        }
      };
    });
    srv.on('error', (e) => process.stderr.write(`[ALERT] (${process.pid}) : stats socket ${path}: ${e.message}\n`));
    srv.listen(path, () => {
      if (mode !== undefined) chmodSync(path, mode);
    });
    this.sockets.push(srv);
  }

  /** One runtime API command; the answer ends with an empty line, as HAProxy's does. */
  async command(line: string, level: 'user' | 'operator' | 'admin'): Promise<string> {
    const w = line.split(/\s+/).filter(Boolean);
    if (w.length === 0) return '';
    const cmd = w.slice(0, 2).join(' ');
    const denied = 'Permission denied\n\n';
    const srvKey = (x: string | undefined): string | null => {
      if (!x || !x.includes('/')) return null;
      return this.health.has(x) ? x : null;
    };
    switch (cmd) {
      case 'show stat': {
        const csv = renderCsv(await this.view(), true);
        return csv;
      }
      case 'show info': {
        const snaps = await this.plane.snapshots();
        const cur = snaps.reduce((a, s) => a + s.actconn, 0);
        return `Name: hasetup-proxy\nPid: ${process.pid}\nProcesses: ${snaps.length}\nUptime_sec: ${Math.floor((Date.now() - this.started) / 1000)}\nMaxconn: ${this.cfg.global.maxconn}\nCurrConns: ${cur}\n\n`;
      }
      case 'show servers': {
        if (w[2] !== 'state') break;
        let s = '1\n# be_name srv_name srv_op_state srv_admin_state srv_check_health srv_check_status\n';
        for (const h of this.health.values()) {
          const [b, n] = h.key.split('/');
          s += `${b} ${n} ${h.up ? 2 : 0} ${h.admin === 'maint' ? 1 : h.admin === 'drain' ? 8 : 0} ${h.health} ${h.checkStatus || '-'}\n`;
        }
        return s + '\n';
      }
      case 'disable server':
      case 'enable server': {
        if (level !== 'admin') return denied;
        const k = srvKey(w[2]);
        if (!k) return 'No such server.\n\n';
        this.setAdmin(k, cmd === 'disable server' ? 'maint' : 'ready');
        return '\n';
      }
      case 'set server': {
        if (level !== 'admin') return denied;
        const k = srvKey(w[2]);
        if (!k) return 'No such server.\n\n';
        if (w[3] === 'state' && (w[4] === 'ready' || w[4] === 'drain' || w[4] === 'maint') && w.length === 5) {
          this.setAdmin(k, w[4]);
          return '\n';
        }
        return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n";
      }
      case 'help':
        break;
    }
    return (
      (cmd === 'help' ? '' : 'Unknown command. Please enter one of the following commands only :\n') +
      '  help           : this message\n  prompt         : toggle interactive mode with prompt\n  quit           : disconnect\n' +
      '  show info      : report information about the running process\n  show stat      : report counters for each proxy and server (CSV)\n' +
      '  show servers state : dump the state of the servers\n  disable server <bk>/<srv> : put the server in maintenance\n' +
      '  enable server <bk>/<srv>  : take the server out of maintenance\n  set server <bk>/<srv> state ready|drain|maint : change the server administrative state\n\n'
    );
  }
}
