// Statistics: HAProxy's CSV export (same header and column order as HAProxy 2.6), the HTML page,
// and a Prometheus text exposition, all from the config, the health states and the summed counters.
import type { ParsedConfig, ProxyConfig } from './config.ts';
import { COUNTER_KEYS, newCounters, type CounterKey, type Counters } from './counters.ts';
import type { Snapshot, AdminState } from './types.ts';

export const CSV_FIELDS = (
  'pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,' +
  'lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,' +
  'hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,' +
  'comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,' +
  'check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,' +
  'wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,' +
  'used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,' +
  'ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,' +
  'h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,' +
  'h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,' +
  'h1_spliced_bytes_in,h1_spliced_bytes_out'
).split(',');

/** Everything the control plane knows about one server's health. */
export interface ServerHealth {
  key: string;
  up: boolean;
  admin: AdminState;
  since: number;
  checked: boolean;
  health: number; // 0 .. rise+fall-1; UP when >= rise
  checkStatus: string; // INI, L4OK, L4CON, L4TOUT, L7OK, L7STS, L7RSP, L7TOUT, SOCKERR
  checkCode: number | null;
  checkDuration: number | null;
  checkDesc: string;
  chkfail: number;
  chkdown: number;
  lastchg: number; // ms epoch of the last state change
  downtime: number; // ms spent DOWN, not counting the current period
  downSince: number; // ms epoch, 0 when not down
  lastChk: string;
}

export interface StatsView {
  cfg: ParsedConfig;
  health: Map<string, ServerHealth>;
  snaps: Snapshot[];
  started: number;
}

/** Backend and server figures the workers share (engine snapshots all carry the whole proxy's): taken once. */
export const SHARED_KEYS: CounterKey[] = ['scur', 'smax', 'qcur', 'qmax'];

/** Every worker's counters added up (`shared`: keys whose value is the same whole-proxy figure in each). */
export function sumCounters(list: (Counters | undefined)[], shared: CounterKey[] = []): Counters {
  const out = newCounters();
  let last = -1;
  for (const c of list) {
    if (!c) continue;
    for (const k of COUNTER_KEYS) {
      if (shared.includes(k)) out[k] = Math.max(out[k], c[k]);
      else if (k === 'smax' || k === 'qmax' || k === 'rate_max' || k === 'req_rate_max') out[k] += c[k];
      else if (k === 'qtime' || k === 'ctime' || k === 'rtime' || k === 'ttime') out[k] = Math.max(out[k], c[k]);
      else if (k === 'lastsess') last = Math.max(last, c[k]);
      else out[k] += c[k];
    }
  }
  out.lastsess = last;
  return out;
}

export function serverStatus(h: ServerHealth | undefined, rise: number, fall: number): string {
  if (!h) return 'no check';
  if (h.admin === 'maint') return 'MAINT';
  if (!h.checked) return h.admin === 'drain' ? 'DRAIN' : 'no check';
  if (h.up) {
    if (h.admin === 'drain') return 'DRAIN';
    return h.health < rise + fall - 1 ? `UP ${h.health - rise + 1}/${fall}` : 'UP';
  }
  return h.health > 0 ? `DOWN ${h.health}/${rise}` : 'DOWN';
}

const CHECK_DESC: Record<string, string> = {
  INI: 'Initializing',
  L4OK: 'Layer4 check passed',
  L4CON: 'Layer4 connection problem',
  L4TOUT: 'Layer4 timeout',
  L7OK: 'Layer7 check passed',
  L7STS: 'Layer7 wrong status',
  L7RSP: 'Layer7 invalid response',
  L7TOUT: 'Layer7 timeout',
  SOCKERR: 'Socket error',
};
export const checkDescription = (s: string) => CHECK_DESC[s] ?? s;

type Row = Record<string, string | number>;

function sec(ms: number, now: number): number {
  return Math.max(0, Math.floor((now - ms) / 1000));
}

