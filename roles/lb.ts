// What the load-balancer roles (runtime, proxy, vrrp) and the commands that work on the LBs (drain,
// status, failover) share: where each runtime keeps its files, runs as and is checked with, the
// runtime API's socket, the record `hasetup drain` leaves, the one test of "this LB holds the VIP",
// and the scripts that make the LBs take their turns so that the VIP never goes dark (the VRRP backup
// first, the master once its peer serves). Commands reach roles/ through this module and the
// registry (roles/index.ts) only.
import { RECORDS_DIR, type Host, type Inventory, type Serial } from '../cli/engine/api.ts';

/** The same rendered files serve both runtimes, at the paths their packages use. */
export const PROXY_CONFIG = '/etc/haproxy/haproxy.cfg';
export const VRRP_CONFIG = '/etc/keepalived/keepalived.conf';
/** HTTPS (roles.proxy.tls): certificate, chain and key in one file, as both runtimes read it. */
export const TLS_DIR = '/etc/haproxy/tls';
export const TLS_PEM = `${TLS_DIR}/site.pem`;
/** The runtime API (both runtimes), for `hasetup status` and `hasetup drain`. */
export const STATS_SOCKET = '/run/haproxy/admin.sock';

/** Where the bundled runtime lives: a folder per version, `current` pointing at one of them. */
export const RUNTIME_DIR = '/opt/hasetup/runtime';
export const CURRENT = `${RUNTIME_DIR}/current`;

export interface LbRuntime {
  name: 'bundled' | 'haproxy';
  proxyUnit: string;
  vrrpUnit: string;
  /** Validates a proxy configuration file (%s). */
  proxyCheck: string;
  /** Validates a VRRP configuration file (%s). */
  vrrpCheck: string;
  /** The group that may read the VRRP configuration (the daemon's own). */
  vrrpGroup: string;
}

export const BUNDLED: LbRuntime = {
  name: 'bundled',
  proxyUnit: 'hasetup-proxy',
  vrrpUnit: 'hasetup-vrrpd',
  proxyCheck: `${CURRENT}/hasetup-proxy.cjs -c -q -f %s`,
  vrrpCheck: `${CURRENT}/hasetup-vrrpd.cjs -t -f %s`,
  vrrpGroup: 'hasetup',
};

/**
 * keepalived 2.2.7 (Debian 12) ends its own config test with SIGTERM (exit 143) whenever scripts run
 * as a non-root user, valid file or not (fixed upstream in 2.2.8): the test passes when keepalived
 * exits 0, or 143 having printed no complaint. setsid keeps its signal away from the caller.
 */
const KEEPALIVED_CHECK =
  'rc=0; out=$(setsid -w keepalived -l -t -f %s 2>&1) || rc=$?; out=$(echo "$out" | grep -v "^Terminated$" || true); ' +
  'if [ $rc -eq 0 ] || { [ $rc -eq 143 ] && [ -z "$out" ]; }; then true; else echo "$out"; false; fi';

export const HAPROXY: LbRuntime = {
  name: 'haproxy',
  proxyUnit: 'haproxy',
  vrrpUnit: 'keepalived',
  proxyCheck: 'haproxy -c -q -f %s',
  vrrpCheck: KEEPALIVED_CHECK,
  vrrpGroup: 'root',
};

export const runtimeOf = (inv: Inventory): LbRuntime => (inv.runtime === 'haproxy' ? HAPROXY : BUNDLED);

/**
 * What "this LB serves" means, for the VRRP tracker and the LBs' turns: the web nodes' health URL
 * through the local proxy answers, i.e. the proxy runs and has a web node UP (a proxy that answers
 * itself but whose nodes are all DOWN, after its link came back, serves nothing but 503s).
 */
/**
 * What the VRRP tracker asks: the proxy's own answer on a frontend of its own on loopback (monitor-uri,
 * `monitor fail if { nbsrv(web) lt 1 }`): 200 while it runs and has a web node UP, 503 when it has none.
 * Not the web nodes' health URL through the service frontend: under a flood that request waits in the
 * web backend's queue and gets the queue timeout's 503, and a busy master was taken for a dead one (the
 * VIP moved in the middle of a flood, cutting every connection open on it).
 */
export const MONITOR_URI = '/hasetup-serving';
export const monitorUrl = (inv: Inventory): string => `http://127.0.0.1:${inv.roles.proxy.monitorPort}${MONITOR_URI}`;

export const servingUrl = (inv: Inventory): string => `http://127.0.0.1:${inv.roles.proxy.port}${inv.roles.proxy.healthCheck.path}`;

/** sh: exits 0 once the local proxy serves (at most `seconds`). */
export function waitServing(inv: Inventory, seconds = 15): string {
  const url = servingUrl(inv);
  return `i=0; until curl -fsS -o /dev/null --max-time 1 ${url}; do i=$((i+1)); [ $i -lt ${seconds * 4} ] || { echo "the proxy does not answer ${url}"; exit 1; }; sleep 0.25; done`;
}

/**
 * One LB at a time: the host that does not hold the VIP first; the master only once its peer's
 * proxy answers (so that the VIP, if it moves, lands on an LB that serves).
 */
export function lbTurn(inv: Inventory): Serial {
  return {
    group: 'lb',
    rank: `if ${holdsVip(inv)}; then echo 1; else echo 0; fi`,
    // a peer whose proxy does not run (a new cluster) has nothing to wait for
    peerReady:
      `if systemctl is-active -q ${BUNDLED.proxyUnit}.service || systemctl is-active -q ${HAPROXY.proxyUnit}.service; then ` +
      `curl -fsS -o /dev/null --max-time 2 ${servingUrl(inv)}; fi`,
  };
}

export const isLb = (h: Host): boolean => h.group === 'lb';

/** sh: exits 0 when this host holds the VIP (on any of its interfaces). */
export const holdsVip = (inv: Inventory): string => `ip -o -4 addr show | grep -qF ' ${inv.vip.address}/'`;

/**
 * The record `hasetup drain` leaves on an LB for a web node (in the runtime's records folder, which
 * the facts read back): its name, its path, and what it holds. The proxy role keeps the state it
 * says in haproxy.cfg, so that a reload or a re-apply does not put the node back.
 */
export const DRAIN_RECORD_DIR = RECORDS_DIR;
export const drainRecordName = (web: string): string => `drain.${web}`;
export const drainRecordPath = (web: string): string => `${DRAIN_RECORD_DIR}/${drainRecordName(web)}`;
export function drainRecord(records: Record<string, string>, web: string): 'drain' | 'maint' | undefined {
  const v = records[drainRecordName(web)];
  return v === 'drain' || v === 'maint' ? v : undefined;
}

/**
 * The command (for a unit's ExecStopPost) that takes the VIP off this LB: run by systemd after every
 * end of the VRRP daemon, SIGKILL and the OOM killer included, so that a dead daemon leaves no VIP
 * behind (this host's kernel would answer the clients' new connections with resets until the peer
 * takes over, instead of letting them retry onto the new master). Absent already is fine (`-`).
 */
export const vipRelease = (inv: Inventory): string => `/sbin/ip -4 addr del ${inv.vip.address}/${inv.vip.prefix} dev ${inv.vip.interface}`;

/** keepalived's unit as Debian ships it, completed by a drop-in of hasetup's (runtime: haproxy). */
export const KEEPALIVED_DROPIN = '/etc/systemd/system/keepalived.service.d/hasetup.conf';
