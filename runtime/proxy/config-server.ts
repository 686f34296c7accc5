// The words of a `server` and `default-server` line: health-check settings, weight, maxconn, backup, slowstart,
// observe and on-error.
import type { ServerConfig, Where } from './config-types.ts';
import { parseAddrPort, parseIntStrict, parseTime } from './config-values.ts';

const SERVER_FLAGS = new Set(['check', 'backup', 'disabled', 'enabled', 'no-check', 'no-backup']);
const SERVER_ARGS = new Set([
  'inter',
  'fastinter',
  'downinter',
  'rise',
  'fall',
  'weight',
  'maxconn',
  'slowstart',
  'observe',
  'error-limit',
  'on-error',
  'port',
  'id',
  'cookie',
]);

// the server keywords that take an integer: the field they set, and its range
const SERVER_INTS: Record<string, ['rise' | 'fall' | 'weight' | 'maxconn' | 'errorLimit' | 'checkPort' | 'id', number, number]> = {
  rise: ['rise', 1, 1000],
  fall: ['fall', 1, 1000],
  weight: ['weight', 0, 256],
  maxconn: ['maxconn', 0, 2 ** 31],
  'error-limit': ['errorLimit', 1, 2 ** 31],
  port: ['checkPort', 1, 65535],
  id: ['id', 1, 2 ** 31],
};

export function applyServerWords(s: Partial<ServerConfig>, w: string[], start: number): void {
  for (let i = start; i < w.length; i++) {
    const k = w[i];
    if (SERVER_FLAGS.has(k)) {
      if (k === 'check') s.check = true;
      else if (k === 'no-check') s.check = false;
      else if (k === 'backup') s.backup = true;
      else if (k === 'no-backup') s.backup = false;
      else if (k === 'disabled') s.disabled = true;
      else if (k === 'enabled') s.disabled = false;
      continue;
    }
    if (!SERVER_ARGS.has(k)) throw new Error(`unknown server keyword '${k}'`);
    const v = w[++i];
    if (v === undefined) throw new Error(`server keyword '${k}' expects an argument`);
    switch (k) {
      case 'inter':
      case 'fastinter':
      case 'downinter': {
        const t = parseTime(v);
        if (t <= 0) throw new Error(`'${k}' must be positive`);
        if (k === 'inter') s.inter = t;
        else if (k === 'fastinter') s.fastinter = t;
        else s.downinter = t;
        break;
      }
      case 'rise':
      case 'fall':
      case 'weight':
      case 'maxconn':
      case 'error-limit':
      case 'port':
      case 'id': {
        const [key, min, max] = SERVER_INTS[k];
        s[key] = parseIntStrict(v, k, min, max);
        break;
      }
      case 'cookie':
        s.cookie = v;
        break;
      case 'slowstart':
        s.slowstart = parseTime(v);
        break;
      case 'observe':
        if (v !== 'layer4' && v !== 'layer7') throw new Error(`'observe' expects layer4 or layer7, got '${v}'`);
        s.observe = v;
        break;
      case 'on-error':
        if (v !== 'fastinter' && v !== 'fail-check' && v !== 'sudden-death' && v !== 'mark-down')
          throw new Error(`'on-error' expects fastinter, fail-check, sudden-death or mark-down, got '${v}'`);
        s.onError = v;
        break;
    }
  }
}

/** A `server NAME ADDR:PORT [words]` line, over the `default-server` words `ds` of its section. */
export function parseServerLine(w: string[], ds: Partial<ServerConfig>, where: Where): ServerConfig {
  const name = w[1];
  const addr = w[2];
  if (!name || !addr) throw new Error('expects <name> and <addr>:<port>');
  const { host, port } = parseAddrPort(addr, `server '${name}'`);
  if (!host) throw new Error(`server '${name}' needs an address`);
  const s: Partial<ServerConfig> = { ...ds };
  applyServerWords(s, w, 3);
  return {
    name,
    host,
    port,
    ...where,
    check: s.check ?? false,
    inter: s.inter ?? 2000,
    fastinter: s.fastinter,
    downinter: s.downinter,
    rise: s.rise ?? 2,
    fall: s.fall ?? 3,
    weight: s.weight ?? 1,
    maxconn: s.maxconn ?? 0,
    backup: s.backup ?? false,
    slowstart: s.slowstart ?? 0,
    disabled: s.disabled ?? false,
    observe: s.observe,
    errorLimit: s.errorLimit ?? 10,
    onError: s.onError ?? 'fail-check',
    checkPort: s.checkPort,
    id: w.includes('id') ? s.id : undefined,
    cookie: s.cookie,
  };
}
