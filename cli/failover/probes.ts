// What the failover test reads from the hosts, and the watchers' scripts: the proxies' view of the
// web nodes (the runtime API, either runtime), the VIP's appearance on an LB (ip monitor), the
// gratuitous ARPs the controller sees, and the database through the application's account.
import type { Inventory } from '../../inventory/types.ts';
import { shq } from '../engine/shell.ts';
import { parseShowStat, type ServerView } from '../status/probe.ts';
import { holdsVip, STATS_SOCKET } from '../../roles/lb.ts';

export { holdsVip, parseShowStat, type ServerView };

export const showStat = `echo 'show stat' | timeout 5 socat -t5 - UNIX-CONNECT:${STATS_SOCKET}`;

/** A watcher line per 100 ms: "S server=STATUS:sessions:queued ..." for the web backend. */
export const serverWatch = `while :; do printf 'S'; ${showStat} | awk -F, '$1 == "web" && $2 != "BACKEND" && $2 != "FRONTEND" {printf " %s=%s:%s:%s", $2, $18, $5, $3}'; echo; sleep 0.1; done`;

export interface ServerSample {
  status: string;
  sessions: number;
  queued: number;
}

/** One serverWatch line into server -> state. */
export function parseServerLine(text: string): Map<string, ServerSample> | null {
  if (!text.startsWith('S')) return null;
  const out = new Map<string, ServerSample>();
  for (const f of text.slice(1).trim().split(/\s+/).filter(Boolean)) {
    const [name, rest = ''] = f.split('=');
    const [status = '', sessions = '0', queued = '0'] = rest.split(':');
    out.set(name, { status, sessions: Number(sessions) || 0, queued: Number(queued) || 0 });
  }
  return out;
}

/** The VIP added to or removed from an interface of this host, as `ip monitor` reports it. */
export const vipWatch = (inv: Inventory) => `ip -o monitor address | grep --line-buffered -F ' ${inv.vip.address}/'`;

/** true: added, false: removed, null: not about the VIP. */
export function parseVipLine(text: string, inv: Inventory): boolean | null {
  if (!text.includes(` ${inv.vip.address}/`)) return null;
  return !/^Deleted /.test(text.trim());
}

/**
 * A line of `ip -ts -o monitor neigh` about the VIP: the MAC its neighbour entry now holds, and when
 * `ip` read the change, on the caller's clock (`clock` is that clock's reading when `wall`, Date.now(),
 * was taken; `ip` prints local time, which Date.parse reads as local time too). A line without the
 * stamp is timed at `clock`. null: not about the VIP, or no MAC (an entry deleted or failed).
 */
export function parseNeighbourLine(line: string, vip: string, wall: number, clock: number): { t: number; mac: string } | null {
  const m = /^(?:\[([\d-]+T[\d:.]+)\]\s+)?(\S+) .*\blladdr (\S+)/.exec(line);
  if (!m || m[2] !== vip) return null;
  const stamp = m[1] === undefined ? NaN : Date.parse(m[1]);
  const t = Number.isNaN(stamp) ? clock : clock - Math.max(0, wall - stamp);
  return { t, mac: m[3].toLowerCase() };
}

/** The MAC address of the interface that carries the VIP (for the gratuitous ARPs the controller sees). */
export const macOf = (inv: Inventory) => `cat /sys/class/net/${shq(inv.vip.interface)}/address`;

/**
 * SQL through the application's account, from a web node (as the application would): the password
 * goes on stdin in an option file, never on the command line.
 */
export function sqlFrom(inv: Inventory, dbAddress: string, sql: string): { script: string; stdin: string } {
  const m = inv.roles.mysql;
  const cnf = `[client]\nuser=${m.appUser}\npassword=${inv.secrets.mysqlAppPassword}\nhost=${dbAddress}\ndatabase=${m.appDatabase}\nconnect-timeout=3\n`;
  return {
    script: `f=$(mktemp); trap 'rm -f "$f"' EXIT; cat > "$f"; mariadb --defaults-extra-file="$f" -N -B -e ${shq(sql)}`,
    stdin: cnf,
  };
}
