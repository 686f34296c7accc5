// The machinery of keepalived's keyword tables, as its parser has it: each block (global_defs, vrrp_script,
// vrrp_instance, authentication...) has a table of keywords, one handler each, that writes into the object
// the block builds; a keyword not in the table is "unknown" (said, ignored, and `-t` fails). The context
// (Ctx) collects errors, warnings and unknowns with their file and line, and reads the common argument shapes.
import type { ConfigMessage, GlobalDefs, VrrpVersion, Where } from './config-types.ts';
import { splitCommand, type Statement } from './config-tokens.ts';

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export const isIPv4 = (s: string): boolean => IPV4.test(s);

/** One keyword's handler: reads the statement, writes into the block's object `target`. */
export type Handler<T> = (c: Ctx, st: Statement, target: T) => void;
/** A block's keywords. A Map, so that no name ("constructor"...) finds something it was not given. */
export type KeywordTable<T> = ReadonlyMap<string, Handler<T>>;

/** Every statement of `block` through its keyword's handler; `scope` names the block in "Unknown keyword". */
export function runKeywords<T>(c: Ctx, block: Statement[], table: KeywordTable<T>, target: T, scope: string | null): void {
  for (const st of block) {
    const handler = table.get(st.keyword);
    if (handler) handler(c, st, target);
    else c.unknown(st, scope);
  }
}

/** A keyword without argument that sets something. */
export const flag =
  <T>(set: (target: T) => void): Handler<T> =>
  (c, st, target) => {
    if (c.args(st, 0)) set(target);
  };

/** The VRRP version (2 or 3): vrrp_version in global_defs, version in an instance. */
export const versionKeyword =
  <T>(set: (target: T, version: VrrpVersion) => void): Handler<T> =>
  (c, st, target) => {
    const v = c.num(st, 2, 3);
    if (v !== undefined) set(target, v as VrrpVersion);
  };

/** Keywords of features this daemon does not have: accepted with a warning (`what` says it). */
export function ignoredKeywords(names: string[], what: (keyword: string) => string): [string, Handler<unknown>][] {
  return names.map((name) => [name, (c, st) => c.warn(st, `${what(name)} is not supported by hasetup-vrrpd and is ignored`)]);
}

/** Keywords that take one number: the field they set, its range, and whether it must be an integer (default). */
export type NumberKeywords<T> = Record<string, [keyof T & string, number, number, boolean?]>;

/** The handlers of a NumberKeywords table, the keyword prefixed with `prefix`; `pick` finds the object to write. */
export function numberKeywords<T extends object, S = T>(
  table: NumberKeywords<T>,
  pick: (target: S) => T,
  prefix = '',
): [string, Handler<S>][] {
  return Object.entries(table).map(([name, [key, min, max, integer]]) => [
    prefix + name,
    (c, st, target) => c.numInto(st, pick(target), key, min, max, integer ?? true),
  ]);
}

/** The gratuitous ARP settings, in global_defs (vrrp_garp_*, the defaults) and in an instance (garp_*). */
export type GarpSettings = Pick<GlobalDefs, 'garpMasterDelay' | 'garpMasterRepeat' | 'garpMasterRefresh' | 'garpMasterRefreshRepeat'>;

export const GARP_KEYWORDS: NumberKeywords<GarpSettings> = {
  garp_master_delay: ['garpMasterDelay', 0, 3600],
  garp_master_repeat: ['garpMasterRepeat', 0, 1000],
  garp_master_refresh: ['garpMasterRefresh', 0, 86400],
  garp_master_refresh_repeat: ['garpMasterRefreshRepeat', 1, 1000],
};
const isGarp = (name: string): boolean => Object.hasOwn(GARP_KEYWORDS, name);

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

export class Ctx {
  errors: ConfigMessage[] = [];
  warnings: ConfigMessage[] = [];
  /** keywords keepalived does not know where they are: it says "Unknown keyword" and ignores them (and -t fails) */
  unknowns: ConfigMessage[] = [];
  unknown(st: Statement, scope: string | null): void {
    const elsewhere = `${scope?.split(' ')[0] ?? ''}/${st.keyword}`;
    let where = Object.hasOwn(ELSEWHERE, elsewhere) ? ELSEWHERE[elsewhere] : undefined;
    if (!where && scope === 'global_defs' && isGarp(st.keyword)) where = `in global_defs the keyword is 'vrrp_${st.keyword}'`;
    if (!where && scope?.startsWith('vrrp_instance') && st.keyword.startsWith('vrrp_') && isGarp(st.keyword.slice(5)))
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
