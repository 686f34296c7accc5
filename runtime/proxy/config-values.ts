// The words and values of haproxy.cfg: line splitting, times, integers, addresses, log targets.
import { splitWords, type WordRules } from '../common/words.ts';
import type { LogTarget, SyslogFormat } from './config-types.ts';

export const FACILITIES = [
  'kern',
  'user',
  'mail',
  'daemon',
  'auth',
  'syslog',
  'lpr',
  'news',
  'uucp',
  'cron',
  'auth2',
  'ftp',
  'ntp',
  'audit',
  'alert',
  'cron2',
  'local0',
  'local1',
  'local2',
  'local3',
  'local4',
  'local5',
  'local6',
  'local7',
];
export const LEVELS = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];

const HAPROXY_WORDS: WordRules = {
  comments: true,
  controlEscapes: true,
  space: (c) => c === ' ' || c === '\t' || c === '\r',
  strictQuotes: true,
};

/** Splits a config line into words the way HAProxy does: quotes, backslash escapes, '#' comments. */
export function tokenize(line: string): string[] {
  return splitWords(line, HAPROXY_WORDS);
}

/** HAProxy time: a number with an optional unit (us, ms, s, m, h, d); no unit means milliseconds. */
export function parseTime(s: string): number {
  const m = /^(\d+)(us|ms|s|m|h|d)?$/.exec(s);
  if (!m) throw new Error(`invalid time value '${s}'`);
  const n = Number(m[1]);
  switch (m[2]) {
    case 'us':
      return Math.ceil(n / 1000);
    case 's':
      return n * 1000;
    case 'm':
      return n * 60000;
    case 'h':
      return n * 3600000;
    case 'd':
      return n * 86400000;
    default:
      return n;
  }
}

export function parseIntStrict(s: string | undefined, what: string, min = 0, max = 2 ** 31): number {
  if (s === undefined || !/^-?\d+$/.test(s)) throw new Error(`${what} expects an integer, got '${s ?? ''}'`);
  const n = Number(s);
  if (n < min || n > max) throw new Error(`${what} must be between ${min} and ${max}`);
  return n;
}

/** The one argument of a keyword that takes exactly one. */
export function oneArg(w: string[]): string {
  if (w[1] === undefined) throw new Error('expects an argument');
  if (w.length > 2) throw new Error(`unexpected word '${w[2]}'`);
  return w[1];
}

export function parseAddrPort(s: string, what: string): { host: string; port: number } {
  let host: string;
  let port: string;
  if (s.startsWith('[')) {
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(s);
    if (!m) throw new Error(`invalid address '${s}' for ${what}`);
    host = m[1];
    port = m[2];
  } else {
    const i = s.lastIndexOf(':');
    if (i < 0) throw new Error(`missing port in address '${s}' for ${what}`);
    host = s.slice(0, i);
    port = s.slice(i + 1);
  }
  if (host.startsWith('ipv4@')) host = host.slice(5);
  const p = parseIntStrict(port, `port of ${what}`, 1, 65535);
  if (host === '*' || host === '0.0.0.0') host = '';
  return { host, port: p };
}

export function ipv4ToInt(a: string): number | null {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((x) => x > 255)) return null;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function parseLog(w: string[], globalLogs: LogTarget[] | null): LogTarget[] {
  // log global | log <target> [len <n>] [format <fmt>] <facility> [<level> [<minlevel>]]
  if (w[1] === 'global') {
    if (!globalLogs) throw new Error("'log global' is only valid in a proxy section");
    return globalLogs;
  }
  const target = w[1];
  if (!target) throw new Error("expects a target ('global', an address, stdout or stderr)");
  let i = 2;
  let format: SyslogFormat = 'rfc3164';
  while (w[i] === 'len' || w[i] === 'format' || w[i] === 'sample') {
    if (w[i] === 'format') {
      const f = w[i + 1];
      if (f !== 'rfc3164' && f !== 'rfc5424' && f !== 'raw')
        throw new Error(`unsupported log format '${f ?? ''}' (rfc3164, rfc5424 or raw)`);
      format = f;
    } else if (w[i] === 'sample') throw new Error("log 'sample' is not supported");
    i += 2;
  }
  const fac = w[i];
  const facility = FACILITIES.indexOf(fac ?? '');
  if (facility < 0) throw new Error(`unknown log facility '${fac ?? ''}'`);
  let maxLevel = 7;
  if (w[i + 1] !== undefined) {
    maxLevel = LEVELS.indexOf(w[i + 1]);
    if (maxLevel < 0) throw new Error(`unknown log level '${w[i + 1]}'`);
    if (w[i + 2] !== undefined && LEVELS.indexOf(w[i + 2]) < 0) throw new Error(`unknown log level '${w[i + 2]}'`);
    if (w[i + 3] !== undefined) throw new Error(`unexpected word '${w[i + 3]}'`);
  }
  if (target === 'stdout' || target === 'stderr') return [{ kind: target, host: '', port: 0, facility, maxLevel, format }];
  let t = target.startsWith('udp@') ? target.slice(4) : target.startsWith('udp4@') ? target.slice(5) : target;
  if (t.startsWith('/') || t.includes('@'))
    throw new Error(`unsupported log target '${target}' (an IPv4 address[:port], stdout or stderr)`);
  if (!t.includes(':')) t += ':514';
  const { host, port } = parseAddrPort(t, 'log');
  if (ipv4ToInt(host || '0.0.0.0') === null) throw new Error(`log target must be an IPv4 address, got '${host}'`);
  return [{ kind: 'udp', host: host || '127.0.0.1', port, facility, maxLevel, format }];
}
