// haproxy.cfg parser: sections, the cross-checks HAProxy makes once every file is read, and the timeouts in force.
// Accepts the HAProxy 1.3 spelling of the seed (address on the `listen` line, contimeout/clitimeout/
// srvtimeout) and the modern one (bind, timeout *). Every keyword is either understood or an error.
// The keywords themselves: config-global.ts and config-proxy.ts; the model: config-types.ts.
import { readFileSync } from 'node:fs';
import {
  ConfigError,
  type Acl,
  type Alert,
  type GlobalConfig,
  type ParsedConfig,
  type ProxyConfig,
  type ServerConfig,
  type Timeouts,
} from './config-types.ts';
import { parseAddrPort, tokenize } from './config-values.ts';
import { parseGlobal } from './config-global.ts';
import { cloneDefaults, freshDefaults, parseProxyLine, type ProxyDefaults } from './config-proxy.ts';
import { scopeVerdict, type SectionKind } from './config-scope.ts';
import { parseCookie } from './config-cookie.ts';

export * from './config-types.ts';
export { LEVELS, ipv4ToInt, parseAddrPort, parseTime, tokenize } from './config-values.ts';
export { workerCpus } from './config-global.ts';

/** A proxy section while it is read: its ACLs by name and its default-server line go with it. */
type OpenProxy = ProxyConfig & { acls: Map<string, Acl>; defaultServer: Partial<ServerConfig> };

interface Section {
  kind: 'global' | 'defaults' | 'listen' | 'frontend' | 'backend' | 'userlist' | 'none';
  proxy?: OpenProxy;
}

/** A section's proxy: the settings it starts from (`d`), its name, kind and place, nothing its lines add yet. */
function openProxy(d: ProxyDefaults, head: Pick<ProxyConfig, 'name' | 'kind' | 'id' | 'file' | 'line'>, acls: Map<string, Acl>): OpenProxy {
  return { ...d, ...head, binds: [], servers: [], useBackends: [], services: [], httpRules: [], acls };
}

export interface ParseInput {
  file: string;
  text: string;
}

