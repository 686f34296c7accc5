// keepalived.conf for hasetup-vrrpd: the subset a VRRP-only daemon needs (global_defs, vrrp_script,
// vrrp_instance), parsed with file:line errors. Unknown keywords are errors; a few keepalived
// keywords that concern features this daemon does not have (email alerts, LVS) are accepted with a
// warning so that an existing keepalived.conf can be brought over.
// As keepalived's parser: a table of keywords per block, one handler each (config-keywords.ts); the
// blocks: config-global.ts, config-script.ts, config-instance.ts; statements and includes:
// config-tokens.ts; the model: config-types.ts. Here: the top level and the cross references.
import { ConfigError, type GlobalDefs, type VrrpdConfig, type VrrpInstanceConfig, type VrrpScriptConfig } from './config-types.ts';
import { parseStatements } from './config-tokens.ts';
import { Ctx, runKeywords, type Handler, type KeywordTable } from './config-keywords.ts';
import { defaultGlobal, parseGlobal } from './config-global.ts';
import { parseScript } from './config-script.ts';
import { parseInstance } from './config-instance.ts';

export * from './config-types.ts';
export { parseStatements, splitCommand, type Statement } from './config-tokens.ts';
export { isIPv4 } from './config-keywords.ts';

interface Top {
  global: GlobalDefs;
  scripts: Record<string, VrrpScriptConfig>;
  instances: VrrpInstanceConfig[];
}

const unsupported =
  (why: (keyword: string) => string): Handler<Top> =>
  (c, st) =>
    c.err(st, why(st.keyword));

const TOP_KEYWORDS: KeywordTable<Top> = new Map<string, Handler<Top>>([
  // read before the rest (see parseConfig): here only its form
  [
    'global_defs',
    (c, st) => {
      if (st.args.length) c.err(st, 'global_defs takes no argument');
    },
  ],
  [
    'vrrp_script',
    (c, st, top) => {
      const s = parseScript(c, st);
      if (s) {
        if (top.scripts[s.name]) c.err(st, `vrrp_script ${s.name} is defined twice`);
        top.scripts[s.name] = s;
      }
    },
  ],
  [
    'vrrp_instance',
    (c, st, top) => {
      const i = parseInstance(c, st, top.global);
      if (i) {
        if (top.instances.some((o) => o.name === i.name)) c.err(st, `vrrp_instance ${i.name} is defined twice`);
        top.instances.push(i);
      }
    },
  ],
  ['vrrp_sync_group', unsupported(() => 'vrrp_sync_group is not supported by hasetup-vrrpd')],
  ['virtual_server', unsupported((kw) => `${kw} (LVS) is not supported by hasetup-vrrpd: it only does VRRP`)],
  ['virtual_server_group', unsupported((kw) => `${kw} (LVS) is not supported by hasetup-vrrpd: it only does VRRP`)],
]);

/** Parses keepalived.conf text (file is used for messages and relative includes). Throws ConfigError. */
export function parseConfig(file: string, text?: string): VrrpdConfig {
  const c = new Ctx();
  const stmts = parseStatements(file, c.errors, text);
  const top: Top = { global: defaultGlobal(), scripts: {}, instances: [] };
  // global_defs first: vrrp_version there applies to every instance wherever it is written
  for (const st of stmts) if (st.keyword === 'global_defs') parseGlobal(c, c.block(st), top.global);
  runKeywords(c, stmts, TOP_KEYWORDS, top, null);
  const { global, scripts, instances } = top;
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
