// Which proxy keywords belong in which section, as HAProxy 2.6 sees it. A keyword that needs a frontend (or
// backend) capability is ignored with a warning in a section without it (a `maxconn` in a backend, a `balance` in
// a frontend), and some are refused outright (a `server` in a frontend, a `bind` in defaults), each with HAProxy's
// own words, so that `-c` judges a configuration the way `haproxy -c` does.

export type SectionKind = 'defaults' | 'listen' | 'frontend' | 'backend';

export interface ScopeVerdict {
  level: 'ALERT' | 'WARNING';
  message: string;
}

type Side = 'frontend' | 'backend';

/** The side a keyword needs, how HAProxy names it in its message, and what it suggests instead. */
interface Need {
  side: Side;
  name: string;
  hint?: string;
  timeout?: boolean;
}

const TIMEOUT_SIDES: Record<string, Side> = {
  connect: 'backend',
  server: 'backend',
  queue: 'backend',
  check: 'backend',
  tunnel: 'backend',
  client: 'frontend',
};

function need(w: string[]): Need | null {
  const kw = w[0];
  switch (kw) {
    case 'maxconn':
      return { side: 'frontend', name: kw, hint: " Maybe you want 'fullconn' instead ?" };
    case 'fullconn':
      return { side: 'backend', name: kw, hint: " Maybe you want 'maxconn' instead ?" };
    case 'retries':
    case 'cookie':
    case 'balance':
    case 'http-check':
      return { side: 'backend', name: kw };
    case 'bind':
    case 'default_backend':
    case 'use_backend':
    case 'monitor-uri':
    case 'monitor':
      return { side: 'frontend', name: kw };
    case 'contimeout':
    case 'srvtimeout':
    case 'clitimeout':
      return { side: kw === 'clitimeout' ? 'frontend' : 'backend', name: kw };
    case 'timeout': {
      const side = TIMEOUT_SIDES[w[1] ?? ''];
      return side ? { side, name: `timeout ${w[1]}`, timeout: true } : null;
    }
    case 'option':
    case 'no': {
      const o = kw === 'no' ? w[2] : w[1];
      if (kw === 'no' && w[1] !== 'option') return null;
      if (o === 'redispatch' || o === 'httpchk' || o === 'abortonclose') return { side: 'backend', name: o };
      if (o === 'dontlognull') return { side: 'frontend', name: o };
      return null;
    }
  }
  return null;
}

// refused in any defaults section, and (acl, http-request) in the anonymous one where HAProxy names it so
const NOT_IN_DEFAULTS = new Set(['bind', 'use_backend', 'server', 'description']);
const NOT_IN_ANONYMOUS_DEFAULTS = new Set(['acl', 'http-request', 'redirect']);

/**
 * What HAProxy says about keyword line `w` in section `kind` named `name`: nothing (null), a warning (the line is
 * then ignored) or an alert.
 */
export function scopeVerdict(kind: SectionKind, name: string, w: string[]): ScopeVerdict | null {
  const kw = w[0];
  if (kind === 'defaults') {
    if (NOT_IN_DEFAULTS.has(kw)) return { level: 'ALERT', message: `'${kw}' not allowed in 'defaults' section.` };
    if (NOT_IN_ANONYMOUS_DEFAULTS.has(kw))
      return {
        level: 'ALERT',
        message: name
          ? `'${kw}' in a named 'defaults' section is not supported by this proxy.`
          : `'${kw}' not allowed in anonymous 'defaults' section.`,
      };
    return null;
  }
  if (kind === 'listen') return null;
  if (kind === 'frontend' && (kw === 'server' || kw === 'default-server'))
    return { level: 'ALERT', message: `'${kw}' not allowed because frontend '${name}' has no backend capability.` };
  if (kind === 'frontend' && kw === 'retry-on')
    return { level: 'ALERT', message: "'retry-on' only available in backend or listen section" };
  if (kind === 'backend' && kw === 'option' && (w[1] === 'httplog' || w[1] === 'tcplog'))
    return { level: 'WARNING', message: `backend '${name}' : 'option ${w[1]}' directive is ignored in backends.` };
  const n = need(w);
  if (!n || n.side === kind) return null;
  const lacks = n.side === 'frontend' ? 'frontend' : 'backend';
  if (n.timeout) return { level: 'WARNING', message: `'${n.name}' will be ignored because ${kind} '${name}' has no ${lacks} capability` };
  return { level: 'WARNING', message: `'${n.name}' ignored because ${kind} '${name}' has no ${lacks} capability.${n.hint ?? ''}` };
}
