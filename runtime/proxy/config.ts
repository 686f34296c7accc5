// haproxy.cfg parser: the configuration model shared by the proxy runtime and the controller.
// Accepts the HAProxy 1.3 spelling of the seed (address on the `listen` line, contimeout/clitimeout/
// srvtimeout) and the modern one (bind, timeout *). Every keyword is either understood or an error.
import { readFileSync } from 'node:fs';

export type Mode = 'http' | 'tcp';
export type BalanceAlgo = 'roundrobin' | 'static-rr' | 'leastconn' | 'source' | 'uri' | 'first';
export type ConnMode = 'keep-alive' | 'server-close' | 'close';
export type SyslogFormat = 'rfc3164' | 'rfc5424' | 'raw';

export interface Where {
  file: string;
  line: number;
}

export interface LogTarget {
  kind: 'udp' | 'stdout' | 'stderr';
  host: string;
  port: number;
  facility: number; // syslog facility number (local0 = 16)
  maxLevel: number; // highest severity number sent (7 = debug: everything)
  format: SyslogFormat;
}

export interface Timeouts {
  connect?: number;
  client?: number;
  server?: number;
  queue?: number;
  httpRequest?: number;
  httpKeepAlive?: number;
  check?: number;
  tunnel?: number;
}

export type AclFetch = 'path' | 'path_beg' | 'path_end' | 'path_sub' | 'path_reg' | 'hdr' | 'hdr_beg' | 'hdr_end' | 'hdr_sub' | 'method' | 'src';

export interface Acl {
  name: string;
  fetch: AclFetch;
  header?: string; // hdr*(name), lower case
  ignoreCase: boolean;
  values: string[];
}

/** A condition: OR of AND-groups of (possibly negated) ACLs. */
export interface Condition {
  unless: boolean;
  groups: { negate: boolean; acls: Acl[] }[][];
}

export interface UseBackend extends Where {
  backend: string;
  cond: Condition;
}

export interface ServiceRule extends Where {
  service: 'prometheus-exporter';
  cond?: Condition;
}

export type OnError = 'fastinter' | 'fail-check' | 'sudden-death' | 'mark-down';

export interface ServerConfig extends Where {
  name: string;
  host: string;
  port: number;
  check: boolean;
  inter: number;
  fastinter?: number;
  downinter?: number;
  rise: number;
  fall: number;
  weight: number;
  maxconn: number; // 0 = unlimited
  backup: boolean;
  slowstart: number; // ms, 0 = none
  disabled: boolean;
  observe?: 'layer4' | 'layer7';
  errorLimit: number;
  onError: OnError;
  checkPort?: number;
  id?: number; // numeric server id (sid in the stats); default: position in the backend
}

export interface StatsConfig {
  enabled: boolean;
  uri: string;
  auth: { user: string; pass: string }[];
  refresh?: number; // seconds
  realm: string;
  hideVersion: boolean;
  showNode?: string; // node name shown on the page ('' = the host name)
}

export interface BindConfig extends Where {
  host: string; // '' or '*' = all IPv4 addresses
  port: number;
}

export interface HttpCheck {
  method: string;
  uri: string;
  version: string;
  host?: string;
}

export interface CheckExpect {
  kind: 'status' | 'rstatus' | 'string';
  negate: boolean;
  value: string;
}

export interface ProxyConfig extends Where {
  name: string;
  kind: 'listen' | 'frontend' | 'backend';
  id: number; // numeric id (iid in the stats)
  mode: Mode;
  binds: BindConfig[];
  maxconn: number;
  fullconn?: number;
  timeouts: Timeouts;
  retries: number;
  redispatch: number; // 0 = off; -1 = on the last retry; P > 0 = every Pth retry
  httplog: boolean;
  tcplog: boolean;
  dontlognull: boolean;
  logs: LogTarget[];
  connMode: ConnMode;
  forwardfor?: { except?: { addr: number; bits: number }; header: string; ifnone: boolean };
  balance: BalanceAlgo;
  balanceArg?: string;
  httpchk?: HttpCheck;
  checkExpect?: CheckExpect;
  stats: StatsConfig;
  defaultBackend?: string;
  useBackends: UseBackend[];
  services: ServiceRule[];
  servers: ServerConfig[];
  monitorUri?: string;
  description?: string;
}

export interface StatsSocketConfig extends Where {
  path: string;
  mode?: number;
  level: 'user' | 'operator' | 'admin';
}

export interface GlobalConfig {
  logs: LogTarget[];
  maxconn: number;
  user?: string;
  group?: string;
  uid?: number;
  gid?: number;
  daemon: boolean;
  nbthread?: number; // worker processes (nbthread and nbproc both map here)
  statsSockets: StatsSocketConfig[];
  pidfile?: string;
  logTag: string;
  node?: string;
  statsTimeout?: number; // ms an interactive stats socket session may stay idle (default 10 s)
  cpuMaps: CpuMap[];
}

/** A `cpu-map` line: the workers ("threads") from..to (1-based) on these CPUs; auto: one CPU each, in order. */
export interface CpuMap extends Where {
  auto: boolean;
  from: number;
  to: number; // Infinity for "all"
  cpus: number[];
}

export interface ParsedConfig {
  files: string[];
  global: GlobalConfig;
  proxies: ProxyConfig[];
  warnings: Alert[];
}

export interface Alert extends Where {
  keyword: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(public alerts: Alert[]) {
    super(alerts.map((a) => formatAlert(a)).join('\n'));
  }
}

export function formatAlert(a: Alert, level = 'ALERT'): string {
  return `[${level}] parsing [${a.file}:${a.line}] : '${a.keyword}' : ${a.message}`;
}

const FACILITIES = ['kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'auth2', 'ftp', 'ntp', 'audit', 'alert', 'cron2', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'];
export const LEVELS = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];

