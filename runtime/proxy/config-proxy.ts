// The keywords of the proxy sections (defaults, listen, frontend, backend): options, timeouts, binds, servers,
// balancing, health checks, stats (ACLs and rules: config-rules.ts; server lines: config-server.ts).
import type { Acl, Alert, GlobalConfig, ProxyConfig, RetryOn, ServerConfig, Timeouts, Where } from './config-types.ts';
import { ipv4ToInt, oneArg, parseAddrPort, parseIntStrict, parseLog, parseTime } from './config-values.ts';
import { parseBindTls } from './config-tls.ts';
import { parseAclExpr, parseCondition, parseHttpRequest, parseRedirect } from './config-rules.ts';
import { applyServerWords, parseServerLine } from './config-server.ts';
import { parseCookie } from './config-cookie.ts';
import { loadErrorfile } from './errorfile.ts';
export type ProxyDefaults = Omit<
  ProxyConfig,
  'name' | 'kind' | 'id' | 'file' | 'line' | 'binds' | 'servers' | 'useBackends' | 'services' | 'httpRules'
> & {
  defaultServer: Partial<ServerConfig>;
};

const RETRY_ON = new Set<RetryOn>(['conn-failure', 'empty-response', 'response-timeout']);
/** retry-on KEYWORD...: none, or what hasetup-proxy retries on; HAProxy's other keywords are refused by name. */
function parseRetryOn(words: string[]): RetryOn[] {
  if (words.length === 0) throw new Error("'retry-on' expects 'none' or a list of conn-failure, empty-response, response-timeout");
  if (words.length === 1 && words[0] === 'none') return [];
  for (const v of words)
    if (!RETRY_ON.has(v as RetryOn))
      throw new Error(
        `unsupported 'retry-on' value '${v}' (hasetup-proxy retries on none, conn-failure, empty-response, response-timeout)`,
      );
  return [...new Set(words as RetryOn[])];
}

export function freshDefaults(): ProxyDefaults {
  return {
    mode: 'tcp',
    maxconn: 0,
    timeouts: {},
    retries: 3,
    retryOn: ['conn-failure'],
    redispatch: 0,
    httplog: false,
    tcplog: false,
    dontlognull: false,
    logs: [],
    connMode: 'keep-alive',
    balance: 'roundrobin',
    stats: { enabled: false, uri: '/haproxy?stats', auth: [], realm: 'HAProxy Statistics', hideVersion: false },
    defaultServer: {},
    abortonclose: false,
    errorfiles: {},
  };
}

export function cloneDefaults(d: ProxyDefaults): ProxyDefaults {
  return {
    ...d,
    timeouts: { ...d.timeouts },
    logs: [...d.logs],
    stats: { ...d.stats, auth: [...d.stats.auth] },
    defaultServer: { ...d.defaultServer },
    errorfiles: { ...d.errorfiles },
    forwardfor: d.forwardfor ? { ...d.forwardfor } : undefined,
    httpchk: d.httpchk ? { ...d.httpchk } : undefined,
    checkExpect: d.checkExpect ? { ...d.checkExpect } : undefined,
  };
}