function countersRow(c: Counters, r: Row): void {
  r.qcur = c.qcur;
  r.qmax = c.qmax;
  r.scur = c.scur;
  r.smax = c.smax;
  r.stot = c.stot;
  r.bin = c.bin;
  r.bout = c.bout;
  r.econ = c.econ;
  r.eresp = c.eresp;
  r.wretr = c.wretr;
  r.wredis = c.wredis;
  r.hrsp_1xx = c.h1xx;
  r.hrsp_2xx = c.h2xx;
  r.hrsp_3xx = c.h3xx;
  r.hrsp_4xx = c.h4xx;
  r.hrsp_5xx = c.h5xx;
  r.hrsp_other = c.hother;
  r.cli_abrt = c.cli_abrt;
  r.srv_abrt = c.srv_abrt;
  r.qtime = Math.round(c.qtime);
  r.ctime = Math.round(c.ctime);
  r.rtime = Math.round(c.rtime);
  r.ttime = Math.round(c.ttime);
  r.rate = c.rate;
  r.rate_max = c.rate_max;
}

export interface StatRows {
  proxy: ProxyConfig;
  rows: Row[];
}

/** One row per FRONTEND, server and BACKEND, keyed by CSV field name. */
export function statRows(v: StatsView): StatRows[] {
  const now = Date.now();
  const out: StatRows[] = [];
  const pid = 1;
  for (const p of v.cfg.proxies) {
    const rows: Row[] = [];
    const per = v.snaps.map((s) => s.proxies[p.name]);
    if (p.kind !== 'backend') {
      const c = sumCounters(per.map((x) => x?.fe));
      const r: Row = { pxname: p.name, svname: 'FRONTEND', slim: p.maxconn, status: 'OPEN', pid, iid: p.id, sid: 0, type: 0, mode: p.mode };
      countersRow(c, r);
      for (const k of ['qcur', 'qmax', 'econ', 'eresp', 'wretr', 'wredis', 'qtime', 'ctime', 'rtime', 'ttime', 'cli_abrt', 'srv_abrt'])
        delete r[k];
      r.dreq = c.dreq;
      r.dresp = c.dresp;
      r.ereq = c.ereq;
      r.rate_lim = 0;
      r.req_rate = c.req_rate;
      r.req_rate_max = c.req_rate_max;
      r.req_tot = c.req_tot;
      r.conn_rate = c.rate;
      r.conn_rate_max = c.rate_max;
      r.conn_tot = c.conn_tot;
      r.intercepted = c.intercepted;
      r.comp_in = r.comp_out = r.comp_byp = r.comp_rsp = 0;
      r.dcon = r.dses = r.wrew = r.eint = 0;
      if (p.mode !== 'http')
        for (const k of [
          'hrsp_1xx',
          'hrsp_2xx',
          'hrsp_3xx',
          'hrsp_4xx',
          'hrsp_5xx',
          'hrsp_other',
          'req_rate',
          'req_rate_max',
          'intercepted',
        ])
          delete r[k];
      rows.push(r);
    }
    if (p.kind !== 'frontend') {
      let act = 0;
      let bck = 0;
      let weight = 0;
      let chkdown = 0;
      let lastchg = 0;
      let pos = 0;
      for (const s of p.servers) {
        const sid = s.id ?? ++pos;
        if (s.id !== undefined) pos++;
        const key = `${p.name}/${s.name}`;
        const h = v.health.get(key);
        const c = sumCounters(
          per.map((x) => x?.servers[s.name]),
          SHARED_KEYS,
        );
        const status = serverStatus(h, s.rise, s.fall);
        const usable = !!h && h.up && h.admin === 'ready';
        const r: Row = {
          pxname: p.name,
          svname: s.name,
          slim: s.maxconn || '',
          status,
          weight: s.weight,
          act: s.backup ? 0 : 1,
          bck: s.backup ? 1 : 0,
          pid,
          iid: p.id,
          sid,
          type: 2,
          lbtot: c.lbtot,
          addr: `${s.host}:${s.port}`,
          cookie: s.cookie ?? '',
          mode: p.mode,
          dresp: 0,
          uweight: s.weight,
          connect: c.connect,
          reuse: c.reuse,
          idle_conn_cur: c.idle,
          safe_conn_cur: 0,
          used_conn_cur: c.scur,
          need_conn_est: 0,
          srv_icur: c.idle,
          eint: 0,
          wrew: 0,
          qlimit: '',
          throttle: '',
          lastsess: c.lastsess > 0 ? sec(c.lastsess, now) : -1,
          agg_server_status: '',
          agg_server_check_status: '',
          agg_check_status: '',
        };
        countersRow(c, r);
        r.qcur = 0;
        r.qmax = 0;
        if (h) {
          r.lastchg = sec(h.lastchg, now);
          if (h.checked) {
            r.chkfail = h.chkfail;
            r.chkdown = h.chkdown;
            r.downtime = Math.floor((h.downtime + (h.downSince ? now - h.downSince : 0)) / 1000);
            r.check_status = h.checkStatus;
            if (h.checkCode !== null) r.check_code = h.checkCode;
            r.check_duration = h.checkDuration ?? '';
            r.check_desc = checkDescription(h.checkStatus);
            r.check_rise = s.rise;
            r.check_fall = s.fall;
            r.check_health = h.health;
            r.last_chk = h.lastChk;
            if (s.slowstart && h.since && now - h.since < s.slowstart) r.throttle = Math.round(((now - h.since) * 100) / s.slowstart);
          }
          chkdown += h.chkdown;
          lastchg = Math.max(lastchg, h.lastchg);
        }
        if (usable) {
          if (s.backup) bck++;
          else act++;
          weight += s.weight;
        }
        r.hanafail = 0;
        r.req_tot = c.req_tot;
        if (p.mode !== 'http')
          for (const k of ['hrsp_1xx', 'hrsp_2xx', 'hrsp_3xx', 'hrsp_4xx', 'hrsp_5xx', 'hrsp_other', 'req_tot']) delete r[k];
        rows.push(r);
      }
      const c = sumCounters(
        per.map((x) => x?.be),
        SHARED_KEYS,
      );
      const r: Row = {
        pxname: p.name,
        svname: 'BACKEND',
        slim: p.fullconn ?? Math.ceil(p.maxconn / 10),
        status: act + bck > 0 || p.servers.length === 0 ? 'UP' : 'DOWN',
        weight,
        act,
        bck,
        chkdown,
        lastchg: lastchg ? sec(lastchg, now) : sec(v.started, now),
        downtime: 0,
        pid,
        iid: p.id,
        sid: 0,
        type: 1,
        lbtot: c.lbtot,
        cookie: p.cookie?.name ?? '',
        mode: p.mode,
        algo: p.balance,
        dreq: c.dreq,
        dresp: c.dresp,
        req_tot: c.req_tot,
        comp_in: 0,
        comp_out: 0,
        comp_byp: 0,
        comp_rsp: 0,
        lastsess: c.lastsess > 0 ? sec(c.lastsess, now) : -1,
        connect: c.connect,
        reuse: c.reuse,
        intercepted: 0,
        dcon: 0,
        dses: 0,
        wrew: 0,
        eint: 0,
        uweight: weight,
        idle_conn_cur: 0,
        safe_conn_cur: 0,
        used_conn_cur: 0,
        need_conn_est: 0,
        cache_lookups: 0,
        cache_hits: 0,
      };
      countersRow(c, r);
      if (p.mode !== 'http')
        for (const k of ['hrsp_1xx', 'hrsp_2xx', 'hrsp_3xx', 'hrsp_4xx', 'hrsp_5xx', 'hrsp_other', 'req_tot']) delete r[k];
      rows.push(r);
    }
    out.push({ proxy: p, rows });
  }
  return out;
}

