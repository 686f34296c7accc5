// Where a request goes, once its head is read: the proxy's own answers (monitor-uri, redirects, the stats page,
// the Prometheus exporter), or a backend; and the header changes of the http-request rules on the way (frontend
// rules, then the switching rules, then the backend's own rules).
import type { HttpRule, ProxyConfig } from './config.ts';
import type { Backend } from './balance.ts';
import { headerValue, type RequestHead } from './http.ts';
import { condMatch, pathOnly, type BackendLookup } from './acl.ts';
import type { LocalResponse, StatsKind } from './types.ts';

export type Route =
  /** an answer made here (monitor-uri, a redirect), logged for `owner` and the pseudo server `server` */
  | { to: 'answer'; answer: LocalResponse; owner: string; server: string }
  /** the stats page or CSV, or the Prometheus exporter's text, of proxy `owner` */
  | { to: 'stats'; kind: StatsKind; owner: ProxyConfig; server: string }
  | { to: 'backend'; be: Backend }
  /** no backend for it (503) */
  | { to: 'nowhere' };

const MONITOR_OK: LocalResponse = { status: 200, headers: [['content-type', 'text/plain']], body: Buffer.from('OK\n') };
const MONITOR_FAIL: LocalResponse = {
  status: 503,
  headers: [['content-type', 'text/plain']],
  body: Buffer.from('Service Unavailable\n'),
};

/** Who sent a request: its address and whether it came over TLS (for the ACLs `src` and `ssl_fc`). */
export interface Client {
  src: string;
  tls: boolean;
}

/** The route of request `req` (whose headers the rules may change: `changed` is then set) from frontend `fe`. */
export function route(
  req: RequestHead,
  fe: ProxyConfig,
  backend: (name: string) => Backend | undefined,
  client: Client,
  changed: { headers: boolean },
): Route {
  if (fe.monitorUri && pathOnly(req.path) === fe.monitorUri) {
    // answered here, never queued: 503 while `monitor fail` holds (e.g. no usable server), else 200
    const fail = fe.monitorFail !== undefined && condMatch(fe.monitorFail, req, client.src, client.tls, backend);
    return { to: 'answer', answer: fail ? MONITOR_FAIL : MONITOR_OK, owner: fe.name, server: '<NOSRV>' };
  }
  const own = ownRules(req, fe, client, changed, backend);
  if (own) return own;
  let be: Backend | undefined;
  for (const u of fe.useBackends)
    if (condMatch(u.cond, req, client.src, client.tls, backend)) {
      be = backend(u.backend);
      break;
    }
  if (!be) be = fe.kind === 'listen' ? backend(fe.name) : fe.defaultBackend ? backend(fe.defaultBackend) : undefined;
  const statsOwner = fe.stats.enabled ? fe : be?.cfg.stats.enabled ? be.cfg : null;
  if (statsOwner && req.uri.startsWith(statsOwner.stats.uri)) {
    const rest = req.uri.slice(statsOwner.stats.uri.length);
    return { to: 'stats', kind: rest.includes(';csv') ? 'csv' : 'html', owner: statsOwner, server: '<STATS>' };
  }
  if (!be) return { to: 'nowhere' };
  // a backend's own http-request rules come after the switching rules
  if (be.cfg !== fe) {
    const r = ownRules(req, be.cfg, client, changed, backend);
    if (r) return r;
  }
  return { to: 'backend', be };
}

/** A proxy's http-request rules and its Prometheus service: the answer they give, or null to go on. */
function ownRules(req: RequestHead, p: ProxyConfig, client: Client, changed: { headers: boolean }, backend: BackendLookup): Route | null {
  if (p.httpRules.length) {
    const answer = applyRules(p.httpRules, req, client, changed, backend);
    if (answer) return { to: 'answer', answer, owner: p.name, server: '<NOSRV>' };
  }
  for (const r of p.services)
    if (!r.cond || condMatch(r.cond, req, client.src, client.tls, backend))
      return { to: 'stats', kind: 'prom', owner: p, server: '<PROMEX>' };
  return null;
}

/**
 * The http-request rules of a proxy, in order: header changes apply to the request; a redirect answers it (the
 * answer is returned).
 */
function applyRules(
  rules: HttpRule[],
  req: RequestHead,
  client: Client,
  changed: { headers: boolean },
  backend: BackendLookup,
): LocalResponse | null {
  for (const r of rules) {
    if (r.cond && !condMatch(r.cond, req, client.src, client.tls, backend)) continue;
    if (r.action === 'redirect-scheme') {
      const host = headerValue(req.headers, 'host');
      const path = req.uri.startsWith('/') ? req.uri : req.path;
      return { status: r.code, headers: [['location', `${r.scheme}://${host ?? ''}${path}`]], body: Buffer.alloc(0) };
    }
    const lname = r.name.toLowerCase();
    const hs = req.headers; // (the request's own list, changed in place)
    if (r.action !== 'add-header') for (let i = hs.length - 1; i >= 0; i--) if (hs[i].lname === lname) hs.splice(i, 1);
    if (r.action !== 'del-header') hs.push({ name: r.name, lname, value: r.value });
    changed.headers = true;
  }
  return null;
}
