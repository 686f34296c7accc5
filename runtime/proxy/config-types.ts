// The configuration model of haproxy.cfg as the proxy uses it: what config.ts and its keyword parsers produce.

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

export type AclFetch =
  | 'path'
  | 'path_beg'
  | 'path_end'
  | 'path_sub'
  | 'path_reg'
  | 'hdr'
  | 'hdr_beg'
  | 'hdr_end'
  | 'hdr_sub'
  | 'method'
  | 'src'
  | 'ssl_fc'
  | 'nbsrv';

/** An integer match: `lt 1`, `ge 2`, or a plain value (equal). */
export interface IntMatch {
  op: 'eq' | 'ge' | 'gt' | 'le' | 'lt';
  value: number;
}

export interface Acl {
  name: string;
  fetch: AclFetch;
  header?: string; // hdr*(name), lower case
  /** nbsrv(name): the backend whose usable servers are counted */
  backend?: string;
  ignoreCase: boolean;
  values: string[];
  /** the integer matches of an integer fetch (nbsrv), any of which matches */
  ints?: IntMatch[];
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

export type RetryOn = 'conn-failure' | 'empty-response' | 'response-timeout';
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
  cookie?: string; // `cookie VALUE`: the value that names this server in the persistence cookie
}

/**
 * A backend's `cookie NAME [insert|rewrite|prefix] [indirect] [nocache] [postonly] [preserve] [httponly] [secure]
 * [domain D]`: cookie persistence. passive: no mode word, the application sets the cookie itself.
 */
export interface CookieConfig {
  name: string;
  mode: 'insert' | 'rewrite' | 'prefix' | 'passive';
  indirect: boolean;
  nocache: boolean;
  postonly: boolean;
  preserve: boolean;
  httponly: boolean;
  secure: boolean;
  domains: string[];
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
  tls?: TlsBind; // `ssl`: TLS is terminated here
}

/** One certificate of a TLS bind: its chain and key (PEM, as read at parse time), and the names it serves. */
export interface TlsCert {
  file: string;
  cert: string;
  key: string;
  names: string[]; // DNS names from the subject CN and the subjectAltName (lower case, "*.x" wildcards)
}

/** A `bind ... ssl crt ...`: the certificates (the first is the default), ALPN, versions and ciphers. */
export interface TlsBind {
  certs: TlsCert[];
  alpn?: string[];
  minVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  ciphers: string; // TLS 1.2 and below (OpenSSL cipher list)
  ciphersuites: string; // TLS 1.3
  strictSni: boolean;
  noTickets: boolean; // no TLS session tickets (no-tls-tickets)
}

/** An `http-request` (or `redirect`) rule other than use-service: run in order, before the switching rules. */
export type HttpRule = Where & { cond?: Condition } & (
    | { action: 'redirect-scheme'; scheme: string; code: number }
    | { action: 'set-header' | 'add-header'; name: string; value: string }
    | { action: 'del-header'; name: string }
  );

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
  /** What a request is tried again on (HTTP): retry-on; HAProxy's default is conn-failure alone. */
  retryOn: RetryOn[];
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
  httpRules: HttpRule[];
  servers: ServerConfig[];
  cookie?: CookieConfig;
  /** option abortonclose: a request whose client closed (or half-closed) while it waits for a server is dropped */
  abortonclose: boolean;
  /** errorfile: status -> the whole response sent in place of the proxy's own (latin1) */
  errorfiles: Record<number, string>;
  monitorUri?: string;
  /** monitor fail if|unless COND: the monitor-uri answers 503 while it holds */
  monitorFail?: Condition;
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
  nbthread?: number; // worker threads
  /** ssl-default-bind-*, crt-base: what a `bind ... ssl` line starts from */
  tlsDefaults: TlsDefaults;
  statsSockets: StatsSocketConfig[];
  pidfile?: string;
  logTag: string;
  node?: string;
  statsTimeout?: number; // ms an interactive stats socket session may stay idle (default 10 s)
  cpuMaps: CpuMap[];
}

export interface TlsDefaults {
  ciphers?: string;
  ciphersuites?: string;
  minVersion?: TlsBind['minVersion'];
  maxVersion?: TlsBind['maxVersion'];
  crtBase?: string;
  noTickets?: boolean;
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

/** An alert or warning as HAProxy prints it (the keyword in quotes first, unless the message names it itself). */
export function formatAlert(a: Alert, level = 'ALERT'): string {
  return `[${level}] ${a.file ? `parsing [${a.file}:${a.line}] : ` : ''}${a.keyword ? `'${a.keyword}' : ` : ''}${a.message}`;
}
