// The rules of the proxy sections: ACLs and the conditions that use them (`if`/`unless`, anonymous ACLs, `||`, `!`),
// `http-request` actions and `redirect scheme`.
import type { Acl, AclFetch, Condition, HttpRule, IntMatch, Where } from './config-types.ts';
import { ipv4ToInt, parseIntStrict } from './config-values.ts';

const ACL_FETCHES: Record<string, AclFetch> = {
  path: 'path',
  path_beg: 'path_beg',
  path_end: 'path_end',
  path_sub: 'path_sub',
  path_reg: 'path_reg',
  hdr: 'hdr',
  hdr_beg: 'hdr_beg',
  hdr_end: 'hdr_end',
  hdr_sub: 'hdr_sub',
  method: 'method',
  src: 'src',
  ssl_fc: 'ssl_fc',
  nbsrv: 'nbsrv',
};

const INT_OPS = new Set(['eq', 'ge', 'gt', 'le', 'lt']);

/** The integer matches of an integer fetch: `[eq|ge|gt|le|lt] N`, or several plain values (any of them). */
function parseIntMatches(name: string, words: string[]): IntMatch[] {
  if (words.length === 0) throw new Error(`ACL '${name}' has no value to match`);
  const int = (v: string): number => {
    if (!/^\d+$/.test(v)) throw new Error(`'${v}' is not an integer`);
    return Number(v);
  };
  if (INT_OPS.has(words[0])) {
    if (words.length !== 2) throw new Error(`'${words[0]}' expects one integer`);
    return [{ op: words[0] as IntMatch['op'], value: int(words[1]) }];
  }
  return words.map((v) => ({ op: 'eq', value: int(v) }));
}

export function parseAclExpr(name: string, w: string[]): Acl {
  const f = w[0];
  if (!f) throw new Error('missing ACL criterion');
  const m = /^([a-z_]+)(?:\(([^)]*)\))?$/.exec(f);
  if (!m || !ACL_FETCHES[m[1]])
    throw new Error(
      `unsupported ACL criterion '${f}' (path, path_beg, path_end, path_sub, path_reg, hdr*(name), method, src, ssl_fc, nbsrv(backend))`,
    );
  const fetch = ACL_FETCHES[m[1]];
  let header: string | undefined;
  if (fetch === 'nbsrv') {
    // the usable servers of a backend (UP, not drained, not in maintenance): `nbsrv(web) lt 1`
    const backend = m[2] ?? '';
    if (!backend) throw new Error(`'nbsrv' needs a backend name: nbsrv(<backend>)`);
    return { name, fetch, backend, ignoreCase: false, values: [], ints: parseIntMatches(name, w.slice(1)) };
  }
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
  if (fetch === 'ssl_fc') {
    // a boolean: true on a connection that came in over TLS
    if (values.length || ignoreCase) throw new Error("'ssl_fc' takes no value");
    return { name, fetch, ignoreCase: false, values: [] };
  }
  if (values.length === 0) throw new Error(`ACL '${name}' has no value to match`);
  if (fetch === 'path_reg') for (const v of values) new RegExp(v);
  if (fetch === 'src') for (const v of values) if (ipv4ToInt(v.split('/')[0]) === null) throw new Error(`invalid IPv4 address '${v}'`);
  return { name, fetch, header, ignoreCase, values: ignoreCase ? values.map((v) => v.toLowerCase()) : values };
}

/** `redirect scheme <scheme> [code C] [if|unless COND]` (also as an http-request action). */
export function parseRedirect(w: string[], acls: Map<string, Acl>, where: Where): HttpRule {
  if (w[0] !== 'scheme')
    throw new Error(`unsupported redirect '${w[0] ?? ''}' (only 'redirect scheme <scheme> [code C] [if|unless COND]')`);
  const scheme = w[1];
  if (!scheme || !/^[a-z][a-z0-9+.-]*$/i.test(scheme)) throw new Error("'redirect scheme' expects a scheme (https)");
  let code = 302;
  let i = 2;
  for (; i < w.length && w[i] !== 'if' && w[i] !== 'unless'; i++) {
    if (w[i] === 'code') {
      code = parseIntStrict(w[++i], 'code', 301, 308);
      if (![301, 302, 303, 307, 308].includes(code)) throw new Error(`'code' expects 301, 302, 303, 307 or 308, got '${code}'`);
    } else if (w[i] === 'drop-query' || w[i] === 'append-slash' || w[i] === 'set-cookie' || w[i] === 'clear-cookie')
      throw new Error(`redirect option '${w[i]}' is not supported`);
    else throw new Error(`unexpected word '${w[i]}' in redirect`);
  }
  return { action: 'redirect-scheme', scheme, code, cond: i < w.length ? parseCondition(w.slice(i), acls) : undefined, ...where };
}

/** The http-request actions besides use-service: redirect scheme, set-header, add-header, del-header. */
export function parseHttpRequest(w: string[], acls: Map<string, Acl>, where: Where): HttpRule {
  const a = w[0];
  if (a === 'redirect') return parseRedirect(w.slice(1), acls, where);
  const condAt = w.findIndex((x, i) => i > 0 && (x === 'if' || x === 'unless'));
  const args = condAt < 0 ? w.slice(1) : w.slice(1, condAt);
  const cond = condAt < 0 ? undefined : parseCondition(w.slice(condAt), acls);
  const name = args[0];
  const token = (n: string | undefined) => !!n && /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(n);
  if (a === 'set-header' || a === 'add-header') {
    if (!token(name) || args.length !== 2) throw new Error(`'http-request ${a}' expects a header name and a value`);
    if (args[1].includes('%[') || args[1].includes('%{'))
      throw new Error(`'http-request ${a}': log-format expressions in the value are not supported (a literal value only)`);
    if (/[\r\n\0]/.test(args[1])) throw new Error(`'http-request ${a}': the value has a line break`);
    return { action: a, name, value: args[1], cond, ...where };
  }
  if (a === 'del-header') {
    if (!token(name) || args.length !== 1) throw new Error("'http-request del-header' expects a header name");
    return { action: 'del-header', name, cond, ...where };
  }
  throw new Error(
    `unsupported 'http-request' action '${w.join(' ')}' (use-service prometheus-exporter, redirect scheme, set-header, add-header, del-header)`,
  );
}

export function parseCondition(w: string[], acls: Map<string, Acl>): Condition {
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
