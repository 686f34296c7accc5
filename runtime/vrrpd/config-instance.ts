// vrrp_instance: its keywords (one handler each, into the instance being read), its virtual addresses and
// tracking entries, then the checks keepalived makes when the block closes (required keywords, the advert
// interval the version allows, preemption of a master, authentication, unicast).
import type {
  GlobalDefs,
  NotifyScripts,
  TrackInterfaceRef,
  TrackScriptRef,
  VirtualAddress,
  VrrpInstanceConfig,
  VrrpVersion,
} from './config-types.ts';
import type { Statement } from './config-tokens.ts';
import {
  flag,
  GARP_KEYWORDS,
  ignoredKeywords,
  isIPv4,
  numberKeywords,
  runKeywords,
  versionKeyword,
  type Ctx,
  type GarpSettings,
  type Handler,
  type KeywordTable,
  type NumberKeywords,
} from './config-keywords.ts';

/** The instance being read: what its keywords said, checked and completed when its block closes. */
interface InstanceBuild {
  inst: Partial<VrrpInstanceConfig>;
  version?: VrrpVersion;
  advertInt?: { v: number; at: Statement };
  iface?: string;
  vipStmts: { st: Statement; excluded: boolean }[];
  auth: { type?: string; pass?: string; at?: Statement };
  notify: NotifyScripts;
  trackScripts: TrackScriptRef[];
  trackInterfaces: TrackInterfaceRef[];
  peers: string[];
  nopreempt: boolean;
  trackPrimary: boolean;
  garp: GarpSettings;
}

const INSTANCE_NUMBERS: NumberKeywords<Partial<VrrpInstanceConfig>> = {
  virtual_router_id: ['vrid', 1, 255],
  priority: ['priority', 1, 255],
};

const AUTH_KEYWORDS: KeywordTable<InstanceBuild['auth']> = new Map<string, Handler<InstanceBuild['auth']>>([
  [
    'auth_type',
    (c, a, auth) => {
      const x = c.args(a, 1);
      if (x) {
        if (x[0] === 'AH') c.err(a, 'auth_type AH is not supported (use PASS, or none)');
        else if (x[0] !== 'PASS') c.err(a, `unknown auth_type '${x[0]}' (PASS)`);
        auth.type = x[0];
      }
    },
  ],
  [
    'auth_pass',
    (c, a, auth) => {
      const x = c.args(a, 1);
      if (x) {
        if (x[0].length > 8) c.warn(a, 'auth_pass is longer than 8 characters: only the first 8 are used');
        auth.pass = x[0].slice(0, 8);
      }
    },
  ],
]);

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

const virtualAddresses =
  (excluded: boolean): Handler<InstanceBuild> =>
  (c, k, b) => {
    for (const a of c.block(k)) b.vipStmts.push({ st: a, excluded });
  };

const notifyScript =
  (key: keyof NotifyScripts): Handler<InstanceBuild> =>
  (c, k, b) => {
    const argv = c.command(k);
    if (argv) b.notify[key] = argv;
  };

const INSTANCE_KEYWORDS: KeywordTable<InstanceBuild> = new Map<string, Handler<InstanceBuild>>([
  [
    'state',
    (c, k, b) => {
      const a = c.args(k, 1);
      if (a) {
        if (a[0] !== 'MASTER' && a[0] !== 'BACKUP') c.err(k, `state must be MASTER or BACKUP, not '${a[0]}'`);
        else b.inst.initialState = a[0];
      }
    },
  ],
  [
    'interface',
    (c, k, b) => {
      const a = c.args(k, 1);
      if (a) {
        if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(a[0])) c.err(k, `'${a[0]}' is not an interface name`);
        b.iface = a[0];
      }
    },
  ],
  [
    'advert_int',
    (c, k, b) => {
      const v = c.num(k, 0.01, 255, false);
      if (v !== undefined) b.advertInt = { v, at: k };
    },
  ],
  ['version', versionKeyword((b, v) => (b.version = v))],
  [
    'authentication',
    (c, k, b) => {
      b.auth.at = k;
      runKeywords(c, c.block(k), AUTH_KEYWORDS, b.auth, 'authentication');
    },
  ],
  ['virtual_ipaddress', virtualAddresses(false)],
  ['virtual_ipaddress_excluded', virtualAddresses(true)],
  [
    'unicast_src_ip',
    (c, k, b) => {
      const a = c.args(k, 1);
      if (a) {
        if (!isIPv4(a[0])) c.err(k, `unicast_src_ip '${a[0]}' is not an IPv4 address`);
        else b.inst.unicastSrcIp = a[0];
      }
    },
  ],
  [
    'unicast_peer',
    (c, k, b) => {
      for (const a of c.block(k)) {
        if (a.args.length > 0 || a.block) c.err(a, 'unicast_peer entries are plain addresses (options are not supported)');
        if (!isIPv4(a.keyword)) c.err(a, `unicast peer '${a.keyword}' is not an IPv4 address`);
        else b.peers.push(a.keyword);
      }
    },
  ],
  ['nopreempt', flag((b) => (b.nopreempt = true))],
  ['preempt', flag((b) => (b.nopreempt = false))],
  ['preempt_delay', (c, k, b) => c.numInto(k, b.inst, 'preemptDelay', 0, 1000, false)],
  ['dont_track_primary', flag((b) => (b.trackPrimary = false))],
  [
    'track_script',
    (c, k, b) => {
      for (const a of trackEntries(c, k))
        b.trackScripts.push({ name: a.st.keyword, weight: a.weight, where: { file: a.st.file, line: a.st.line } });
    },
  ],
  [
    'track_interface',
    (c, k, b) => {
      for (const a of trackEntries(c, k)) b.trackInterfaces.push({ name: a.st.keyword, weight: a.weight ?? 0 });
    },
  ],
  ['notify_master', notifyScript('master')],
  ['notify_backup', notifyScript('backup')],
  ['notify_fault', notifyScript('fault')],
  ['notify_stop', notifyScript('stop')],
  ['notify', notifyScript('any')],
  ...numberKeywords(GARP_KEYWORDS, (b: InstanceBuild) => b.garp),
  ...numberKeywords(INSTANCE_NUMBERS, (b: InstanceBuild) => b.inst),
  ...ignoredKeywords(['smtp_alert'], (name) => name),
]);

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