/** The CSV export. Like HAProxy, the HTTP page leaves out server addresses and algorithms; the stats socket shows them (full). */
export function renderCsv(v: StatsView, full = false): string {
  let s = '# ' + CSV_FIELDS.join(',') + ',\n';
  for (const px of statRows(v))
    for (const r of px.rows) {
      if (!full) {
        delete r.addr;
        delete r.algo;
        delete r.cookie;
      }
      s += CSV_FIELDS.map((f) => csvCell(r[f])).join(',') + ',\n';
    }
  return s + '\n';
}

function csvCell(v: string | number | undefined): string {
  if (v === undefined) return '';
  const s = String(v);
  return /[,"\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const esc = (s: string | number | undefined) =>
  String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function dur(secs: number | string | undefined): string {
  if (typeof secs !== 'number' || secs < 0) return '';
  const d = Math.floor(secs / 86400);
  const h = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = secs % 60;
  return d ? `${d}d${h}h` : h ? `${h}h${m}m` : m ? `${m}m${s}s` : `${s}s`;
}

/** The HTML statistics page: one table per proxy, a row per server with its state colour. */
export function renderHtml(v: StatsView, opts: { uri: string; refresh?: number; hideVersion: boolean; node?: string }): string {
  const now = Date.now();
  const colour = (st: string) =>
    st.startsWith('UP ')
      ? '#e0e080'
      : st === 'UP' || st === 'OPEN' || st === 'no check'
        ? '#c0ffc0'
        : st.startsWith('DOWN ')
          ? '#ffa0a0'
          : st === 'DOWN'
            ? '#ff9090'
            : st === 'MAINT'
              ? '#c0c0ff'
              : st === 'DRAIN'
                ? '#b0d0ff'
                : '#e0e0e0';
  let h = `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Statistics Report for hasetup-proxy</title>`;
  if (opts.refresh) h += `<meta http-equiv="refresh" content="${opts.refresh}">`;
  h += `<style>
body{font-family:Arial,Helvetica,sans-serif;font-size:12px;margin:8px;background:#fff}
h1{font-size:18px;margin:0 0 4px}h2{font-size:14px;margin:16px 0 4px;background:#20377f;color:#fff;padding:3px 6px}
table{border-collapse:collapse;margin-bottom:4px}th,td{border:1px solid #999;padding:1px 5px;text-align:right}
th{background:#b0b8e0}td.n{text-align:left;font-weight:bold}tr.fe,tr.be{background:#e8e8f8;font-weight:bold}
.legend span{display:inline-block;padding:1px 6px;margin-right:4px;border:1px solid #999}
</style></head><body>\n`;
  h += `<h1>Statistics Report for hasetup-proxy${opts.hideVersion ? '' : ' (HAProxy-compatible)'}</h1>\n`;
  if (opts.node !== undefined) h += `<p>node: ${esc(opts.node)}</p>\n`;
  h += `<p>pid = ${process.pid}; uptime = ${dur(Math.floor((now - v.started) / 1000))}; processes = ${v.snaps.length}; current conns = ${v.snaps.reduce((a, s) => a + s.actconn, 0)}; maxconn = ${v.cfg.global.maxconn}</p>\n`;
  h += `<p class="legend">${['UP', 'UP 1/3', 'DOWN 1/2', 'DOWN', 'DRAIN', 'MAINT', 'no check'].map((s) => `<span style="background:${colour(s)}">${s.replace(/ \d.*/, s.startsWith('UP ') ? ', going down' : s.startsWith('DOWN ') ? ', going up' : '')}</span>`).join('')}</p>\n`;
  h += `<p><a href="${esc(opts.uri)};csv">CSV export</a></p>\n`;
  for (const px of statRows(v)) {
    h += `<h2 id="${esc(px.proxy.name)}">${esc(px.proxy.name)}${px.proxy.description ? ` <small>(${esc(px.proxy.description)})</small>` : ''}</h2>\n<table class="px" data-proxy="${esc(px.proxy.name)}">\n`;
    h +=
      '<tr><th>Name</th><th>Queue cur</th><th>Queue max</th><th>Sessions cur</th><th>Sessions max</th><th>Limit</th><th>Total</th><th>LbTot</th><th>Bytes in</th><th>Bytes out</th><th>Req errors</th><th>Conn errors</th><th>Resp errors</th><th>Retries</th><th>Redispatches</th><th>Status</th><th>LastChk</th><th>Weight</th><th>Act</th><th>Bck</th><th>Chk</th><th>Dwn</th><th>Dwntme</th><th>Thrtle</th></tr>\n';
    for (const r of px.rows) {
      const cls = r.svname === 'FRONTEND' ? 'fe' : r.svname === 'BACKEND' ? 'be' : 'srv';
      const st = String(r.status ?? '');
      const lastchk = r.check_status
        ? `${r.check_status}${r.check_code !== undefined ? '/' + r.check_code : ''} in ${r.check_duration}ms`
        : '';
      const statusText = r.type === 0 ? st : `${dur(r.lastchg as number)} ${st}`;
      h += `<tr class="${cls}" data-server="${esc(r.svname)}" data-status="${esc(st)}" style="background:${colour(st)}"><td class="n">${esc(r.svname)}</td>`;
      for (const k of ['qcur', 'qmax', 'scur', 'smax', 'slim', 'stot', 'lbtot', 'bin', 'bout', 'ereq', 'econ', 'eresp', 'wretr', 'wredis'])
        h += `<td>${esc(r[k])}</td>`;
      h += `<td class="st">${esc(statusText.trim())}</td><td>${esc(lastchk)}</td><td>${esc(r.weight)}</td><td>${r.type === 2 ? (r.act ? 'Y' : '-') : esc(r.act)}</td><td>${r.type === 2 ? (r.bck ? 'Y' : '-') : esc(r.bck)}</td>`;
      h += `<td>${esc(r.chkfail)}</td><td>${esc(r.chkdown)}</td><td>${esc(dur(r.downtime as number))}</td><td>${r.throttle !== undefined && r.throttle !== '' ? esc(r.throttle) + '%' : '-'}</td></tr>\n`;
    }
    h += '</table>\n';
  }
  h += '</body></html>\n';
  return h;
}

// The exporter's series per frontend (fe), backend (be) and server (sv) row: name, type, help, and the stats column
// it shows (@classes: the responses by class, @up: 1 for an UP backend, @state: 1 for the server's current state).
const SERIES: ['fe' | 'be' | 'sv', string, string, string, string][] = [
  ['fe', 'haproxy_frontend_current_sessions', 'gauge', 'Number of current sessions', 'scur'],
  ['fe', 'haproxy_frontend_max_sessions', 'gauge', 'Maximum observed number of sessions', 'smax'],
  ['fe', 'haproxy_frontend_limit_sessions', 'gauge', 'Configured session limit', 'slim'],
  ['fe', 'haproxy_frontend_sessions_total', 'counter', 'Total number of sessions', 'stot'],
  ['fe', 'haproxy_frontend_bytes_in_total', 'counter', 'Request bytes', 'bin'],
  ['fe', 'haproxy_frontend_bytes_out_total', 'counter', 'Response bytes', 'bout'],
  ['fe', 'haproxy_frontend_request_errors_total', 'counter', 'Invalid requests', 'ereq'],
  ['fe', 'haproxy_frontend_http_requests_total', 'counter', 'HTTP requests', 'req_tot'],
  ['fe', 'haproxy_frontend_http_responses_total', 'counter', 'HTTP responses by class', '@classes'],
  ['be', 'haproxy_backend_status', 'gauge', 'Backend status (1 = UP)', '@up'],
  ['be', 'haproxy_backend_current_sessions', 'gauge', 'Number of current sessions', 'scur'],
  ['be', 'haproxy_backend_current_queue', 'gauge', 'Requests in the queue', 'qcur'],
  ['be', 'haproxy_backend_sessions_total', 'counter', 'Total number of sessions', 'stot'],
  ['be', 'haproxy_backend_active_servers', 'gauge', 'Usable active servers', 'act'],
  ['be', 'haproxy_backend_backup_servers', 'gauge', 'Usable backup servers', 'bck'],
  ['be', 'haproxy_backend_connection_errors_total', 'counter', 'Failed connections to servers', 'econ'],
  ['be', 'haproxy_backend_response_errors_total', 'counter', 'Invalid or aborted responses', 'eresp'],
  ['be', 'haproxy_backend_retry_warnings_total', 'counter', 'Connection retries', 'wretr'],
  ['be', 'haproxy_backend_redispatch_warnings_total', 'counter', 'Redispatches', 'wredis'],
  ['be', 'haproxy_backend_http_responses_total', 'counter', 'HTTP responses by class', '@classes'],
  ['sv', 'haproxy_server_status', 'gauge', 'Server state (1 for the current state)', '@state'],
  ['sv', 'haproxy_server_current_sessions', 'gauge', 'Number of current sessions', 'scur'],
  ['sv', 'haproxy_server_sessions_total', 'counter', 'Total number of sessions', 'stot'],
  ['sv', 'haproxy_server_bytes_in_total', 'counter', 'Request bytes', 'bin'],
  ['sv', 'haproxy_server_bytes_out_total', 'counter', 'Response bytes', 'bout'],
  ['sv', 'haproxy_server_connection_errors_total', 'counter', 'Failed connections', 'econ'],
  ['sv', 'haproxy_server_check_failures_total', 'counter', 'Failed health checks', 'chkfail'],
  ['sv', 'haproxy_server_check_up_down_total', 'counter', 'UP to DOWN transitions', 'chkdown'],
  ['sv', 'haproxy_server_weight', 'gauge', 'Server weight', 'weight'],
  ['sv', 'haproxy_server_http_responses_total', 'counter', 'HTTP responses by class', '@classes'],
];
const CLASSES: [string, string][] = [
  ['1xx', 'hrsp_1xx'],
  ['2xx', 'hrsp_2xx'],
  ['3xx', 'hrsp_3xx'],
  ['4xx', 'hrsp_4xx'],
  ['5xx', 'hrsp_5xx'],
  ['other', 'hrsp_other'],
];
const STATES = ['DOWN', 'UP', 'MAINT', 'DRAIN', 'NOLB'];

/** Prometheus text format, with HAProxy exporter metric names for the common series. */
export function renderPrometheus(v: StatsView): string {
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, val] of samples) lines.push(`${name}${labels ? `{${labels}}` : ''} ${val}`);
  };
  const now = Date.now();
  metric('haproxy_process_start_time_seconds', 'gauge', 'Start time in seconds', [['', Math.floor(v.started / 1000)]]);
  metric('haproxy_process_current_connections', 'gauge', 'Number of active sessions', [['', v.snaps.reduce((a, s) => a + s.actconn, 0)]]);
  metric('haproxy_process_max_connections', 'gauge', 'Maximum number of concurrent connections', [['', v.cfg.global.maxconn]]);
  metric('haproxy_process_workers', 'gauge', 'Number of worker processes', [['', v.snaps.length]]);
  const rows = statRows(v);
  const fe = rows.flatMap((p) => p.rows.filter((r) => r.svname === 'FRONTEND'));
  const be = rows.flatMap((p) => p.rows.filter((r) => r.svname === 'BACKEND'));
  const sv = rows.flatMap((p) => p.rows.filter((r) => r.type === 2));
  const num = (x: string | number | undefined) => (typeof x === 'number' ? x : 0);
  const L = (r: Row, kind: 'proxy' | 'server') => (kind === 'proxy' ? `proxy="${r.pxname}"` : `proxy="${r.pxname}",server="${r.svname}"`);
  const groups = { fe, be, sv };
  for (const [group, name, type, help, col] of SERIES) {
    const kind = group === 'sv' ? 'server' : 'proxy';
    metric(
      name,
      type,
      help,
      groups[group].flatMap((r): [string, number][] => {
        if (col === '@classes') return CLASSES.map(([c, k]) => [`${L(r, kind)},code="${c}"`, num(r[k])]);
        if (col === '@up') return [[L(r, kind), r.status === 'UP' ? 1 : 0]];
        if (col === '@state') {
          const st = String(r.status);
          const cur = st.startsWith('UP') || st === 'no check' ? 'UP' : st.startsWith('DOWN') ? 'DOWN' : st;
          return STATES.map((x) => [`${L(r, kind)},state="${x}"`, x === cur ? 1 : 0]);
        }
        return [[L(r, kind), num(r[col])]];
      }),
    );
  }
  void now;
  return lines.join('\n') + '\n';
}
