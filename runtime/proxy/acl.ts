// ACLs: the conditions of `use_backend`, `http-request` rules and the like, matched against a request.
import type { Acl, Condition } from './config.ts';
import { ipv4ToInt } from './config.ts';
import { headerValue, type RequestHead } from './http.ts';

export function inNet(ip: string, n: { addr: number; bits: number }): boolean {
  const a = ipv4ToInt(ip.startsWith('::ffff:') ? ip.slice(7) : ip);
  if (a === null) return false;
  if (n.bits === 0) return true;
  const mask = (~0 << (32 - n.bits)) >>> 0;
  return (a & mask) >>> 0 === (n.addr & mask) >>> 0;
}

function aclMatch(a: Acl, req: RequestHead, src: string, tls: boolean): boolean {
  if (a.fetch === 'ssl_fc') return tls;
  let subject: string | undefined;
  if (a.fetch.startsWith('path')) subject = req.path.split('?')[0];
  else if (a.fetch === 'method') subject = req.method;
  else if (a.fetch === 'src')
    return a.values.some((v) => {
      const [x, b] = v.split('/');
      return inNet(src, { addr: ipv4ToInt(x)!, bits: b === undefined ? 32 : Number(b) });
    });
  else {
    subject = headerValue(req.headers, a.header!);
  }
  if (subject === undefined) return false;
  if (a.ignoreCase) subject = subject.toLowerCase();
  const s = subject;
  switch (a.fetch) {
    case 'path':
    case 'hdr':
    case 'method':
      return a.values.includes(s);
    case 'path_beg':
    case 'hdr_beg':
      return a.values.some((v) => s.startsWith(v));
    case 'path_end':
    case 'hdr_end':
      return a.values.some((v) => s.endsWith(v));
    case 'path_sub':
    case 'hdr_sub':
      return a.values.some((v) => s.includes(v));
    case 'path_reg':
      return a.values.some((v) => new RegExp(v, a.ignoreCase ? 'i' : '').test(s));
  }
  return false;
}

export function condMatch(c: Condition, req: RequestHead, src: string, tls = false): boolean {
  const r = c.groups.some((g) => g.every((t) => t.acls.every((a) => aclMatch(a, req, src, tls)) !== t.negate));
  return c.unless ? !r : r;
}
