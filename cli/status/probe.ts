// What `hasetup status` asks each host, in one round trip, and how the answer is read: the services
// its roles run; on an LB the VIP, the VRRP state (hasetup-vrrpd's status file, or keepalived's data
// dump) and the proxy's view of every web node (`show stat` on the runtime API, either runtime); on a
// web node Apache's workers; on a DB host MariaDB and its replication; and the last apply recorded.
import type { Host, Inventory } from '../../inventory/types.ts';
import { parseResources, RESOURCE_SCRIPTS, splitSections, type Facts } from '../engine/facts.ts';
import { shq } from '../engine/shell.ts';
import { LAST_APPLY } from '../engine/runner.ts';
import { STATS_SOCKET } from '../../roles/lb.ts';

export interface VrrpView {
  engine: 'bundled' | 'haproxy';
  state: string;
  priority?: number;
  basePriority?: number;
}

export interface ServerView {
  backend: string;
  server: string;
  /** UP, DOWN, DRAIN (also: UP with weight 0), MAINT, or a transition such as "UP 1/2". */
  status: string;
  sessions: number;
  queued: number;
  check?: string;
}

export interface HostReport {
  name: string;
  group: Host['group'];
  address: string;
  reachable: boolean;
  error?: string;
  /** systemd unit -> ActiveState, for the units the host's roles run. */
  services: Record<string, string>;
  firewall?: 'loaded' | 'none';
  lastApply?: { at: string; ok: number; changed: number; failed: number; interrupted?: boolean };
  /** The memory (MB) and CPU (cores) the host may use: its RAM and CPUs, or its cgroup's limits. */
  resources?: Pick<Facts, 'memoryMb' | 'cpus' | 'cpuCores' | 'limits'>;
  // lb
  holdsVip?: boolean;
  vrrp?: VrrpView;
  servers?: ServerView[];
  // web
  apache?: { busy: number; idle: number };
  // db
  db?: { primary: boolean; answers: boolean; replication?: { io: string; sql: string; lagSeconds: number | null; error?: string } };
}

/** The one script a host runs for the status. */
export function statusScript(h: Host, units: string[], mark: string): string {
  const s = (name: string, cmd: string) => `echo ${mark}${name}\n{ ${cmd}\n} 2>/dev/null`;
  const parts = [
    s('svc', `systemctl show -p Id,ActiveState -- ${units.map((u) => shq(`${u}.service`)).join(' ')}`),
    s('fw', `nft list table inet hasetup | grep -o 'hasetup:[0-9a-f]*' | head -n1`),
    s('last', `cat ${LAST_APPLY}`),
    s('mem', RESOURCE_SCRIPTS.mem),
    s('cpus', RESOURCE_SCRIPTS.cpus),
    s('limits', RESOURCE_SCRIPTS.limits),
  ];
  if (h.group === 'lb') {
    parts.push(
      s('addr', 'ip -j -4 addr show'),
      // the bundled daemon's status file; keepalived writes its state to /tmp/keepalived.data on SIGUSR1
      s(
        'vrrp',
        `if [ -s /run/hasetup-vrrpd/status.json ] && systemctl is-active -q hasetup-vrrpd; then echo bundled; cat /run/hasetup-vrrpd/status.json; ` +
          `elif systemctl is-active -q keepalived && [ -s /run/keepalived.pid ]; then echo haproxy; rm -f /tmp/keepalived.data; kill -USR1 "$(cat /run/keepalived.pid)"; ` +
          `i=0; until [ -s /tmp/keepalived.data ] || [ $i -ge 20 ]; do sleep 0.05; i=$((i+1)); done; sleep 0.05; cat /tmp/keepalived.data; fi`,
      ),
      s('stat', `[ -S ${STATS_SOCKET} ] && echo 'show stat' | timeout 5 socat -t5 - UNIX-CONNECT:${STATS_SOCKET}`),
    );
  }
  if (h.group === 'web') parts.push(s('apache', `curl -s --max-time 2 'http://127.0.0.1/server-status?auto'`));
  if (h.group === 'db')
    parts.push(s('db', `mariadb -N -B -e 'SELECT 1' && echo answers`), h.primary ? '' : s('repl', `mariadb -e 'SHOW REPLICA STATUS\\G'`));
  return parts.filter(Boolean).join('\n');
}

