// Cookie persistence, as HAProxy 2.6 does it: the request's cookie names a server (a server that is not DOWN and
// not in maintenance takes it, even drained or at weight 0), and is taken out of the request with insert+indirect
// or unprefixed with prefix; the server's own Set-Cookie of that name is removed (insert), rewritten (rewrite) or
// prefixed (prefix); with insert, an answer from another server than the one the cookie named (or to a request
// without one) gets `Set-Cookie: NAME=VALUE; path=/[; domain=D][; HttpOnly][; Secure]`, and with nocache a
// `Cache-control: private` when the answer was cacheable.
import type { CookieConfig } from './config.ts';
import type { Header, RequestHead, ResponseHead } from './http.ts';
import type { Server } from './balance.ts';

/** What the request's cookie said: the server it names when that one may take it (else null). */
export interface CookieVerdict {
  server: Server | null;
  /** the cookie named a server that is DOWN or in maintenance (the request was balanced instead) */
  down: boolean;
}

/** Whether server `s` takes the requests that carry its cookie: it is not DOWN and not in maintenance. */
export function persistUsable(s: Server): boolean {
  return s.up && s.admin !== 'maint';
}

interface Crumb {
  text: string; // as it came, trimmed
  name: string | null; // null: no '=' (kept as it is)
  value: string;
}

function crumbs(v: string): Crumb[] {
  const out: Crumb[] = [];
  for (const part of v.split(';')) {
    const text = part.trim();
    if (!text) continue;
    const eq = text.indexOf('=');
    if (eq < 0) out.push({ text, name: null, value: '' });
    else out.push({ text, name: text.slice(0, eq).trim(), value: text.slice(eq + 1).trim() });
  }
  return out;
}

/**
 * Reads the persistence cookie of request `req` for a backend with cookie `ck` and servers `servers`: the first
 * cookie of that name decides. Changes the request's Cookie headers as HAProxy does (removed with insert and
 * indirect; the server's prefix taken off with prefix); `changed.headers` is then set.
 */
export function requestCookie(ck: CookieConfig, servers: Server[], req: RequestHead, changed: { headers: boolean }): CookieVerdict {
  const verdict: CookieVerdict = { server: null, down: false };
  // (most requests have no Cookie header: no header objects are needed to know)
  const hs = req.headers;
  let decided = false;
  for (let h = 0; h < hs.length; h++) {
    if (hs[h].lname !== 'cookie') continue;
    const list = crumbs(hs[h].value);
    let edit = false;
    const kept: string[] = [];
    for (const c of list) {
      if (c.name === null || c.name.startsWith('$') || c.name !== ck.name) {
        kept.push(c.text);
        continue;
      }
      const v = c.value;
      const delim = ck.mode === 'prefix' ? v.indexOf('~') : v.indexOf('|');
      const id = delim < 0 ? v : v.slice(0, delim);
      if (!decided && id) {
        decided = true;
        for (const s of servers) {
          if (s.cfg.cookie !== id) continue;
          if (persistUsable(s)) {
            verdict.server = s;
            verdict.down = false;
            break;
          }
          verdict.down = true;
        }
      }
      if (ck.mode === 'prefix' && delim >= 0) {
        kept.push(`${c.name}=${v.slice(delim + 1)}`);
        edit = true;
      } else if (ck.mode === 'insert' && ck.indirect) edit = true;
      else kept.push(c.text);
    }
    if (!edit) continue;
    changed.headers = true;
    if (kept.length) hs[h] = { name: hs[h].name, lname: 'cookie', value: kept.join('; ') };
    else hs.splice(h--, 1);
  }
  return verdict;
}

const CACHEABLE_STATUS = new Set([200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501]);
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/**
 * Whether a cache could keep this answer: HAProxy's test (2.6 as Debian ships it) before it adds `Cache-control:
 * private`. A safe method, a status cacheable by default, no Pragma no-cache, nothing in Cache-Control against it
 * (public for it), and a lifetime (max-age, s-maxage, Expires) or a validator (ETag, Last-Modified).
 */
