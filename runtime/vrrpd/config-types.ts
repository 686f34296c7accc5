// The model a keepalived.conf is read into (config.ts), and the error that lists every bad line.
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