/** Splits a config line into words the way HAProxy does: quotes, backslash escapes, '#' comments. */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let q: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === q) q = null;
      else if (c === '\\' && q === '"' && i + 1 < line.length) {
        const n = line[++i];
        cur += n === 'r' ? '\r' : n === 'n' ? '\n' : n === 't' ? '\t' : n;
      }
      else cur += c;
      continue;
    }
    if (c === '\\' && i + 1 < line.length) {
      const n = line[++i];
      cur += n === 'r' ? '\r' : n === 'n' ? '\n' : n === 't' ? '\t' : n;
      has = true;
    } else if (c === '"' || c === "'") {
      q = c;
      has = true;
    } else if (c === '#') {
      break;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (q) throw new Error('unterminated quote');
  if (has) out.push(cur);
  return out;
}

/** HAProxy time: a number with an optional unit (us, ms, s, m, h, d); no unit means milliseconds. */
export function parseTime(s: string): number {
  const m = /^(\d+)(us|ms|s|m|h|d)?$/.exec(s);
  if (!m) throw new Error(`invalid time value '${s}'`);
  const n = Number(m[1]);
  switch (m[2]) {
    case 'us':
      return Math.ceil(n / 1000);
    case 's':
      return n * 1000;
    case 'm':
      return n * 60000;
    case 'h':
      return n * 3600000;
    case 'd':
      return n * 86400000;
    default:
      return n;
  }
}

/** A CPU list: numbers and ranges, separated by spaces or commas ("0-3", "1 3", "0,2"). */
function parseCpuSet(args: string[]): number[] {
  const out = new Set<number>();
  for (const part of args.join(',').split(',').filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`invalid CPU set '${part}' (expects numbers and ranges like 0-3)`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b > 1023) throw new Error(`invalid CPU range '${part}'`);
    for (let c = a; c <= b; c++) out.add(c);
  }
  if (out.size === 0) throw new Error("'cpu-map' expects a CPU set");
  return [...out].sort((x, y) => x - y);
}

/**
 * `cpu-map [auto:]<process>[/<threads>] <cpus>...`. Our workers are HAProxy's threads of its one
 * process: the process part is 1 or all; threads are all, N or N-M.
 */
function parseCpuMap(args: string[]): { auto: boolean; from: number; to: number; cpus: number[] } {
  if (args.length < 2) throw new Error("'cpu-map' expects [auto:]<process>[/<threads>] and a CPU set");
  let spec = args[0];
  const auto = spec.startsWith('auto:');
  if (auto) spec = spec.slice(5);
  const [proc, threads = 'all'] = spec.split('/');
  if (proc !== '1' && proc !== 'all' && proc !== '1-1') throw new Error(`'cpu-map' process set '${proc}': this proxy is one process with worker threads (use 1/<threads>)`);
  let from = 1;
  let to = Infinity;
  if (threads !== 'all') {
    const m = /^(\d+)(?:-(\d+))?$/.exec(threads);
    if (!m || Number(m[1]) < 1 || (m[2] !== undefined && Number(m[2]) < Number(m[1]))) throw new Error(`invalid thread set '${threads}' in 'cpu-map' (all, N or N-M)`);
    from = Number(m[1]);
    to = m[2] === undefined ? from : Number(m[2]);
  }
  const cpus = parseCpuSet(args.slice(1));
  if (auto && to !== Infinity && to - from + 1 !== cpus.length)
    throw new Error(`'cpu-map auto:' maps one thread per CPU: ${to - from + 1} threads but ${cpus.length} CPUs`);
  return { auto, from, to, cpus };
}

/**
 * The CPUs worker `slot` (0-based) runs on, or null for no restriction. The last `cpu-map` line that
 * names its thread decides. Without any, and when the number of workers was left to the proxy (one
 * per CPU), worker k gets the k-th allowed CPU of its own: two workers that the scheduler puts on one
 * CPU leave the other idle and double the latency of their connections.
 */
export function workerCpus(g: GlobalConfig, slot: number, workers: number, allowed: number[]): number[] | null {
  const t = slot + 1;
  let pick: number[] | null = null;
  for (const m of g.cpuMaps) {
    if (t < m.from || t > m.to) continue;
    pick = m.auto ? [m.cpus[(t - m.from) % m.cpus.length]] : m.cpus;
  }
  if (pick) return pick;
  if (g.cpuMaps.length === 0 && g.nbthread === undefined && workers > 1 && workers === allowed.length) return [allowed[slot]];
  return null;
}

function parseIntStrict(s: string | undefined, what: string, min = 0, max = 2 ** 31): number {
  if (s === undefined || !/^-?\d+$/.test(s)) throw new Error(`${what} expects an integer, got '${s ?? ''}'`);
  const n = Number(s);
  if (n < min || n > max) throw new Error(`${what} must be between ${min} and ${max}`);
  return n;
}

export function parseAddrPort(s: string, what: string): { host: string; port: number } {
  let host: string;
  let port: string;
  if (s.startsWith('[')) {
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(s);
    if (!m) throw new Error(`invalid address '${s}' for ${what}`);
    host = m[1];
    port = m[2];
  } else {
    const i = s.lastIndexOf(':');
    if (i < 0) throw new Error(`missing port in address '${s}' for ${what}`);
    host = s.slice(0, i);
    port = s.slice(i + 1);
  }
  if (host.startsWith('ipv4@')) host = host.slice(5);
  const p = parseIntStrict(port, `port of ${what}`, 1, 65535);
  if (host === '*' || host === '0.0.0.0') host = '';
  return { host, port: p };
}

export function ipv4ToInt(a: string): number | null {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((x) => x > 255)) return null;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

