// ACLs: the conditions of `use_backend`, `http-request` rules and the like, matched against a request.
import type { Acl, Condition, IntMatch } from './config.ts';
import { ipv4ToInt } from './config.ts';
import { headerValue, type RequestHead } from './http.ts';

export function inNet(ip: string, n: { addr: number; bits: number }): boolean {
  const a = ipv4ToInt(ip.startsWith('::ffff:') ? ip.slice(7) : ip);
  if (a === null) return false;
  if (n.bits === 0) return true;
  const mask = (~0 << (32 - n.bits)) >>> 0;
  return (a & mask) >>> 0 === (n.addr & mask) >>> 0;
}

/** What an ACL's values are once parsed for matching: its networks (src), its regular expressions (path_reg). */
interface Compiled {
  nets: { addr: number; bits: number }[];
  regs: RegExp[];
}
// made on an ACL's first match and kept with it (a configuration's ACLs live as long as it does), instead of on
// every request
const compiled = new WeakMap<Acl, Compiled>();

/** The parsed form of ACL `a`'s values, made once. */
export function compiledAcl(a: Acl): Compiled {
  let c = compiled.get(a);
  if (!c) {
    c = { nets: [], regs: [] };
    if (a.fetch === 'src')
      for (const v of a.values) {
        const [x, b] = v.split('/');
        c.nets.push({ addr: ipv4ToInt(x)!, bits: b === undefined ? 32 : Number(b) });
      }
    if (a.fetch === 'path_reg') for (const v of a.values) c.regs.push(new RegExp(v, a.ignoreCase ? 'i' : ''));
    compiled.set(a, c);
  }
  return c;
}

/** The request's path without its query string. */
export function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q);
}

/** The backends by name, for nbsrv (their usable servers); an unknown one counts 0. */
export type BackendLookup = (name: string) => { usableCount(): number } | undefined;

const none: BackendLookup = () => undefined;

function intMatch(n: number, ms: IntMatch[]): boolean {
  for (const m of ms)
    if (
      m.op === 'eq'
        ? n === m.value
        : m.op === 'lt'
          ? n < m.value
          : m.op === 'le'
            ? n <= m.value
            : m.op === 'gt'
              ? n > m.value
              : n >= m.value
    )
      return true;
  return false;
}

function aclMatch(a: Acl, req: RequestHead, src: string, tls: boolean, backends: BackendLookup): boolean {
  if (a.fetch === 'ssl_fc') return tls;
  if (a.fetch === 'nbsrv') return intMatch(backends(a.backend!)?.usableCount() ?? 0, a.ints!);
  let subject: string | undefined;
  if (a.fetch.startsWith('path')) subject = pathOnly(req.path);
  else if (a.fetch === 'method') subject = req.method;
  else if (a.fetch === 'src') {
    for (const n of compiledAcl(a).nets) if (inNet(src, n)) return true;
    return false;
  } else {
    subject = headerValue(req.headers, a.header!);
  }
  if (subject === undefined) return false;
  if (a.ignoreCase) subject = subject.toLowerCase();
  const s = subject;
  const vs = a.values;
  switch (a.fetch) {
    case 'path':
    case 'hdr':
    case 'method':
      return vs.includes(s);
    case 'path_beg':
    case 'hdr_beg':
      for (const v of vs) if (s.startsWith(v)) return true;
      return false;
    case 'path_end':
    case 'hdr_end':
      for (const v of vs) if (s.endsWith(v)) return true;
      return false;
    case 'path_sub':
    case 'hdr_sub':
      for (const v of vs) if (s.includes(v)) return true;
      return false;
    case 'path_reg':
      for (const r of compiledAcl(a).regs) if (r.test(s)) return true;
      return false;
  }
  return false;
}

export function condMatch(c: Condition, req: RequestHead, src: string, tls = false, backends: BackendLookup = none): boolean {
  let r = false;
  for (const g of c.groups) {
    let all = true;
    for (const t of g) {
      let every = true;
      for (const a of t.acls)
        if (!aclMatch(a, req, src, tls, backends)) {
          every = false;
          break;
        }
      if (every === t.negate) {
        all = false;
        break;
      }
    }
    if (all) {
      r = true;
      break;
    }
  }
  return c.unless ? !r : r;
}
