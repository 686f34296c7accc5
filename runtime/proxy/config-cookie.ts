// The `cookie` keyword of a backend (cookie persistence) as HAProxy 2.6 reads it; the server's `cookie VALUE` is in
// config-server.ts and what the proxy does with both in persistence.ts.
import type { Alert, CookieConfig, Where } from './config-types.ts';

const FLAGS = new Set(['indirect', 'nocache', 'postonly', 'preserve', 'httponly', 'secure']);
const MODES = new Set(['insert', 'rewrite', 'prefix']);
// HAProxy's options that this proxy does not have: refused by name
const UNSUPPORTED = new Set(['maxidle', 'maxlife', 'dynamic', 'attr']);

/** `cookie NAME [options]` (w: the words of the line); a domain without a dot gets HAProxy's warning. */
export function parseCookie(w: string[], where: Where, warnings: Alert[]): CookieConfig {
  const name = w[1];
  if (!name) throw new Error("'cookie' expects <cookie_name> as argument.");
  const c: CookieConfig = {
    name,
    mode: 'passive',
    indirect: false,
    nocache: false,
    postonly: false,
    preserve: false,
    httponly: false,
    secure: false,
    domains: [],
  };
  const modes = new Set<string>();
  for (let i = 2; i < w.length; i++) {
    const k = w[i];
    if (MODES.has(k)) {
      modes.add(k);
      c.mode = k as CookieConfig['mode'];
    } else if (FLAGS.has(k)) c[k as 'indirect' | 'nocache' | 'postonly' | 'preserve' | 'httponly' | 'secure'] = true;
    else if (k === 'domain') {
      const d = w[++i];
      if (!d) throw new Error("'domain' expects <domain> as argument.");
      if (!d.includes('.'))
        warnings.push({
          ...where,
          keyword: '',
          message: `domain '${d}' contains no embedded dot, this configuration may not work properly (see RFC6265#5.2.3).`,
        });
      const bad = /[^A-Za-z0-9.-]/.exec(d);
      if (bad) throw new Error(`character '${bad[0]}' is not permitted in domain name '${d}'.`);
      c.domains.push(d);
    } else if (UNSUPPORTED.has(k)) throw new Error(`cookie option '${k}' is not supported by this proxy`);
    else
      throw new Error(
        "'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', 'nocache', 'postonly', 'domain', 'maxidle', 'dynamic', 'maxlife' and 'attr' options.",
      );
  }
  if (modes.has('rewrite') && c.indirect) throw new Error("cookie 'rewrite' and 'indirect' modes are incompatible.");
  if (modes.size > 1) throw new Error("cookie 'rewrite', 'insert' and 'prefix' modes are incompatible.");
  if (c.preserve && c.mode !== 'insert' && !c.indirect) throw new Error("cookie 'preserve' requires at least 'insert' or 'indirect'.");
  return c;
}