function parseLog(w: string[], globalLogs: LogTarget[] | null): LogTarget[] {
  // log global | log <target> [len <n>] [format <fmt>] <facility> [<level> [<minlevel>]]
  if (w[1] === 'global') {
    if (!globalLogs) throw new Error("'log global' is only valid in a proxy section");
    return globalLogs;
  }
  const target = w[1];
  if (!target) throw new Error("expects a target ('global', an address, stdout or stderr)");
  let i = 2;
  let format: SyslogFormat = 'rfc3164';
  while (w[i] === 'len' || w[i] === 'format' || w[i] === 'sample') {
    if (w[i] === 'format') {
      const f = w[i + 1];
      if (f !== 'rfc3164' && f !== 'rfc5424' && f !== 'raw') throw new Error(`unsupported log format '${f ?? ''}' (rfc3164, rfc5424 or raw)`);
      format = f;
    } else if (w[i] === 'sample') throw new Error("log 'sample' is not supported");
    i += 2;
  }
  const fac = w[i];
  const facility = FACILITIES.indexOf(fac ?? '');
  if (facility < 0) throw new Error(`unknown log facility '${fac ?? ''}'`);
  let maxLevel = 7;
  if (w[i + 1] !== undefined) {
    maxLevel = LEVELS.indexOf(w[i + 1]);
    if (maxLevel < 0) throw new Error(`unknown log level '${w[i + 1]}'`);
    if (w[i + 2] !== undefined && LEVELS.indexOf(w[i + 2]) < 0) throw new Error(`unknown log level '${w[i + 2]}'`);
    if (w[i + 3] !== undefined) throw new Error(`unexpected word '${w[i + 3]}'`);
  }
  if (target === 'stdout' || target === 'stderr') return [{ kind: target, host: '', port: 0, facility, maxLevel, format }];
  let t = target.startsWith('udp@') ? target.slice(4) : target.startsWith('udp4@') ? target.slice(5) : target;
  if (t.startsWith('/') || t.includes('@')) throw new Error(`unsupported log target '${target}' (an IPv4 address[:port], stdout or stderr)`);
  if (!t.includes(':')) t += ':514';
  const { host, port } = parseAddrPort(t, 'log');
  if (ipv4ToInt(host || '0.0.0.0') === null) throw new Error(`log target must be an IPv4 address, got '${host}'`);
  return [{ kind: 'udp', host: host || '127.0.0.1', port, facility, maxLevel, format }];
}

const ACL_FETCHES: Record<string, AclFetch> = {
  path: 'path', path_beg: 'path_beg', path_end: 'path_end', path_sub: 'path_sub', path_reg: 'path_reg',
  hdr: 'hdr', hdr_beg: 'hdr_beg', hdr_end: 'hdr_end', hdr_sub: 'hdr_sub', method: 'method', src: 'src',
};

function parseAclExpr(name: string, w: string[]): Acl {
  const f = w[0];
  if (!f) throw new Error('missing ACL criterion');
  const m = /^([a-z_]+)(?:\(([^)]*)\))?$/.exec(f);
  if (!m || !ACL_FETCHES[m[1]]) throw new Error(`unsupported ACL criterion '${f}' (path, path_beg, path_end, path_sub, path_reg, hdr*(name), method, src)`);
  const fetch = ACL_FETCHES[m[1]];
  let header: string | undefined;
  if (fetch.startsWith('hdr')) {
    header = (m[2] ?? '').toLowerCase();
    if (!header) throw new Error(`'${f}' needs a header name`);
  } else if (m[2] !== undefined) throw new Error(`'${m[1]}' takes no argument`);
  let ignoreCase = false;
  const values: string[] = [];
  let flagsDone = false;
  for (const v of w.slice(1)) {
    if (!flagsDone && v === '-i') ignoreCase = true;
    else if (!flagsDone && v === '-m') throw new Error("ACL '-m' match methods are not supported; use the suffixed criteria (path_beg...)");
    else if (!flagsDone && v === '--') flagsDone = true;
    else {
      flagsDone = true;
      values.push(v);
    }
  }
  if (values.length === 0) throw new Error(`ACL '${name}' has no value to match`);
  if (fetch === 'path_reg') for (const v of values) new RegExp(v);
  if (fetch === 'src') for (const v of values) if (ipv4ToInt(v.split('/')[0]) === null) throw new Error(`invalid IPv4 address '${v}'`);
  return { name, fetch, header, ignoreCase, values: ignoreCase ? values.map((v) => v.toLowerCase()) : values };
}

function parseCondition(w: string[], acls: Map<string, Acl>): Condition {
  const kw = w[0];
  if (kw !== 'if' && kw !== 'unless') throw new Error(`expects 'if' or 'unless' followed by a condition, got '${kw ?? ''}'`);
  const groups: Condition['groups'] = [[]];
  let i = 1;
  while (i < w.length) {
    let word = w[i];
    if (word === '||' || word === 'or') {
      groups.push([]);
      i++;
      continue;
    }
    let negate = false;
    if (word.startsWith('!')) {
      negate = true;
      word = word.slice(1);
      if (!word) {
        i++;
        word = w[i] ?? '';
      }
    }
    if (word === '{') {
      const end = w.indexOf('}', i + 1);
      if (end < 0) throw new Error("missing '}' closing an anonymous ACL");
      groups[groups.length - 1].push({ negate, acls: [parseAclExpr('anonymous', w.slice(i + 1, end))] });
      i = end + 1;
      continue;
    }
    const a = acls.get(word);
    if (!a) throw new Error(`no such ACL : '${word}'`);
    groups[groups.length - 1].push({ negate, acls: [a] });
    i++;
  }
  if (groups.some((g) => g.length === 0)) throw new Error('empty condition');
  return { unless: kw === 'unless', groups };
}

type ProxyDefaults = Omit<ProxyConfig, 'name' | 'kind' | 'id' | 'file' | 'line' | 'binds' | 'servers' | 'useBackends' | 'services' | 'defaultBackend'> & {
  defaultServer: Partial<ServerConfig>;
};

function freshDefaults(): ProxyDefaults {
  return {
    mode: 'tcp',
    maxconn: 0,
    timeouts: {},
    retries: 3,
    redispatch: 0,
    httplog: false,
    tcplog: false,
    dontlognull: false,
    logs: [],
    connMode: 'keep-alive',
    balance: 'roundrobin',
    stats: { enabled: false, uri: '/haproxy?stats', auth: [], realm: 'HAProxy Statistics', hideVersion: false },
    defaultServer: {},
  };
}