/** `show stat` CSV (HAProxy's, and hasetup-proxy's: same header) into the servers' rows. */
export function parseShowStat(csv: string): ServerView[] {
  const lines = csv.split('\n').filter((l) => l.trim());
  const header = lines.find((l) => l.startsWith('# '));
  if (!header) return [];
  const cols = header.slice(2).split(',');
  const at = (f: string[], name: string) => f[cols.indexOf(name)] ?? '';
  const out: ServerView[] = [];
  for (const l of lines) {
    if (l.startsWith('#')) continue;
    const f = l.split(',');
    const sv = at(f, 'svname');
    if (sv === 'FRONTEND' || sv === 'BACKEND' || !sv) continue;
    // drained in the configuration (weight 0, as `hasetup drain` leaves it across reloads): DRAIN, as
    // the runtime API's drain shows it
    const status = at(f, 'weight') === '0' && /^UP/.test(at(f, 'status')) ? 'DRAIN' : at(f, 'status');
    const row: ServerView = {
      backend: at(f, 'pxname'),
      server: sv,
      status,
      sessions: Number(at(f, 'scur')) || 0,
      queued: Number(at(f, 'qcur')) || 0,
    };
    const check = at(f, 'check_status');
    if (check) row.check = check.replace(/^\*/, '');
    out.push(row);
  }
  return out;
}

/** keepalived's /tmp/keepalived.data: the first instance's state and priorities. */
export function parseKeepalivedData(text: string): Omit<VrrpView, 'engine'> | null {
  const state = /^\s*State = (\S+)/m.exec(text)?.[1];
  if (!state) return null;
  const num = (re: RegExp) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : undefined;
  };
  return { state, priority: num(/^\s*Effective priority = (\d+)/m), basePriority: num(/^\s*Priority = (\d+)/m) };
}

/** The answer of statusScript into a report. */
export function parseStatus(h: Host, inv: Inventory, out: string, mark: string): HostReport {
  const sec = splitSections(out, mark);
  const r: HostReport = { name: h.name, group: h.group, address: h.address, reachable: true, services: {} };
  for (const block of (sec.svc ?? '').split(/\n\s*\n/)) {
    const id = /^Id=(.*)$/m.exec(block)?.[1];
    const active = /^ActiveState=(.*)$/m.exec(block)?.[1];
    if (id && active) r.services[id.replace(/\.service$/, '')] = active;
  }
  r.firewall = (sec.fw ?? '').trim() ? 'loaded' : 'none';
  try {
    if ((sec.last ?? '').trim()) r.lastApply = JSON.parse(sec.last);
  } catch {}
  if (h.group === 'lb') {
    try {
      const links = JSON.parse(sec.addr || '[]') as { addr_info?: { local: string }[] }[];
      r.holdsVip = links.some((l) => (l.addr_info ?? []).some((a) => a.local === inv.vip.address));
    } catch {
      r.holdsVip = false;
    }
    const [engine, ...rest] = (sec.vrrp ?? '').split('\n');
    const body = rest.join('\n');
    if (engine === 'bundled') {
      try {
        const st = JSON.parse(body) as { instances?: { state: string; priority: number; basePriority: number }[] };
        const i = st.instances?.[0];
        if (i) r.vrrp = { engine: 'bundled', state: i.state, priority: i.priority, basePriority: i.basePriority };
      } catch {}
    } else if (engine === 'haproxy') {
      const k = parseKeepalivedData(body);
      if (k) r.vrrp = { engine: 'haproxy', ...k };
    }
    r.servers = parseShowStat(sec.stat ?? '');
  }
  if ((sec.mem ?? '').trim()) r.resources = parseResources(sec.mem, sec.cpus ?? '', sec.limits ?? '');
  if (h.group === 'web') {
    const busy = /^BusyWorkers: (\d+)/m.exec(sec.apache ?? '');
    const idle = /^IdleWorkers: (\d+)/m.exec(sec.apache ?? '');
    if (busy && idle) r.apache = { busy: Number(busy[1]), idle: Number(idle[1]) };
  }
  if (h.group === 'db') {
    r.db = { primary: !!h.primary, answers: /answers/.test(sec.db ?? '') };
    if (!h.primary) {
      const field = (k: string) => new RegExp(`^\\s*${k}: ?(.*)$`, 'm').exec(sec.repl ?? '')?.[1]?.trim() ?? '';
      const lag = field('Seconds_Behind_Master');
      r.db.replication = {
        io: field('Slave_IO_Running') || 'No',
        sql: field('Slave_SQL_Running') || 'No',
        lagSeconds: lag === '' || lag === 'NULL' ? null : Number(lag),
      };
      const err = field('Last_IO_Error') || field('Last_SQL_Error');
      if (err) r.db.replication.error = err;
    }
  }
  return r;
}
