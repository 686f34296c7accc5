// keepalived.conf for hasetup-vrrpd: the subset a VRRP-only daemon needs (global_defs, vrrp_script,
// vrrp_instance), parsed with file:line errors. Unknown keywords are errors; a few keepalived
// keywords that concern features this daemon does not have (email alerts, LVS) are accepted with a
// warning so that an existing keepalived.conf can be brought over.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve, basename } from 'node:path';
import { splitWords, type WordRules } from '../common/words.ts';

export interface Where {
  file: string;
  line: number;
}

export interface ConfigMessage extends Where {
  message: string;
}

export class ConfigError extends Error {
  constructor(public readonly errors: ConfigMessage[]) {
    super(errors.map((e) => `${e.file}:${e.line}: ${e.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

export type VrrpVersion = 2 | 3;

export interface GlobalDefs {
  routerId?: string;
  vrrpVersion: VrrpVersion;
  /** user (and group) the tracking and notify scripts run as; default: the daemon's user */
  scriptUser?: { user: string; group?: string };
  /** refuse scripts whose file is writable by anyone but root */
  enableScriptSecurity: boolean;
  garpMasterDelay: number; // seconds, default 5
  garpMasterRepeat: number; // default 5
  garpMasterRefresh: number; // seconds, 0 = off
  garpMasterRefreshRepeat: number; // default 1
}

export interface VrrpScriptConfig {
  name: string;
  /** the command line, split into argv (keepalived quoting: '...', "...", backslash) */
  argv: string[];
  interval: number; // seconds, default 1
  timeout: number; // seconds, default: interval
  weight: number; // -253..253, 0 = failure puts the instance in FAULT
  rise: number; // default 1
  fall: number; // default 1
  initFail: boolean; // start as failed instead of "one success is enough"
  where: Where;
}

export interface TrackScriptRef {
  name: string;
  /** overrides the script's weight for this instance */
  weight?: number;
  where: Where;
}

export interface TrackInterfaceRef {
  name: string;
  /** 0 (default): the interface being down puts the instance in FAULT; > 0: added while it is up; < 0: added while it is down */
  weight: number;
}

export interface VirtualAddress {
  address: string; // dotted quad
  prefix: number; // default 32
  dev: string; // default: the instance's interface
  label?: string;
  broadcast?: string;
  scope?: string;
  /** from virtual_ipaddress_excluded: managed but not listed in adverts */
  excluded: boolean;
}

export interface NotifyScripts {
  master?: string[];
  backup?: string[];
  fault?: string[];
  stop?: string[];
  /** called with INSTANCE <name> <MASTER|BACKUP|FAULT|STOP> <priority> appended */
  any?: string[];
}

export interface VrrpInstanceConfig {
  name: string;
  initialState: 'MASTER' | 'BACKUP';
  interface: string;
  vrid: number;
  priority: number; // 1..255 (255: address owner)
  advertInt: number; // seconds (v2: whole seconds; v3: centisecond steps, 0.01..40.95)
  version: VrrpVersion;
  auth?: { type: 'PASS'; pass: string }; // v2 only; pass truncated to 8 characters as keepalived does
  vips: VirtualAddress[];
  unicastSrcIp?: string;
  unicastPeers: string[];
  nopreempt: boolean;
  preemptDelay: number; // seconds
  trackScripts: TrackScriptRef[];
  trackInterfaces: TrackInterfaceRef[];
  /** the instance's own interface going down puts it in FAULT (keepalived: unless dont_track_primary) */
  trackPrimary: boolean;
  notify: NotifyScripts;
  garpMasterDelay: number;
  garpMasterRepeat: number;
  garpMasterRefresh: number;
  garpMasterRefreshRepeat: number;
  where: Where;
}

export interface VrrpdConfig {
  file: string;
  global: GlobalDefs;
  scripts: Record<string, VrrpScriptConfig>;
  instances: VrrpInstanceConfig[];
  warnings: ConfigMessage[];
  /** keywords keepalived would not know where they stand: ignored, and `-t` fails, as with keepalived */
  unknowns: ConfigMessage[];
}

// ---------------------------------------------------------------------------------------------
// Tokens and statements

interface Token extends Where {
  text: string;
  quoted: boolean;
}

export interface Statement extends Where {
  keyword: string;
  args: Token[];
  block?: Statement[];
}

const COMMAND_WORDS: WordRules = { comments: false, controlEscapes: false, space: (c) => /\s/.test(c), strictQuotes: false };

/** keepalived-style command-line splitting: whitespace separates, '...' and "..." group, \ escapes. */
export function splitCommand(s: string): string[] {
  return splitWords(s, COMMAND_WORDS);
}

function tokenizeLine(line: string, file: string, lineNo: number, errors: ConfigMessage[]): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '#' || c === '!') break;
    if (c === '{' || c === '}') {
      out.push({ text: c, quoted: false, file, line: lineNo });
      i++;
      continue;
    }
    if (c === '"') {
      const end = line.indexOf('"', i + 1);
      if (end < 0) {
        errors.push({ file, line: lineNo, message: 'unterminated quoted string' });
        return out;
      }
      out.push({ text: line.slice(i + 1, end), quoted: true, file, line: lineNo });
      i = end + 1;
      continue;
    }
    let j = i;
    while (j < line.length && !/[\s{}]/.test(line[j])) j++;
    out.push({ text: line.slice(i, j), quoted: false, file, line: lineNo });
    i = j;
  }
  return out;
}

function globFiles(pattern: string): string[] {
  if (!/[*?[]/.test(basename(pattern))) return [pattern];
  const dir = dirname(pattern);
  const re = new RegExp(
    '^' +
      basename(pattern)
        .replace(/[.+^${}()|\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$',
  );
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => re.test(n))
    .sort()
    .map((n) => join(dir, n))
    .filter((p) => statSync(p).isFile());
}

/** Reads a file (following `include`) into statements. */
export function parseStatements(file: string, errors: ConfigMessage[], text?: string, depth = 0): Statement[] {
  let src: string;
  if (text !== undefined) src = text;
  else {
    try {
      src = readFileSync(file, 'utf8');
    } catch (e) {
      errors.push({ file, line: 0, message: `cannot read: ${(e as Error).message}` });
      return [];
    }
  }
  // one line of tokens at a time, so that a statement ends at the end of its line
  const lines = src.split(/\r?\n/).map((l, i) => tokenizeLine(l, file, i + 1, errors));
  let li = 0;
  let ti = 0;
  const peek = (): Token | undefined => {
    while (li < lines.length && ti >= lines[li].length) {
      li++;
      ti = 0;
    }
    return li < lines.length ? lines[li][ti] : undefined;
  };
  const atLineEnd = () => li >= lines.length || ti >= lines[li].length;

  const parseBlock = (opener: Token | null): Statement[] => {
    const out: Statement[] = [];
    for (;;) {
      const t = peek();
      if (!t) {
        if (opener) errors.push({ file: opener.file, line: opener.line, message: "'{' is never closed" });
        return out;
      }
      if (t.text === '}' && !t.quoted) {
        ti++;
        if (!opener) errors.push({ file: t.file, line: t.line, message: "unexpected '}'" });
        else return out;
        continue;
      }
      if (t.text === '{' && !t.quoted) {
        ti++;
        errors.push({ file: t.file, line: t.line, message: "unexpected '{'" });
        parseBlock(t);
        continue;
      }
      ti++;
      const st: Statement = { keyword: t.text, args: [], file: t.file, line: t.line };
      while (!atLineEnd()) {
        const a = lines[li][ti];
        if (!a.quoted && (a.text === '{' || a.text === '}')) break;
        st.args.push(a);
        ti++;
      }
      const next = atLineEnd() ? peek() : lines[li][ti];
      if (next && next.text === '{' && !next.quoted) {
        ti++;
        st.block = parseBlock(next);
      }
      if (st.keyword === 'include' && !t.quoted) {
        if (depth > 8) {
          errors.push({ file: st.file, line: st.line, message: 'include nested too deeply' });
          continue;
        }
        if (st.args.length !== 1) {
          errors.push({ file: st.file, line: st.line, message: 'include expects one file name or pattern' });
          continue;
        }
        const pat = isAbsolute(st.args[0].text) ? st.args[0].text : resolve(dirname(file), st.args[0].text);
        const matched = globFiles(pat);
        if (matched.length === 0 && !/[*?[]/.test(basename(pat)))
          errors.push({ file: st.file, line: st.line, message: `include: no such file ${pat}` });
        for (const f of matched) out.push(...parseStatements(f, errors, undefined, depth + 1));
        continue;
      }
      out.push(st);
    }
  };
  return parseBlock(null);
}

// ---------------------------------------------------------------------------------------------
// Interpretation

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export const isIPv4 = (s: string): boolean => IPV4.test(s);

/** keepalived global_defs keywords about features this daemon does not have: accepted, warned about. */
const IGNORED_GLOBAL = new Set([
  'notification_email',
  'notification_email_from',
  'smtp_server',
  'smtp_connect_timeout',
  'smtp_helo_name',
  'lvs_sync_daemon',
  'vrrp_skip_check_adv_addr',
  'vrrp_strict',
  'vrrp_garp_interval',
  'vrrp_gna_interval',
  'vrrp_mcast_group4',
  'max_auto_priority',
  'dynamic_interfaces',
]);
const IGNORED_INSTANCE = new Set(['smtp_alert']);

// Where a keyword keepalived does not know in one place does belong: said with its "Unknown keyword".
const ELSEWHERE: Record<string, string> = {
  'vrrp_instance/vrrp_version': "in a vrrp_instance the keyword is 'version'; vrrp_version belongs in global_defs",
  'global_defs/version': "in global_defs the keyword is 'vrrp_version'",
  'vrrp_instance/router_id': 'router_id belongs in global_defs',
  'global_defs/priority': 'priority belongs in a vrrp_instance',
  'vrrp_script/priority': 'a vrrp_script changes the priority with weight',
  'vrrp_instance/interval': 'interval belongs in a vrrp_script; an instance has advert_int',
  'global_defs/preempt': 'preempt belongs in a vrrp_instance',
};

class Ctx {
  errors: ConfigMessage[] = [];
  warnings: ConfigMessage[] = [];
  /** keywords keepalived does not know where they are: it says "Unknown keyword" and ignores them (and -t fails) */
  unknowns: ConfigMessage[] = [];
  unknown(st: Statement, scope: string | null): void {
    let where = ELSEWHERE[`${scope?.split(' ')[0] ?? ''}/${st.keyword}`];
    if (!where && scope === 'global_defs' && GARP_KEYWORDS[st.keyword]) where = `in global_defs the keyword is 'vrrp_${st.keyword}'`;
    if (!where && scope?.startsWith('vrrp_instance') && st.keyword.startsWith('vrrp_') && GARP_KEYWORDS[st.keyword.slice(5)])
      where = `in a vrrp_instance the keyword is '${st.keyword.slice(5)}'`;
    this.unknowns.push({
      file: st.file,
      line: st.line,
      message: `Unknown keyword '${st.keyword}'${scope ? ` in ${scope}` : ''}${where ? ` (${where})` : ''}: ignored, as keepalived ignores it`,
    });
  }
  err(w: Where, message: string): void {
    this.errors.push({ file: w.file, line: w.line, message });
  }
  warn(w: Where, message: string): void {
    this.warnings.push({ file: w.file, line: w.line, message });
  }
  /** exactly n arguments, no block */
  args(st: Statement, n: number): string[] | null {
    if (st.block) this.err(st, `${st.keyword} takes no block`);
    if (st.args.length !== n) {
      this.err(st, `${st.keyword} expects ${n === 0 ? 'no argument' : n === 1 ? 'one argument' : `${n} arguments`}`);
      return null;
    }
    return st.args.map((a) => a.text);
  }
  num(st: Statement, min: number, max: number, integer = true): number | undefined {
    const a = this.args(st, 1);
    if (!a) return undefined;
    const v = Number(a[0]);
    if (!/^-?\d+(\.\d+)?$/.test(a[0]) || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
      this.err(st, `${st.keyword}: '${a[0]}' is not ${integer ? 'an integer' : 'a number'} in ${min}..${max}`);
      return undefined;
    }
    return v;
  }
  /** one number into target[key] (see num) */
  numInto<T extends object>(st: Statement, target: T, key: keyof T & string, min: number, max: number, integer = true): void {
    const v = this.num(st, min, max, integer);
    if (v !== undefined) (target as Record<string, unknown>)[key] = v;
  }
  block(st: Statement): Statement[] {
    if (!st.block) {
      this.err(st, `${st.keyword} expects a { } block`);
      return [];
    }
    return st.block;
  }
  /** a command line given as one quoted string or as the rest of the line */
  command(st: Statement): string[] | undefined {
    if (st.block) this.err(st, `${st.keyword} takes no block`);
    if (st.args.length === 0) {
      this.err(st, `${st.keyword} expects a command`);
      return undefined;
    }
    const argv = st.args.length === 1 ? splitCommand(st.args[0].text) : st.args.map((a) => a.text);
    if (argv.length === 0 || argv[0] === '') {
      this.err(st, `${st.keyword}: empty command`);
      return undefined;
    }
    return argv;
  }
}

/** The gratuitous ARP settings, in global_defs (vrrp_garp_*, the defaults) and in an instance (garp_*). */
type GarpSettings = Pick<GlobalDefs, 'garpMasterDelay' | 'garpMasterRepeat' | 'garpMasterRefresh' | 'garpMasterRefreshRepeat'>;

/** Keywords that take one number: the field they set, its range, and whether it must be an integer (default). */
type NumberKeywords<T> = Record<string, [keyof T & string, number, number, boolean?]>;

const GARP_KEYWORDS: NumberKeywords<GarpSettings> = {
  garp_master_delay: ['garpMasterDelay', 0, 3600],
  garp_master_repeat: ['garpMasterRepeat', 0, 1000],
  garp_master_refresh: ['garpMasterRefresh', 0, 86400],
  garp_master_refresh_repeat: ['garpMasterRefreshRepeat', 1, 1000],
};

const SCRIPT_NUMBERS: NumberKeywords<VrrpScriptConfig> = {
  interval: ['interval', 0.01, 86400, false],
  rise: ['rise', 1, 1000],
  fall: ['fall', 1, 1000],
};
const INSTANCE_NUMBERS: NumberKeywords<Partial<VrrpInstanceConfig>> = {
  virtual_router_id: ['vrid', 1, 255],
  priority: ['priority', 1, 255],
};

/** A statement `name N` of `table` into `target`; false when `name` is not in the table. */
function numberKeyword<T extends object>(c: Ctx, st: Statement, name: string, table: NumberKeywords<T>, target: T): boolean {
  const spec = table[name];
  if (!spec) return false;
  c.numInto(st, target, spec[0], spec[1], spec[2], spec[3] ?? true);
  return true;
}

function parseGlobal(c: Ctx, block: Statement[], g: GlobalDefs): void {
  for (const st of block) {
    switch (st.keyword) {
      case 'router_id': {
        const a = c.args(st, 1);
        if (a) g.routerId = a[0];
        break;
      }
      case 'vrrp_version': {
        const v = c.num(st, 2, 3);
        if (v !== undefined) g.vrrpVersion = v as VrrpVersion;
        break;
      }
      case 'script_user': {
        if (st.args.length < 1 || st.args.length > 2) c.err(st, 'script_user expects a user and an optional group');
        else g.scriptUser = { user: st.args[0].text, group: st.args[1]?.text };
        break;
      }
      case 'enable_script_security':
        if (c.args(st, 0)) g.enableScriptSecurity = true;
        break;
      default:
        if (st.keyword.startsWith('vrrp_') && numberKeyword(c, st, st.keyword.slice(5), GARP_KEYWORDS, g)) break;
        if (IGNORED_GLOBAL.has(st.keyword)) c.warn(st, `global_defs ${st.keyword} is not supported by hasetup-vrrpd and is ignored`);
        else c.unknown(st, 'global_defs');
    }
  }
}

function parseScript(c: Ctx, st: Statement): VrrpScriptConfig | undefined {
  if (st.args.length !== 1) {
    c.err(st, 'vrrp_script expects a name');
    return undefined;
  }
  const s: VrrpScriptConfig = {
    name: st.args[0].text,
    argv: [],
    interval: 1,
    timeout: 0,
    weight: 0,
    rise: 1,
    fall: 1,
    initFail: false,
    where: { file: st.file, line: st.line },
  };
  let timeoutSet = false;
  for (const k of c.block(st)) {
    switch (k.keyword) {
      case 'script': {
        const argv = c.command(k);
        if (argv) s.argv = argv;
        break;
      }
      case 'timeout': {
        const v = c.num(k, 0.01, 86400, false);
        if (v !== undefined) {
          s.timeout = v;
          timeoutSet = true;
        }
        break;
      }
      case 'weight': {
        if (k.args.length === 2 && k.args[1].text === 'reverse') c.err(k, 'weight ... reverse is not supported');
        const v = c.num(k, -253, 253);
        if (v !== undefined) s.weight = v;
        break;
      }
      case 'init_fail':
        if (c.args(k, 0)) s.initFail = true;
        break;
      default:
        if (!numberKeyword(c, k, k.keyword, SCRIPT_NUMBERS, s)) c.unknown(k, 'vrrp_script');
    }
  }
  if (s.argv.length === 0) c.err(st, `vrrp_script ${s.name} has no script`);
  if (!timeoutSet) s.timeout = s.interval;
  return s;
}

function parseVip(c: Ctx, st: Statement, iface: string, excluded: boolean): VirtualAddress | undefined {
  if (st.block) c.err(st, 'a virtual address takes no block');
  const m = /^([\d.]+)(?:\/(\d{1,2}))?$/.exec(st.keyword);
  if (!m || !isIPv4(m[1]) || (m[2] !== undefined && Number(m[2]) > 32)) {
    c.err(st, `'${st.keyword}' is not an IPv4 address (A.B.C.D or A.B.C.D/NN)`);
    return undefined;
  }
  const v: VirtualAddress = { address: m[1], prefix: m[2] === undefined ? 32 : Number(m[2]), dev: iface, excluded };
  const a = st.args.map((t) => t.text);
  for (let i = 0; i < a.length; i += 2) {
    const val = a[i + 1];
    if (val === undefined) {
      c.err(st, `virtual address option '${a[i]}' needs a value`);
      break;
    }
    switch (a[i]) {
      case 'dev':
        v.dev = val;
        break;
      case 'label':
        v.label = val;
        break;
      case 'brd':
      case 'broadcast':
        if (!isIPv4(val)) c.err(st, `broadcast '${val}' is not an IPv4 address`);
        v.broadcast = val;
        break;
      case 'scope':
        if (!/^(global|site|link|host|\d+)$/.test(val)) c.err(st, `unknown scope '${val}'`);
        v.scope = val;
        break;
      default:
        c.err(st, `unknown virtual address option '${a[i]}' (supported: dev, label, brd, scope)`);
    }
  }
  return v;
}

/** The entries of a track_script or track_interface block: a name and an optional `weight N`. */
function trackEntries(c: Ctx, k: Statement): { st: Statement; weight?: number }[] {
  return c.block(k).map((a) => {
    let weight: number | undefined;
    if (a.block) c.err(a, `${k.keyword} entries take no block`);
    if (a.args.length === 2 && a.args[0].text === 'weight') {
      const w = Number(a.args[1].text);
      if (!/^-?\d+$/.test(a.args[1].text) || w < -253 || w > 253) c.err(a, `weight '${a.args[1].text}' is not an integer in -253..253`);
      else weight = w;
    } else if (a.args.length > 0) c.err(a, `${k.keyword} ${a.keyword}: expected 'weight N' or nothing`);
    return { st: a, weight };
  });
}

function parseInstance(c: Ctx, st: Statement, g: GlobalDefs): VrrpInstanceConfig | undefined {
  if (st.args.length !== 1) {
    c.err(st, 'vrrp_instance expects a name');
    return undefined;
  }
  const name = st.args[0].text;
  const inst: Partial<VrrpInstanceConfig> & { name: string } = { name };
  let version: VrrpVersion | undefined;
  let advertInt: { v: number; at: Statement } | undefined;
  let iface: string | undefined;
  const vipStmts: { st: Statement; excluded: boolean }[] = [];
  let authType: string | undefined;
  let authPass: string | undefined;
  let authAt: Statement | undefined;
  const notify: NotifyScripts = {};
  const trackScripts: TrackScriptRef[] = [];
  const trackInterfaces: TrackInterfaceRef[] = [];
  const peers: string[] = [];
  let nopreempt = false;
  let trackPrimary = true;
  const garp: GarpSettings = {
    garpMasterDelay: g.garpMasterDelay,
    garpMasterRepeat: g.garpMasterRepeat,
    garpMasterRefresh: g.garpMasterRefresh,
    garpMasterRefreshRepeat: g.garpMasterRefreshRepeat,
  };

  for (const k of c.block(st)) {
    switch (k.keyword) {
      case 'state': {
        const a = c.args(k, 1);
        if (a) {
          if (a[0] !== 'MASTER' && a[0] !== 'BACKUP') c.err(k, `state must be MASTER or BACKUP, not '${a[0]}'`);
          else inst.initialState = a[0];
        }
        break;
      }
      case 'interface': {
        const a = c.args(k, 1);
        if (a) {
          if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(a[0])) c.err(k, `'${a[0]}' is not an interface name`);
          iface = a[0];
        }
        break;
      }
      case 'advert_int': {
        const v = c.num(k, 0.01, 255, false);
        if (v !== undefined) advertInt = { v, at: k };
        break;
      }
      case 'version': {
        const v = c.num(k, 2, 3);
        if (v !== undefined) version = v as VrrpVersion;
        break;
      }
      case 'authentication':
        authAt = k;
        for (const a of c.block(k)) {
          if (a.keyword === 'auth_type') {
            const x = c.args(a, 1);
            if (x) {
              if (x[0] === 'AH') c.err(a, 'auth_type AH is not supported (use PASS, or none)');
              else if (x[0] !== 'PASS') c.err(a, `unknown auth_type '${x[0]}' (PASS)`);
              authType = x[0];
            }
          } else if (a.keyword === 'auth_pass') {
            const x = c.args(a, 1);
            if (x) {
              if (x[0].length > 8) c.warn(a, 'auth_pass is longer than 8 characters: only the first 8 are used');
              authPass = x[0].slice(0, 8);
            }
          } else c.unknown(a, 'authentication');
        }
        break;
      case 'virtual_ipaddress':
      case 'virtual_ipaddress_excluded':
        for (const a of c.block(k)) vipStmts.push({ st: a, excluded: k.keyword === 'virtual_ipaddress_excluded' });
        break;
      case 'unicast_src_ip': {
        const a = c.args(k, 1);
        if (a) {
          if (!isIPv4(a[0])) c.err(k, `unicast_src_ip '${a[0]}' is not an IPv4 address`);
          else inst.unicastSrcIp = a[0];
        }
        break;
      }
      case 'unicast_peer':
        for (const a of c.block(k)) {
          if (a.args.length > 0 || a.block) c.err(a, 'unicast_peer entries are plain addresses (options are not supported)');
          if (!isIPv4(a.keyword)) c.err(a, `unicast peer '${a.keyword}' is not an IPv4 address`);
          else peers.push(a.keyword);
        }
        break;
      case 'nopreempt':
        if (c.args(k, 0)) nopreempt = true;
        break;
      case 'preempt':
        if (c.args(k, 0)) nopreempt = false;
        break;
      case 'preempt_delay':
        c.numInto(k, inst, 'preemptDelay', 0, 1000, false);
        break;
      case 'dont_track_primary':
        if (c.args(k, 0)) trackPrimary = false;
        break;
      case 'track_script':
        for (const a of trackEntries(c, k))
          trackScripts.push({ name: a.st.keyword, weight: a.weight, where: { file: a.st.file, line: a.st.line } });
        break;
      case 'track_interface':
        for (const a of trackEntries(c, k)) trackInterfaces.push({ name: a.st.keyword, weight: a.weight ?? 0 });
        break;
      case 'notify_master':
      case 'notify_backup':
      case 'notify_fault':
      case 'notify_stop':
      case 'notify': {
        const argv = c.command(k);
        if (argv) {
          const key = k.keyword === 'notify' ? 'any' : (k.keyword.slice('notify_'.length) as keyof NotifyScripts);
          notify[key] = argv;
        }
        break;
      }
      default:
        if (numberKeyword(c, k, k.keyword, GARP_KEYWORDS, garp) || numberKeyword(c, k, k.keyword, INSTANCE_NUMBERS, inst)) break;
        if (IGNORED_INSTANCE.has(k.keyword)) c.warn(k, `${k.keyword} is not supported by hasetup-vrrpd and is ignored`);
        else c.unknown(k, `vrrp_instance ${name}`);
    }
  }

  const where = { file: st.file, line: st.line };
  const has = (kw: string) => (st.block ?? []).some((k) => k.keyword === kw);
  if (!has('interface')) c.err(st, `vrrp_instance ${name}: interface is required`);
  if (!has('virtual_router_id')) c.err(st, `vrrp_instance ${name}: virtual_router_id is required`);
  const ver = version ?? g.vrrpVersion;
  let adv = 1;
  if (advertInt) {
    adv = advertInt.v;
    if (ver === 2 && (!Number.isInteger(adv) || adv < 1))
      c.err(advertInt.at, `advert_int ${adv}: VRRPv2 needs whole seconds (1..255); use vrrp_version 3 for sub-second intervals`);
    if (ver === 3) {
      if (adv > 40.95) c.err(advertInt.at, `advert_int ${adv}: VRRPv3 allows at most 40.95 s`);
      if (Math.abs(Math.round(adv * 100) - adv * 100) > 1e-6)
        c.err(advertInt.at, `advert_int ${adv}: VRRPv3 intervals are whole centiseconds`);
      adv = Math.round(adv * 100) / 100;
    }
  }
  const priority = inst.priority ?? 100;
  const initialState = inst.initialState ?? 'BACKUP';
  if (priority === 255 && initialState !== 'MASTER')
    c.warn(st, `vrrp_instance ${name}: priority 255 (address owner) with state BACKUP: it becomes master at once`);
  let preemptDelay = inst.preemptDelay ?? 0;
  // as keepalived: preemption settings make no sense for an instance that starts as MASTER
  if (initialState === 'MASTER' || priority === 255) {
    const why = priority === 255 ? 'priority 255 (address owner)' : 'state MASTER';
    if (nopreempt) c.warn(st, `vrrp_instance ${name}: nopreempt does not work with ${why}: ignored`);
    if (preemptDelay) c.warn(st, `vrrp_instance ${name}: preempt_delay does not work with ${why}: ignored`);
    nopreempt = false;
    preemptDelay = 0;
  }
  let auth: VrrpInstanceConfig['auth'];
  if (authAt) {
    if (authType === undefined) c.err(authAt, 'authentication needs auth_type');
    if (authPass === undefined) c.err(authAt, 'authentication needs auth_pass');
    if (ver === 3) c.warn(authAt, 'VRRPv3 has no authentication (RFC 5798): authentication is ignored');
    else if (authType === 'PASS' && authPass !== undefined) auth = { type: 'PASS', pass: authPass };
  }
  if (peers.length > 0 && !inst.unicastSrcIp)
    c.warn(st, `vrrp_instance ${name}: unicast_peer without unicast_src_ip: the interface's primary address is used`);
  if (inst.unicastSrcIp && peers.length === 0) c.err(st, `vrrp_instance ${name}: unicast_src_ip needs unicast_peer { }`);
  const vips: VirtualAddress[] = [];
  for (const v of vipStmts) {
    const a = parseVip(c, v.st, iface ?? '', v.excluded);
    if (a) vips.push(a);
  }
  if (vips.filter((v) => !v.excluded).length > 255) c.err(st, `vrrp_instance ${name}: at most 255 virtual addresses in an advert`);
  if (vips.length === 0) c.warn(st, `vrrp_instance ${name}: no virtual_ipaddress`);
  if (c.errors.length > 0 && (!iface || inst.vrid === undefined)) return undefined;
  return {
    name,
    initialState,
    interface: iface ?? '',
    vrid: inst.vrid ?? 0,
    priority,
    advertInt: adv,
    version: ver,
    auth,
    vips,
    unicastSrcIp: inst.unicastSrcIp,
    unicastPeers: peers,
    nopreempt,
    preemptDelay,
    trackScripts,
    trackInterfaces,
    trackPrimary,
    notify,
    ...garp,
    where,
  };
}

/** Parses keepalived.conf text (file is used for messages and relative includes). Throws ConfigError. */
export function parseConfig(file: string, text?: string): VrrpdConfig {
  const c = new Ctx();
  const stmts = parseStatements(file, c.errors, text);
  const global: GlobalDefs = {
    vrrpVersion: 2,
    enableScriptSecurity: false,
    garpMasterDelay: 5,
    garpMasterRepeat: 5,
    garpMasterRefresh: 0,
    garpMasterRefreshRepeat: 1,
  };
  // global_defs first: vrrp_version there applies to every instance wherever it is written
  for (const st of stmts) if (st.keyword === 'global_defs') parseGlobal(c, c.block(st), global);
  const scripts: Record<string, VrrpScriptConfig> = {};
  const instances: VrrpInstanceConfig[] = [];
  for (const st of stmts) {
    switch (st.keyword) {
      case 'global_defs':
        if (st.args.length) c.err(st, 'global_defs takes no argument');
        break;
      case 'vrrp_script': {
        const s = parseScript(c, st);
        if (s) {
          if (scripts[s.name]) c.err(st, `vrrp_script ${s.name} is defined twice`);
          scripts[s.name] = s;
        }
        break;
      }
      case 'vrrp_instance': {
        const i = parseInstance(c, st, global);
        if (i) {
          if (instances.some((o) => o.name === i.name)) c.err(st, `vrrp_instance ${i.name} is defined twice`);
          instances.push(i);
        }
        break;
      }
      case 'vrrp_sync_group':
        c.err(st, 'vrrp_sync_group is not supported by hasetup-vrrpd');
        break;
      case 'virtual_server':
      case 'virtual_server_group':
        c.err(st, `${st.keyword} (LVS) is not supported by hasetup-vrrpd: it only does VRRP`);
        break;
      default:
        c.unknown(st, null);
    }
  }
  // cross references
  const seen = new Map<string, VrrpInstanceConfig>();
  for (const i of instances) {
    for (const t of i.trackScripts) if (!scripts[t.name]) c.err(t.where, `track_script: no vrrp_script named ${t.name}`);
    const key = `${i.interface}/${i.vrid}/${i.unicastPeers.length ? 'u' : 'm'}`;
    const other = seen.get(key);
    if (other) c.err(i.where, `vrrp_instance ${i.name}: virtual_router_id ${i.vrid} on ${i.interface} is already used by ${other.name}`);
    seen.set(key, i);
    if (i.priority === 255 && i.trackScripts.some((t) => (t.weight ?? scripts[t.name]?.weight ?? 0) !== 0))
      c.warn(i.where, `vrrp_instance ${i.name}: weights do not change the priority of an address owner (255)`);
  }
  if (instances.length === 0 && c.errors.length === 0) c.warn({ file, line: 0 }, 'no vrrp_instance');
  if (c.errors.length) throw new ConfigError(c.errors);
  return { file, global, scripts, instances, warnings: c.warnings, unknowns: c.unknowns };
}