function cloneDefaults(d: ProxyDefaults): ProxyDefaults {
  return {
    ...d,
    timeouts: { ...d.timeouts },
    logs: [...d.logs],
    stats: { ...d.stats, auth: [...d.stats.auth] },
    defaultServer: { ...d.defaultServer },
    forwardfor: d.forwardfor ? { ...d.forwardfor } : undefined,
    httpchk: d.httpchk ? { ...d.httpchk } : undefined,
    checkExpect: d.checkExpect ? { ...d.checkExpect } : undefined,
  };
}

const SERVER_FLAGS = new Set(['check', 'backup', 'disabled', 'enabled', 'no-check', 'no-backup']);
const SERVER_ARGS = new Set(['inter', 'fastinter', 'downinter', 'rise', 'fall', 'weight', 'maxconn', 'slowstart', 'observe', 'error-limit', 'on-error', 'port', 'id']);

function applyServerWords(s: Partial<ServerConfig>, w: string[], start: number): void {
  for (let i = start; i < w.length; i++) {
    const k = w[i];
    if (SERVER_FLAGS.has(k)) {
      if (k === 'check') s.check = true;
      else if (k === 'no-check') s.check = false;
      else if (k === 'backup') s.backup = true;
      else if (k === 'no-backup') s.backup = false;
      else if (k === 'disabled') s.disabled = true;
      else if (k === 'enabled') s.disabled = false;
      continue;
    }
    if (!SERVER_ARGS.has(k)) throw new Error(`unknown server keyword '${k}'`);
    const v = w[++i];
    if (v === undefined) throw new Error(`server keyword '${k}' expects an argument`);
    switch (k) {
      case 'inter':
      case 'fastinter':
      case 'downinter': {
        const t = parseTime(v);
        if (t <= 0) throw new Error(`'${k}' must be positive`);
        if (k === 'inter') s.inter = t;
        else if (k === 'fastinter') s.fastinter = t;
        else s.downinter = t;
        break;
      }
      case 'rise':
        s.rise = parseIntStrict(v, 'rise', 1, 1000);
        break;
      case 'fall':
        s.fall = parseIntStrict(v, 'fall', 1, 1000);
        break;
      case 'weight':
        s.weight = parseIntStrict(v, 'weight', 0, 256);
        break;
      case 'maxconn':
        s.maxconn = parseIntStrict(v, 'maxconn', 0);
        break;
      case 'slowstart':
        s.slowstart = parseTime(v);
        break;
      case 'observe':
        if (v !== 'layer4' && v !== 'layer7') throw new Error(`'observe' expects layer4 or layer7, got '${v}'`);
        s.observe = v;
        break;
      case 'error-limit':
        s.errorLimit = parseIntStrict(v, 'error-limit', 1);
        break;
      case 'on-error':
        if (v !== 'fastinter' && v !== 'fail-check' && v !== 'sudden-death' && v !== 'mark-down') throw new Error(`'on-error' expects fastinter, fail-check, sudden-death or mark-down, got '${v}'`);
        s.onError = v;
        break;
      case 'port':
        s.checkPort = parseIntStrict(v, 'port', 1, 65535);
        break;
      case 'id':
        s.id = parseIntStrict(v, 'id', 1);
        break;
    }
  }
}

interface Section {
  kind: 'global' | 'defaults' | 'listen' | 'frontend' | 'backend' | 'userlist' | 'none';
  proxy?: ProxyConfig & { acls: Map<string, Acl>; defaultServer: Partial<ServerConfig> };
}

const PROXY_KEYWORDS_FRONT = new Set(['bind', 'default_backend', 'use_backend', 'acl', 'monitor-uri', 'http-request', 'clitimeout']);
const PROXY_KEYWORDS_BACK = new Set(['server', 'default-server', 'balance', 'http-check', 'retries', 'fullconn', 'contimeout', 'srvtimeout']);

export interface ParseInput {
  file: string;
  text: string;
}