/** The advert interval the instance's VRRP version allows (v2: whole seconds; v3: centiseconds up to 40.95). */
function advertInterval(c: Ctx, b: InstanceBuild, ver: VrrpVersion): number {
  if (!b.advertInt) return 1;
  let adv = b.advertInt.v;
  const at = b.advertInt.at;
  if (ver === 2 && (!Number.isInteger(adv) || adv < 1))
    c.err(at, `advert_int ${adv}: VRRPv2 needs whole seconds (1..255); use vrrp_version 3 for sub-second intervals`);
  if (ver === 3) {
    if (adv > 40.95) c.err(at, `advert_int ${adv}: VRRPv3 allows at most 40.95 s`);
    if (Math.abs(Math.round(adv * 100) - adv * 100) > 1e-6) c.err(at, `advert_int ${adv}: VRRPv3 intervals are whole centiseconds`);
    adv = Math.round(adv * 100) / 100;
  }
  return adv;
}

export function parseInstance(c: Ctx, st: Statement, g: GlobalDefs): VrrpInstanceConfig | undefined {
  if (st.args.length !== 1) {
    c.err(st, 'vrrp_instance expects a name');
    return undefined;
  }
  const name = st.args[0].text;
  const b: InstanceBuild = {
    inst: {},
    vipStmts: [],
    auth: {},
    notify: {},
    trackScripts: [],
    trackInterfaces: [],
    peers: [],
    nopreempt: false,
    trackPrimary: true,
    garp: {
      garpMasterDelay: g.garpMasterDelay,
      garpMasterRepeat: g.garpMasterRepeat,
      garpMasterRefresh: g.garpMasterRefresh,
      garpMasterRefreshRepeat: g.garpMasterRefreshRepeat,
    },
  };
  runKeywords(c, c.block(st), INSTANCE_KEYWORDS, b, `vrrp_instance ${name}`);

  // the block is closed: what keepalived checks then
  const { inst, peers } = b;
  const has = (kw: string) => (st.block ?? []).some((k) => k.keyword === kw);
  if (!has('interface')) c.err(st, `vrrp_instance ${name}: interface is required`);
  if (!has('virtual_router_id')) c.err(st, `vrrp_instance ${name}: virtual_router_id is required`);
  const ver = b.version ?? g.vrrpVersion;
  const adv = advertInterval(c, b, ver);
  const priority = inst.priority ?? 100;
  const initialState = inst.initialState ?? 'BACKUP';
  if (priority === 255 && initialState !== 'MASTER')
    c.warn(st, `vrrp_instance ${name}: priority 255 (address owner) with state BACKUP: it becomes master at once`);
  let nopreempt = b.nopreempt;
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
  if (b.auth.at) {
    if (b.auth.type === undefined) c.err(b.auth.at, 'authentication needs auth_type');
    if (b.auth.pass === undefined) c.err(b.auth.at, 'authentication needs auth_pass');
    if (ver === 3) c.warn(b.auth.at, 'VRRPv3 has no authentication (RFC 5798): authentication is ignored');
    else if (b.auth.type === 'PASS' && b.auth.pass !== undefined) auth = { type: 'PASS', pass: b.auth.pass };
  }
  if (peers.length > 0 && !inst.unicastSrcIp)
    c.warn(st, `vrrp_instance ${name}: unicast_peer without unicast_src_ip: the interface's primary address is used`);
  if (inst.unicastSrcIp && peers.length === 0) c.err(st, `vrrp_instance ${name}: unicast_src_ip needs unicast_peer { }`);
  const vips: VirtualAddress[] = [];
  for (const v of b.vipStmts) {
    const a = parseVip(c, v.st, b.iface ?? '', v.excluded);
    if (a) vips.push(a);
  }
  if (vips.filter((v) => !v.excluded).length > 255) c.err(st, `vrrp_instance ${name}: at most 255 virtual addresses in an advert`);
  if (vips.length === 0) c.warn(st, `vrrp_instance ${name}: no virtual_ipaddress`);
  if (c.errors.length > 0 && (!b.iface || inst.vrid === undefined)) return undefined;
  return {
    name,
    initialState,
    interface: b.iface ?? '',
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
    trackScripts: b.trackScripts,
    trackInterfaces: b.trackInterfaces,
    trackPrimary: b.trackPrimary,
    notify: b.notify,
    ...b.garp,
    where: { file: st.file, line: st.line },
  };
}