/** Parses one or more config files (in order, like repeated -f). Throws ConfigError with every alert. */
export function parseConfig(inputs: ParseInput[]): ParsedConfig {
  const alerts: Alert[] = [];
  const warnings: Alert[] = [];
  const global: GlobalConfig = {
    logs: [],
    maxconn: 4096,
    daemon: false,
    statsSockets: [],
    logTag: 'haproxy',
    cpuMaps: [],
    tlsDefaults: {},
  };
  let defaults = freshDefaults();
  let defaultsAcls = new Map<string, Acl>();
  const proxies: OpenProxy[] = [];
  let globalMaxconnSet = false;
  let nextId = 1;
  const ownChecks = new Set<object>(); // proxies with an http-check line of their own (not from defaults)

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
            defaultsAcls = new Map();
            sec = {
              kind: 'defaults',
              proxy: openProxy(freshDefaults(), { name: w[1] ?? '', kind: 'backend', id: 0, ...where }, new Map()),
            };
          } else {
            const name = w[1];
            if (!name) throw new Error('expects a name');
            if (!/^[A-Za-z0-9_.:-]+$/.test(name)) throw new Error(`invalid character in proxy name '${name}'`);
            if (proxies.some((p) => p.name === name && (p.kind === 'listen' || kw === 'listen' || p.kind === kw)))
              throw new Error(`proxy '${name}' has the same name as another ${kw === 'backend' ? 'backend' : 'frontend'}`);
            const p = openProxy(cloneDefaults(defaults), { name, kind: kw, id: nextId++, ...where }, new Map(defaultsAcls));
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
        // a keyword out of its place: refused, or ignored with a warning, as HAProxy does
        const verdict = scopeVerdict(sec.kind as SectionKind, p.name, w);
        if (verdict?.level === 'ALERT') {
          alerts.push({ ...where, keyword: '', message: verdict.message });
          continue;
        }
        if (verdict) {
          warnings.push({ ...where, keyword: '', message: verdict.message });
          if (kw === 'http-check') ownChecks.add(p);
          if (kw === 'cookie') parseCookie(w, where, warnings); // (ignored, but HAProxy still refuses a wrong one)
          continue;
        }
        parseProxyLine(p, p.acls, p.defaultServer, w, where, global, warnings);
        if (kw === 'http-check') ownChecks.add(p);
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
    if (p.kind !== 'backend' && p.binds.length === 0)
      alerts.push({
        ...where,
        keyword: p.kind,
        message: `proxy '${p.name}' has no 'bind' directive. Please declare it as a backend if this was intended.`,
      });
    if (p.kind === 'backend') p.defaultBackend = undefined; // from a defaults section: a backend has no use for it
    const targets = [...(p.defaultBackend ? [{ backend: p.defaultBackend, ...where }] : []), ...p.useBackends];
    for (const t of targets) {
      const b = byName(t.backend, true);
      if (!b)
        alerts.push({
          file: t.file,
          line: t.line,
          keyword: t === targets[0] && p.defaultBackend ? 'default_backend' : 'use_backend',
          message: `unable to find required backend '${t.backend}' for proxy '${p.name}'`,
        });
      else if (b.mode !== p.mode && p.kind !== 'backend')
        alerts.push({
          file: t.file,
          line: t.line,
          keyword: 'use_backend',
          message: `${p.mode.toUpperCase()} proxy '${p.name}' cannot use ${b.mode.toUpperCase()} backend '${b.name}'`,
        });
    }
    // nbsrv(<backend>) in a condition names a backend that exists
    const conds = [p.monitorFail, ...p.useBackends.map((u) => u.cond), ...p.httpRules.map((r) => r.cond), ...p.services.map((r) => r.cond)];
    for (const c of conds)
      for (const g of c?.groups ?? [])
        for (const t of g)
          for (const a of t.acls)
            if (a.fetch === 'nbsrv' && !byName(a.backend!, true))
              alerts.push({
                ...where,
                keyword: 'nbsrv',
                message: `unable to find backend '${a.backend}' for 'nbsrv' in proxy '${p.name}'`,
              });
    const seen = new Set<string>();
    for (const s of p.servers) {
      if (seen.has(s.name))
        alerts.push({ file: s.file, line: s.line, keyword: 'server', message: `proxy '${p.name}' has two servers named '${s.name}'` });
      seen.add(s.name);
    }
    if (p.mode === 'tcp') {
      for (const s of p.servers)
        if (s.cookie !== undefined) {
          warnings.push({
            ...where,
            keyword: '',
            message: `${p.kind === 'listen' ? 'proxy' : p.kind} '${p.name}' : ignoring cookie for server '${s.name}' as HTTP mode is disabled.`,
          });
          s.cookie = undefined;
        }
      if (p.httplog)
        warnings.push({
          ...where,
          keyword: 'option httplog',
          message: `'option httplog' not usable with proxy '${p.name}' (needs 'mode http'). Falling back to 'option tcplog'.`,
        });
      if (p.httplog) {
        p.httplog = false;
        p.tcplog = true;
      }
      if (p.stats.enabled) alerts.push({ ...where, keyword: 'stats', message: `'stats' needs 'mode http' in proxy '${p.name}'` });
      if (p.useBackends.length || p.services.length || p.httpRules.length)
        alerts.push({ ...where, keyword: 'use_backend', message: `HTTP rules need 'mode http' in proxy '${p.name}'` });
    }
    const missing = (p.kind !== 'backend' ? ['client'] : [])
      .concat(p.kind !== 'frontend' ? ['connect', 'server'] : [])
      .filter((k) => !p.timeouts[k as keyof Timeouts]);
    if (missing.length)
      warnings.push({
        ...where,
        keyword: p.kind,
        message: `proxy '${p.name}' has no ${missing.map((m) => `'timeout ${m}'`).join(', ')}: idle connections are never closed (connect defaults to 5s)`,
      });
    if (!p.httpchk) {
      // (HAProxy says this one without a place)
      if (ownChecks.has(p))
        warnings.push({
          file: '',
          line: 0,
          keyword: '',
          message: `${p.kind === 'listen' ? 'proxy' : p.kind} '${p.name}' uses http-check rules without 'option httpchk', so the rules are ignored.`,
        });
      p.checkExpect = undefined;
    }
    if (p.mode !== 'http' && p.binds.some((b) => b.tls))
      alerts.push({
        ...where,
        keyword: 'bind',
        message: `'ssl' on a bind needs 'mode http' in proxy '${p.name}' (TLS in mode tcp is not supported)`,
      });
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