/** Parses one or more config files (in order, like repeated -f). Throws ConfigError with every alert. */
export function parseConfig(inputs: ParseInput[]): ParsedConfig {
  const alerts: Alert[] = [];
  const warnings: Alert[] = [];
  const global: GlobalConfig = { logs: [], maxconn: 4096, daemon: false, statsSockets: [], logTag: 'haproxy', cpuMaps: [] };
  let defaults = freshDefaults();
  let defaultsAcls = new Map<string, Acl>();
  const proxies: (ProxyConfig & { acls: Map<string, Acl>; defaultServer: Partial<ServerConfig> })[] = [];
  let globalMaxconnSet = false;
  let nextId = 1;

  for (const input of inputs) {
    let sec: Section = { kind: 'none' };
    const lines = input.text.split('\n');
    for (let ln = 0; ln < lines.length; ln++) {
      const where = { file: input.file, line: ln + 1 };
      let w: string[];
      try {
        w = tokenize(lines[ln]);
      } catch (e) {
        alerts.push({ ...where, keyword: '', message: (e as Error).message });
        continue;
      }
      if (w.length === 0) continue;
      const kw = w[0];
      try {
        if (kw === 'global' || kw === 'defaults' || kw === 'listen' || kw === 'frontend' || kw === 'backend' || kw === 'userlist') {
          if (sec.kind === 'defaults' && sec.proxy) {
            const { acls: _a, ...d } = sec.proxy;
            defaults = d as unknown as ProxyDefaults;
            defaultsAcls = new Map(sec.proxy.acls);
          }
          if (kw === 'global') {
            if (w.length > 1) throw new Error('takes no argument');
            sec = { kind: 'global' };
          } else if (kw === 'userlist') {
            throw new Error("'userlist' sections are not supported (use 'stats auth')");
          } else if (kw === 'defaults') {
            if (w.length > 2) throw new Error('expects at most a name');
            const d = freshDefaults();
            defaultsAcls = new Map();
            sec = { kind: 'defaults', proxy: { ...d, name: w[1] ?? '', kind: 'backend', id: 0, ...where, binds: [], servers: [], useBackends: [], services: [], acls: new Map() } };
          } else {
            const name = w[1];
            if (!name) throw new Error('expects a name');
            if (!/^[A-Za-z0-9_.:-]+$/.test(name)) throw new Error(`invalid character in proxy name '${name}'`);
            if (proxies.some((p) => p.name === name && (p.kind === 'listen' || kw === 'listen' || p.kind === kw))) throw new Error(`proxy '${name}' has the same name as another ${kw === 'backend' ? 'backend' : 'frontend'}`);
            const d = cloneDefaults(defaults);
            const p: ProxyConfig & { acls: Map<string, Acl>; defaultServer: Partial<ServerConfig> } = { ...d, name, kind: kw, id: nextId++, ...where, binds: [], servers: [], useBackends: [], services: [], acls: new Map(defaultsAcls) };
            sec = { kind: kw, proxy: p };
            proxies.push(p);
            if (w[2] !== undefined) {
              if (kw === 'backend') throw new Error('a backend takes no address');
              for (const a of w[2].split(',')) p.binds.push({ ...parseAddrPort(a, `${kw} '${name}'`), ...where });
              if (w.length > 3) throw new Error(`unexpected word '${w[3]}'`);
            }
          }
          continue;
        }
        if (sec.kind === 'none') throw new Error('unknown keyword outside of a section');
        if (sec.kind === 'global') {
          parseGlobal(global, w, where, warnings);
          if (kw === 'maxconn') globalMaxconnSet = true;
          continue;
        }
        const p = sec.proxy!;
        if (sec.kind === 'defaults') {
          if (PROXY_KEYWORDS_FRONT.has(kw) && kw !== 'clitimeout' && kw !== 'monitor-uri') throw new Error(`not allowed in a 'defaults' section`);
          if (kw === 'server') throw new Error(`not allowed in a 'defaults' section`);
        }
        if (sec.kind === 'backend' && PROXY_KEYWORDS_FRONT.has(kw) && kw !== 'clitimeout') throw new Error(`not allowed in a 'backend' section`);
        if (sec.kind === 'frontend' && PROXY_KEYWORDS_BACK.has(kw) && kw !== 'retries' && kw !== 'contimeout' && kw !== 'srvtimeout') throw new Error(`not allowed in a 'frontend' section`);
        parseProxyLine(p, p.acls, p.defaultServer, w, where, global, warnings);
      } catch (e) {
        alerts.push({ ...where, keyword: kw, message: (e as Error).message });
      }
    }
    if (sec.kind === 'defaults' && sec.proxy) {
      const { acls: _a, ...d } = sec.proxy;
      defaults = d as unknown as ProxyDefaults;
      defaultsAcls = new Map(sec.proxy.acls);
    }
  }

  // Cross-checks, as HAProxy does after parsing.
  const byName = (n: string, back: boolean) => proxies.find((p) => p.name === n && (back ? p.kind !== 'frontend' : p.kind !== 'backend'));
  for (const p of proxies) {
    if (!globalMaxconnSet && p.maxconn === 0) p.maxconn = global.maxconn;
    if (p.maxconn === 0) p.maxconn = global.maxconn;
    const where = { file: p.file, line: p.line };
    if (p.kind !== 'backend' && p.binds.length === 0) alerts.push({ ...where, keyword: p.kind, message: `proxy '${p.name}' has no 'bind' directive. Please declare it as a backend if this was intended.` });
    const targets = [...(p.defaultBackend ? [{ backend: p.defaultBackend, ...where }] : []), ...p.useBackends];
    for (const t of targets) {
      const b = byName(t.backend, true);
      if (!b) alerts.push({ file: t.file, line: t.line, keyword: t === targets[0] && p.defaultBackend ? 'default_backend' : 'use_backend', message: `unable to find required backend '${t.backend}' for proxy '${p.name}'` });
      else if (b.mode !== p.mode && p.kind !== 'backend') alerts.push({ file: t.file, line: t.line, keyword: 'use_backend', message: `${p.mode.toUpperCase()} proxy '${p.name}' cannot use ${b.mode.toUpperCase()} backend '${b.name}'` });
    }
    const seen = new Set<string>();
    for (const s of p.servers) {
      if (seen.has(s.name)) alerts.push({ file: s.file, line: s.line, keyword: 'server', message: `proxy '${p.name}' has two servers named '${s.name}'` });
      seen.add(s.name);
    }
    if (p.mode === 'tcp') {
      if (p.httplog) warnings.push({ ...where, keyword: 'option httplog', message: `'option httplog' not usable with proxy '${p.name}' (needs 'mode http'). Falling back to 'option tcplog'.` });
      if (p.httplog) {
        p.httplog = false;
        p.tcplog = true;
      }
      if (p.stats.enabled) alerts.push({ ...where, keyword: 'stats', message: `'stats' needs 'mode http' in proxy '${p.name}'` });
      if (p.useBackends.length || p.services.length) alerts.push({ ...where, keyword: 'use_backend', message: `HTTP rules need 'mode http' in proxy '${p.name}'` });
    }
    const missing = (p.kind !== 'backend' ? ['client'] : []).concat(p.kind !== 'frontend' ? ['connect', 'server'] : []).filter((k) => !p.timeouts[k as keyof Timeouts]);
    if (missing.length) warnings.push({ ...where, keyword: p.kind, message: `proxy '${p.name}' has no ${missing.map((m) => `'timeout ${m}'`).join(', ')}: idle connections are never closed (connect defaults to 5s)` });
    if (p.balance === 'uri' && p.mode !== 'http') alerts.push({ ...where, keyword: 'balance', message: "'balance uri' needs 'mode http'" });
  }
  // HAProxy numbers its internal CLI proxy first when a stats socket exists: same ids as HAProxy in the stats
  if (global.statsSockets.length) for (const p of proxies) p.id++;
  if (alerts.length) throw new ConfigError(alerts);
  const out: ProxyConfig[] = proxies.map((p) => {
    const { acls: _a, defaultServer: _d, ...rest } = p;
    return rest;
  });
  return { files: inputs.map((i) => i.file), global, proxies: out, warnings };
}

