// global_defs: the keywords this daemon understands, the keepalived ones it accepts and ignores, the defaults.
import type { GlobalDefs } from './config-types.ts';
import type { Statement } from './config-tokens.ts';
import {
  flag,
  GARP_KEYWORDS,
  ignoredKeywords,
  numberKeywords,
  runKeywords,
  versionKeyword,
  type Ctx,
  type Handler,
  type KeywordTable,
} from './config-keywords.ts';

export function defaultGlobal(): GlobalDefs {
  return {
    vrrpVersion: 2,
    enableScriptSecurity: false,
    garpMasterDelay: 5,
    garpMasterRepeat: 5,
    garpMasterRefresh: 0,
    garpMasterRefreshRepeat: 1,
  };
}

/** keepalived global_defs keywords about features this daemon does not have: accepted, warned about. */
const IGNORED_GLOBAL = [
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
];

const GLOBAL_KEYWORDS: KeywordTable<GlobalDefs> = new Map<string, Handler<GlobalDefs>>([
  [
    'router_id',
    (c, st, g) => {
      const a = c.args(st, 1);
      if (a) g.routerId = a[0];
    },
  ],
  ['vrrp_version', versionKeyword((g, v) => (g.vrrpVersion = v))],
  [
    'script_user',
    (c, st, g) => {
      if (st.args.length < 1 || st.args.length > 2) c.err(st, 'script_user expects a user and an optional group');
      else g.scriptUser = { user: st.args[0].text, group: st.args[1]?.text };
    },
  ],
  ['enable_script_security', flag((g) => (g.enableScriptSecurity = true))],
  // the gratuitous ARP defaults of every instance: vrrp_garp_master_delay...
  ...numberKeywords(GARP_KEYWORDS, (g: GlobalDefs) => g, 'vrrp_'),
  ...ignoredKeywords(IGNORED_GLOBAL, (name) => `global_defs ${name}`),
]);

export function parseGlobal(c: Ctx, block: Statement[], g: GlobalDefs): void {
  runKeywords(c, block, GLOBAL_KEYWORDS, g, 'global_defs');
}