export function parseProxyLine(
  p: ProxyConfig,
  acls: Map<string, Acl>,
  ds: Partial<ServerConfig>,
  w: string[],
  where: Where,
  global: GlobalConfig,
  warnings: Alert[],
): void {
  const kw = w[0];
  const one = (): string => oneArg(w);
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
    case 'retry-on':
      p.retryOn = parseRetryOn(w.slice(1));
      return;
    case 'contimeout':
    case 'clitimeout':
    case 'srvtimeout': {
      const t = parseTime(one());
      if (kw === 'contimeout') p.timeouts.connect = t;
      else if (kw === 'clitimeout') p.timeouts.client = t;
      else p.timeouts.server = t;
      warnings.push({
        ...where,
        keyword: kw,
        message: `the '${kw}' directive is not supported by HAProxy since 2.1 (accepted here for configurations of the 1.x era); use 'timeout ${kw === 'contimeout' ? 'connect' : kw === 'clitimeout' ? 'client' : 'server'}'`,
      });
      return;
    }
    case 'timeout': {
      const which = w[1];
      const v = w[2];
      if (!which || v === undefined) throw new Error("expects a timeout name and a value (e.g. 'timeout connect 5s')");
      if (w.length > 3) throw new Error(`unexpected word '${w[3]}'`);
      const t = parseTime(v);
      const map: Record<string, keyof Timeouts> = {
        connect: 'connect',
        client: 'client',
        server: 'server',
        queue: 'queue',
        'http-request': 'httpRequest',
        'http-keep-alive': 'httpKeepAlive',
        check: 'check',
        tunnel: 'tunnel',
      };
      const k = map[which];
      if (!k)
        throw new Error(`unsupported timeout '${which}' (connect, client, server, queue, http-request, http-keep-alive, check, tunnel)`);
      p.timeouts[k] = t;
      return;
    }
    case 'bind': {
      const addr = w[1];
      if (!addr) throw new Error('expects an address:port');
      const tls = parseBindTls(w.slice(2), global.tlsDefaults);
      for (const a of addr.split(',')) p.binds.push({ ...parseAddrPort(a, 'bind'), ...where, ...(tls ? { tls } : {}) });
      return;
    }
    case 'redirect':
      p.httpRules.push(parseRedirect(w.slice(1), acls, where));
      return;
    case 'balance': {
      const a = w[1];
      if (a !== 'roundrobin' && a !== 'static-rr' && a !== 'leastconn' && a !== 'source' && a !== 'uri' && a !== 'first')
        throw new Error(`unsupported algorithm '${a ?? ''}' (roundrobin, static-rr, leastconn, source, uri, first)`);
      if (w.length > 2 && a !== 'uri') throw new Error(`unexpected word '${w[2]}'`);
      if (a === 'uri' && w.length > 2 && !(w.length === 3 && w[2] === 'whole'))
        throw new Error(`unsupported 'balance uri' option '${w[2]}'`);
      p.balance = a;
      p.balanceArg = w[2];
      return;
    }
    case 'server':
      p.servers.push(parseServerLine(w, ds, where));
      return;
    case 'default-server':
      applyServerWords(ds, w, 1);
      return;
    case 'cookie':
      p.cookie = parseCookie(w, where, warnings);
      return;
    case 'errorfile': {
      const e = loadErrorfile(w, where, warnings);
      p.errorfiles[e.code] = e.response;
      return;
    }
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
      if (prev && prev.fetch === a.fetch && prev.header === a.header && prev.backend === a.backend) {
        // Same name again: HAProxy ORs the patterns of repeated ACL lines.
        prev.values.push(...a.values);
        if (a.ints) prev.ints = [...(prev.ints ?? []), ...a.ints];
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
      p.httpRules.push(parseHttpRequest(w.slice(1), acls, where));
      return;
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
      if ((k !== 'status' && k !== 'rstatus' && k !== 'string') || v === undefined)
        throw new Error("expects 'status <codes>', 'rstatus <regex>' or 'string <text>'");
      if (w.length > i + 2) throw new Error(`unexpected word '${w[i + 2]}'`);
      if (k === 'status' && !/^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$/.test(v)) throw new Error(`invalid status list '${v}'`);
      if (k === 'rstatus') new RegExp(v);
      p.checkExpect = { kind: k, negate, value: v };
      return;
    }
    case 'monitor-uri':
      p.monitorUri = one();
      return;
    case 'monitor':
      // monitor fail if|unless COND: the monitor-uri answers 503 while COND holds (e.g. { nbsrv(web) lt 1 })
      if (w[1] !== 'fail') throw new Error("expects 'fail' followed by 'if' or 'unless' and a condition");
      p.monitorFail = parseCondition(w.slice(2), acls);
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
    case 'forceclose':
      throw new Error(
        "option 'forceclose' is not supported any more since HAProxy 2.0, please just remove it, or use 'option httpclose' if absolutely needed.",
      );
    case 'abortonclose':
      noArgs();
      p.abortonclose = !no;
      return;
    case 'tcp-check':
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