function parseGlobal(g: GlobalConfig, w: string[], where: Where, warnings: Alert[]): void {
  const kw = w[0];
  const one = (): string => {
    if (w[1] === undefined) throw new Error('expects an argument');
    if (w.length > 2) throw new Error(`unexpected word '${w[2]}'`);
    return w[1];
  };
  switch (kw) {
    case 'log':
      g.logs.push(...parseLog(w, null));
      return;
    case 'maxconn':
      g.maxconn = parseIntStrict(one(), 'maxconn', 1);
      return;
    case 'user':
      g.user = one();
      return;
    case 'group':
      g.group = one();
      return;
    case 'uid':
      g.uid = parseIntStrict(one(), 'uid', 0);
      return;
    case 'gid':
      g.gid = parseIntStrict(one(), 'gid', 0);
      return;
    case 'daemon':
      if (w.length > 1) throw new Error('takes no argument');
      g.daemon = true;
      return;
    case 'nbthread':
    case 'nbproc':
      g.nbthread = parseIntStrict(one(), kw, 1, 64);
      return;
    case 'cpu-map':
      g.cpuMaps.push({ ...parseCpuMap(w.slice(1)), ...where });
      return;
    case 'pidfile':
      g.pidfile = one();
      return;
    case 'log-tag':
      g.logTag = one();
      return;
    case 'node':
      g.node = one();
      return;
    case 'stats': {
      if (w[1] === 'socket') {
        const path = w[2];
        if (!path) throw new Error("'stats socket' expects a path");
        if (!path.startsWith('/')) throw new Error("'stats socket' supports UNIX socket paths only");
        const s: StatsSocketConfig = { path, level: 'user', ...where };
        for (let i = 3; i < w.length; i += 2) {
          const v = w[i + 1];
          if (w[i] === 'mode') s.mode = parseInt(v ?? '', 8);
          else if (w[i] === 'level') {
            if (v !== 'user' && v !== 'operator' && v !== 'admin') throw new Error(`'level' expects user, operator or admin`);
            s.level = v;
          } else if (w[i] === 'expose-fd' && v === 'listeners') {
            warnings.push({ ...where, keyword: 'stats socket', message: "'expose-fd listeners' is not needed: listening sockets are kept across reloads" });
            continue;
          }
          else throw new Error(`unsupported 'stats socket' option '${w[i]}'`);
          if (v === undefined || (w[i] === 'mode' && Number.isNaN(s.mode))) throw new Error(`'${w[i]}' expects a value`);
        }
        g.statsSockets.push(s);
        return;
      }
      if (w[1] === 'timeout') {
        g.statsTimeout = parseTime(w[2] ?? '');
        return;
      }
      throw new Error(`unsupported 'stats' keyword '${w[1] ?? ''}' in global section`);
    }
    case 'chroot':
    case 'quiet':
    case 'tune.bufsize':
    case 'spread-checks':
      throw new Error(`'${kw}' is not supported by this proxy`);
    default:
      void warnings;
      throw new Error('unknown keyword in global section');
  }
}