export function cacheable(method: string, rsp: ResponseHead): boolean {
  let ok = SAFE_METHODS.has(method) && CACHEABLE_STATUS.has(rsp.status);
  let fresh = false;
  let nullMaxAge = false;
  let validator = false;
  let pragma = false;
  for (const h of rsp.headers) {
    if (h.lname === 'pragma') {
      if (!pragma && h.value.toLowerCase() === 'no-cache') return false;
      pragma = true;
    } else if (h.lname === 'expires') fresh = true;
    else if (h.lname === 'etag' || h.lname === 'last-modified') validator = true;
  }
  for (const h of rsp.headers) {
    if (h.lname !== 'cache-control') continue;
    for (const part of h.value.split(',')) {
      const v = part.trim().toLowerCase();
      if (v === 'public') ok = true;
      else if (v === 'max-age=0') nullMaxAge = true;
      else if (v === 'no-cache="set-cookie"')
        continue; // (the cookie is not to be cached: nothing more)
      else if (/^(private|no-cache|no-store)(=|$)/.test(v) || v === 's-maxage=0') ok = false;
      else if (v.startsWith('s-maxage')) {
        fresh = true;
        nullMaxAge = false;
      } else if (v.startsWith('max-age')) fresh = true;
    }
  }
  return ok && !nullMaxAge && (fresh || validator);
}

// a server's Set-Cookie line (insert mode), made on its first answer and kept with its configuration
const insertLines = new WeakMap<object, string>();

/** The `Set-Cookie` header line (with its CRLF) that an answer of server `srv` gets in insert mode. */
function insertLine(ck: CookieConfig, srv: Server): string {
  let line = insertLines.get(srv.cfg);
  if (line !== undefined) return line;
  const own = srv.cfg.cookie;
  let sc = own !== undefined ? `${ck.name}=${own}; path=/` : `${ck.name}=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/`;
  if (ck.domains.length) sc += `; domain=${ck.domains.join('; domain=')}`;
  if (ck.httponly) sc += '; HttpOnly';
  if (ck.secure) sc += '; Secure';
  line = `Set-Cookie: ${sc}\r\n`;
  insertLines.set(srv.cfg, line);
  return line;
}

/**
 * The persistence work on the answer of server `srv` to a request (`direct`: it went to the server its cookie
 * named): the server's own Set-Cookie of the cookie's name removed, rewritten or prefixed in `rsp.headers`
 * (returns whether they changed), and the header lines to add (`Set-Cookie`, `Cache-control`) in `extra.lines`.
 */
export function responseCookie(
  ck: CookieConfig,
  srv: Server,
  direct: boolean,
  method: string,
  rsp: ResponseHead,
  extra: { lines: string },
): boolean {
  const hs: Header[] = rsp.headers;
  let changed = false;
  let found = false;
  const own = srv.cfg.cookie;
  for (let i = 0; i < hs.length; i++) {
    const h = hs[i];
    if (h.lname !== 'set-cookie') continue;
    const eq = h.value.indexOf('=');
    if (eq < 0 || h.value.slice(0, eq).trim() !== ck.name) continue;
    found = true;
    if (ck.preserve) continue;
    if (ck.mode === 'insert' || (direct && ck.indirect)) {
      hs.splice(i--, 1);
      changed = true;
    } else if (own !== undefined && (ck.mode === 'rewrite' || ck.mode === 'prefix')) {
      const semi = h.value.indexOf(';', eq);
      const end = semi < 0 ? h.value.length : semi;
      const old = h.value.slice(eq + 1, end).trim();
      const value = ck.mode === 'rewrite' ? own : `${own}~${old}`;
      hs[i] = { name: h.name, lname: h.lname, value: `${ck.name}=${value}${h.value.slice(end)}` };
      changed = true;
    }
  }
  if (ck.mode === 'insert' && !(found && ck.preserve) && !direct && (!ck.postonly || method === 'POST')) {
    extra.lines += insertLine(ck, srv);
    if (ck.nocache && cacheable(method, rsp)) extra.lines += 'Cache-control: private\r\n';
  }
  return changed;
}