function parseProxyLine(
  p: ProxyConfig,
  acls: Map<string, Acl>,
  ds: Partial<ServerConfig>,
  w: string[],
  where: Where,
  global: GlobalConfig,
  warnings: Alert[],
): void {
  const kw = w[0];
  const one = (): string => {
    if (w[1] === undefined) throw new Error('expects an argument');
    if (w.length > 2) throw new Error(`unexpected word '${w[2]}'`);
    return w[1];
  };
  switch (kw) {
    case 'mode': {
      const m = one();
      if (m !== 'http' && m !== 'tcp') throw new Error(`expects 'http' or 'tcp', got '${m}'`);
      p.mode = m;
      return;
    }
    case 'log':
      if (w[1] === 'global') {
        if (w.length > 2) throw new Error(`unexpected word '${w[2]}'`);
        p.logs.push(...global.logs);
      } else p.logs.push(...parseLog(w, global.logs));
      return;
    case 'no':
      if (w[1] === 'log' && w.length === 2) {
        p.logs = [];
        return;
      }
      if (w[1] !== 'option') throw new Error(`'no' is only supported before 'option' or 'log'`);
      parseOption(p, w.slice(2), true);
      return;
    case 'option':
      parseOption(p, w.slice(1), false);
      return;
    case 'maxconn':
      p.maxconn = parseIntStrict(one(), 'maxconn', 0);
      return;
    case 'fullconn':
      p.fullconn = parseIntStrict(one(), 'fullconn', 0);
      return;
    case 'retries':
      p.retries = parseIntStrict(one(), 'retries', 0, 100);
      return;
    case 'contimeout':
    case 'clitimeout':
    case 'srvtimeout': {
      const t = parseTime(one());
      if (kw === 'contimeout') p.timeouts.connect = t;
      else if (kw === 'clitimeout') p.timeouts.client = t;
      else p.timeouts.server = t;
      warnings.push({ ...where, keyword: kw, message: `the '${kw}' directive is deprecated; use 'timeout ${kw === 'contimeout' ? 'connect' : kw === 'clitimeout' ? 'client' : 'server'}' instead` });
      return;
    }
    case 'timeout': {
      const which = w[1];
      const v = w[2];
      if (!which || v === undefined) throw new Error("expects a timeout name and a value (e.g. 'timeout connect 5s')");
      if (w.length > 3) throw new Error(`unexpected word '${w[3]}'`);
      const t = parseTime(v);
      const map: Record<string, keyof Timeouts> = {
        connect: 'connect', client: 'client', server: 'server', queue: 'queue', 'http-request': 'httpRequest',
        'http-keep-alive': 'httpKeepAlive', check: 'check', tunnel: 'tunnel',
      };
      const k = map[which];
      if (!k) throw new Error(`unsupported timeout '${which}' (connect, client, server, queue, http-request, http-keep-alive, check, tunnel)`);
      p.timeouts[k] = t;
      return;
    }
    case 'bind': {
      const addr = w[1];
      if (!addr) throw new Error('expects an address:port');
      if (w.length > 2) throw new Error(`unsupported bind option '${w[2]}'`);
      for (const a of addr.split(',')) p.binds.push({ ...parseAddrPort(a, 'bind'), ...where });
      return;
    }
    case 'balance': {
      const a = w[1];
      if (a !== 'roundrobin' && a !== 'static-rr' && a !== 'leastconn' && a !== 'source' && a !== 'uri' && a !== 'first') throw new Error(`unsupported algorithm '${a ?? ''}' (roundrobin, static-rr, leastconn, source, uri, first)`);
      if (w.length > 2 && a !== 'uri') throw new Error(`unexpected word '${w[2]}'`);
      if (a === 'uri' && w.length > 2 && !(w.length === 3 && w[2] === 'whole')) throw new Error(`unsupported 'balance uri' option '${w[2]}'`);
      p.balance = a;
      p.balanceArg = w[2];
      return;
    }
    case 'server': {
      const name = w[1];
      const addr = w[2];
      if (!name || !addr) throw new Error('expects <name> and <addr>:<port>');
      const { host, port } = parseAddrPort(addr, `server '${name}'`);
      if (!host) throw new Error(`server '${name}' needs an address`);
      const s: Partial<ServerConfig> = { ...ds };
      applyServerWords(s, w, 3);
      const inter = s.inter ?? 2000;
      p.servers.push({
        name, host, port, ...where,
        check: s.check ?? false, inter, fastinter: s.fastinter, downinter: s.downinter, rise: s.rise ?? 2, fall: s.fall ?? 3,
        weight: s.weight ?? 1, maxconn: s.maxconn ?? 0, backup: s.backup ?? false, slowstart: s.slowstart ?? 0,
        disabled: s.disabled ?? false, observe: s.observe, errorLimit: s.errorLimit ?? 10, onError: s.onError ?? 'fail-check', checkPort: s.checkPort,
        id: w.includes('id') ? s.id : undefined,
      });
      return;
    }
    case 'default-server':
      applyServerWords(ds, w, 1);
      return;
    case 'stats':
      parseStats(p, w);
      return;
    case 'default_backend':
      p.defaultBackend = one();
      return;
    case 'use_backend': {
      const b = w[1];
      if (!b || b === 'if' || b === 'unless') throw new Error('expects a backend name');
      if (w.length === 2) throw new Error("expects 'if' or 'unless' followed by a condition");
      p.useBackends.push({ backend: b, cond: parseCondition(w.slice(2), acls), ...where });
      return;
    }
    case 'acl': {
      const name = w[1];
      if (!name || !/^[A-Za-z0-9_.:-]+$/.test(name)) throw new Error('expects an ACL name');
      const a = parseAclExpr(name, w.slice(2));
      const prev = acls.get(name);
      if (prev && prev.fetch === a.fetch && prev.header === a.header) {
        // Same name again: HAProxy ORs the patterns of repeated ACL lines.
        prev.values.push(...a.values);
      } else if (prev) throw new Error(`ACL '${name}' is already defined with another criterion`);
      else acls.set(name, a);
      return;
    }
    case 'http-request': {
      if (w[1] === 'use-service' && w[2] === 'prometheus-exporter') {
        const cond = w.length > 3 ? parseCondition(w.slice(3), acls) : undefined;
        p.services.push({ service: 'prometheus-exporter', cond, ...where });
        return;
      }
      throw new Error(`unsupported 'http-request' action '${w.slice(1).join(' ')}' (only 'use-service prometheus-exporter [if ...]')`);
    }
    case 'http-check': {
      if (w[1] !== 'expect') throw new Error(`unsupported 'http-check' keyword '${w[1] ?? ''}' (only 'expect')`);
      let i = 2;
      let negate = false;
      if (w[i] === '!') {
        negate = true;
        i++;
      }
      const k = w[i];
      const v = w[i + 1];
      if ((k !== 'status' && k !== 'rstatus' && k !== 'string') || v === undefined) throw new Error("expects 'status <codes>', 'rstatus <regex>' or 'string <text>'");
      if (w.length > i + 2) throw new Error(`unexpected word '${w[i + 2]}'`);
      if (k === 'status' && !/^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$/.test(v)) throw new Error(`invalid status list '${v}'`);
      if (k === 'rstatus') new RegExp(v);
      p.checkExpect = { kind: k, negate, value: v };
      return;
    }
    case 'monitor-uri':
      p.monitorUri = one();
      return;
    case 'description':
      if (w.length < 2) throw new Error('expects a text');
      p.description = w.slice(1).join(' ');
      return;
    default:
      throw new Error(`unknown keyword '${kw}' in '${p.kind}' section`);
  }
}

function parseOption(p: ProxyConfig, w: string[], no: boolean): void {
  const o = w[0];
  if (!o) throw new Error('expects an option name');
  const noArgs = () => {
    if (w.length > 1) throw new Error(`option '${o}' takes no argument`);
  };
  switch (o) {
    case 'httplog':
      if (w[1] !== undefined && w[1] !== 'clf') throw new Error(`unexpected word '${w[1]}'`);
      if (w[1] === 'clf') throw new Error("'option httplog clf' is not supported");
      p.httplog = !no;
      if (!no) p.tcplog = false;
      return;
    case 'tcplog':
      noArgs();
      p.tcplog = !no;
      if (!no) p.httplog = false;
      return;
    case 'dontlognull':
      noArgs();
      p.dontlognull = !no;
      return;
    case 'redispatch': {
      if (w.length > 2) throw new Error(`unexpected word '${w[2]}'`);
      if (no) p.redispatch = 0;
      else {
        const n = w[1] === undefined ? -1 : parseIntStrict(w[1], 'redispatch interval', -100, 100);
        p.redispatch = n;
      }
      return;
    }
    case 'httpclose':
    case 'forceclose':
      noArgs();
      p.connMode = no ? 'keep-alive' : 'close';
      return;
    case 'http-server-close':
      noArgs();
      p.connMode = no ? 'keep-alive' : 'server-close';
      return;
    case 'http-keep-alive':
      noArgs();
      p.connMode = 'keep-alive';
      return;
    case 'forwardfor': {
      if (no) {
        p.forwardfor = undefined;
        return;
      }
      const f: NonNullable<ProxyConfig['forwardfor']> = { header: 'X-Forwarded-For', ifnone: false };
      for (let i = 1; i < w.length; i++) {
        if (w[i] === 'except') {
          const v = w[++i] ?? '';
          const [a, b] = v.split('/');
          const addr = ipv4ToInt(a);
          const bits = b === undefined ? 32 : Number(b);
          if (addr === null || !(bits >= 0 && bits <= 32)) throw new Error(`'except' expects an IPv4 network, got '${v}'`);
          f.except = { addr, bits };
        } else if (w[i] === 'header') {
          const h = w[++i];
          if (!h || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(h)) throw new Error("'header' expects a header name");
          f.header = h;
        } else if (w[i] === 'if-none') f.ifnone = true;
        else throw new Error(`unexpected word '${w[i]}' (except, header, if-none)`);
      }
      p.forwardfor = f;
      return;
    }
    case 'httpchk': {
      if (no) {
        p.httpchk = undefined;
        return;
      }
      let method = 'OPTIONS';
      let uri = '/';
      let version = 'HTTP/1.0';
      let host: string | undefined;
      if (w.length === 2) uri = w[1];
      else if (w.length >= 3) {
        method = w[1];
        uri = w[2];
        if (w[3] !== undefined) {
          // HAProxy 1.x put extra headers after the version with "\r\n"; accept "HTTP/1.1\r\nHost:\ name".
          const parts = w.slice(3).join(' ').split('\r\n');
          version = parts[0];
          for (const h of parts.slice(1)) {
            const m = /^host:\s*(.+)$/i.exec(h);
            if (m) host = m[1];
            else if (h) throw new Error(`unsupported header in 'option httpchk': '${h}'`);
          }
        }
      }
      if (!/^[A-Z]+$/.test(method)) throw new Error(`invalid method '${method}'`);
      if (!/^\S+$/.test(uri)) throw new Error(`invalid URI '${uri}'`);
      if (version !== 'HTTP/1.0' && version !== 'HTTP/1.1') throw new Error(`invalid version '${version}'`);
      p.httpchk = { method, uri, version, host };
      return;
    }
    case 'tcp-check':
    case 'abortonclose':
    case 'allbackups':
    case 'persist':
    case 'http-pretend-keepalive':
    case 'splice-auto':
      throw new Error(`option '${o}' is not supported by this proxy`);
    default:
      throw new Error(`unknown option '${o}'`);
  }
}

function parseStats(p: ProxyConfig, w: string[]): void {
  const k = w[1];
  switch (k) {
    case 'enable':
      p.stats.enabled = true;
      return;
    case 'uri':
      if (!w[2]) throw new Error("'stats uri' expects a URI prefix");
      p.stats.uri = w[2];
      p.stats.enabled = true;
      return;
    case 'auth': {
      const m = /^([^:]+):(.*)$/.exec(w[2] ?? '');
      if (!m) throw new Error("'stats auth' expects <user>:<password>");
      p.stats.auth.push({ user: m[1], pass: m[2] });
      p.stats.enabled = true;
      return;
    }
    case 'refresh':
      p.stats.refresh = Math.max(1, Math.round(parseTime(w[2] ?? '') / 1000)) || 1;
      if (/^\d+$/.test(w[2] ?? '')) p.stats.refresh = Number(w[2]);
      p.stats.enabled = true;
      return;
    case 'realm':
      if (!w[2]) throw new Error("'stats realm' expects a realm");
      p.stats.realm = w.slice(2).join(' ');
      return;
    case 'hide-version':
      p.stats.hideVersion = true;
      return;
    case 'show-legends': // the page always shows the legend
      return;
    case 'show-node':
      p.stats.showNode = w[2] ?? '';
      return;
    default:
      throw new Error(`unsupported 'stats' keyword '${k ?? ''}' (enable, uri, auth, refresh, realm, hide-version)`);
  }
}

/** Reads and parses config files from disk. */
export function loadConfigFiles(files: string[]): ParsedConfig {
  const inputs: ParseInput[] = [];
  const alerts: Alert[] = [];
  for (const f of files) {
    try {
      inputs.push({ file: f, text: readFileSync(f, 'utf8') });
    } catch (e) {
      alerts.push({ file: f, line: 0, keyword: '-f', message: `could not open configuration file: ${(e as Error).message}` });
    }
  }
  if (alerts.length) throw new ConfigError(alerts);
  return parseConfig(inputs);
}

/** Effective timeouts with HAProxy's fallbacks. */
export function effectiveTimeouts(front: ProxyConfig, back: ProxyConfig) {
  const client = front.timeouts.client ?? 0;
  const server = back.timeouts.server ?? 0;
  const connect = back.timeouts.connect ?? 5000;
  const httpRequest = front.timeouts.httpRequest ?? client;
  return {
    client,
    server,
    connect,
    queue: back.timeouts.queue ?? connect,
    httpRequest,
    httpKeepAlive: front.timeouts.httpKeepAlive ?? httpRequest,
    tunnel: back.timeouts.tunnel ?? front.timeouts.tunnel ?? Math.max(client, server),
  };
}
