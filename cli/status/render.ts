// The status as one table, and as JSON: who holds the VIP, each LB's VRRP state and runtime, each
// proxy's view of each web node, Apache, MariaDB and replication, the last apply on each host.
import type { Inventory } from '../../inventory/types.ts';
import type { HostReport, ServerView } from './probe.ts';
import { clusterSizing } from '../../roles/index.ts';

/** The cluster's concurrency as the roles size it from what the hosts have now (roles/sizing.ts). */
export interface SizingView {
  /** Per web node: PHP-FPM's pm.max_children (null: no PHP), Apache's MaxRequestWorkers, each LB's maxconn for it. */
  webs: { name: string; memoryMb: number; cpuCores: number; maxChildren: number | null; maxRequestWorkers: number; maxconn: number }[];
  lbs: { name: string; memoryMb: number; frontendMaxconn: number }[];
  /** MariaDB's max_connections and what the cluster may open (null: a web node did not answer). */
  mysql: { maxConnections: number; required: number; fixed: boolean } | null;
  queueTimeoutMs: number;
  lines: string[];
}

export function sizingView(inv: Inventory, hosts: HostReport[]): SizingView | undefined {
  const byName = new Map(hosts.map((h) => [h.name, h.resources]));
  try {
    const s = clusterSizing(inv, (h) => byName.get(h.name));
    return {
      webs: s.webs.map((w) => ({
        name: w.name,
        memoryMb: w.memoryMb,
        cpuCores: w.cpuCores,
        maxChildren: w.php?.maxChildren ?? null,
        maxRequestWorkers: w.apache.maxRequestWorkers,
        maxconn: w.maxconn,
      })),
      lbs: s.lbs.map((l) => ({ name: l.name, memoryMb: l.memoryMb, frontendMaxconn: l.maxconn })),
      mysql: s.mysql && { maxConnections: s.mysql.maxConnections, required: s.mysql.required, fixed: s.mysql.fixed },
      queueTimeoutMs: s.queueTimeoutMs,
      lines: s.lines,
    };
  } catch {
    // a fixed number contradicting the chain: apply refuses it and says why
    return undefined;
  }
}

export interface StatusReport {
  vip: { address: string; holders: string[] };
  /** HTTPS on the VIP (roles.proxy.tls): the certificate the LBs are given. */
  https?: { port: number; redirect: boolean; names: string[]; notAfter: string; daysLeft: number; generated: boolean };
  hosts: HostReport[];
  /** The cluster's concurrency chain from the hosts' memory and CPUs. */
  sizing?: SizingView;
  /** One line per problem seen (the exit status is 1 when there is any). */
  problems: string[];
}

/** A server's state as the proxies say it: UP, DOWN, DRAIN, MAINT (a transition such as "UP 1/2" as it is). */
export function serverState(s: ServerView): string {
  const st = s.status.trim();
  if (/^MAINT/.test(st)) return 'MAINT';
  if (st === 'DRAIN' || /^NOLB/.test(st)) return 'DRAIN';
  return st || '?';
}

export function buildReport(inv: Inventory, hosts: HostReport[]): StatusReport {
  const holders = hosts.filter((h) => h.holdsVip).map((h) => h.name);
  const problems: string[] = [];
  for (const h of hosts) {
    if (!h.reachable) problems.push(`${h.name}: unreachable: ${h.error ?? ''}`);
    for (const [u, a] of Object.entries(h.services)) if (a !== 'active' && a !== 'reloading') problems.push(`${h.name}: ${u} is ${a}`);
    for (const s of h.servers ?? []) if (serverState(s) !== 'UP') problems.push(`${h.name}: sees ${s.server} ${s.status}`);
    if (h.db?.replication && (h.db.replication.io !== 'Yes' || h.db.replication.sql !== 'Yes'))
      problems.push(`${h.name}: replication stopped (IO ${h.db.replication.io}, SQL ${h.db.replication.sql})`);
  }
  if (holders.length === 0) problems.push(`VIP ${inv.vip.address}: on no load balancer`);
  if (holders.length > 1) problems.push(`VIP ${inv.vip.address}: on ${holders.join(' and ')} (split brain)`);
  // two masters: each hears no advert from the other (VRRP between the LBs cut), whether or not the
  // VIP shows on both yet
  const masters = hosts.filter((h) => h.vrrp?.state === 'MASTER').map((h) => h.name);
  if (masters.length > 1)
    problems.push(
      `split brain: ${masters.join(' and ')} are each VRRP MASTER (neither hears the other's adverts: VRRP between the LBs is blocked or lost)`,
    );
  const tls = inv.roles.proxy.tls;
  const report: StatusReport = { vip: { address: inv.vip.address, holders }, hosts, problems };
  const sizing = sizingView(inv, hosts);
  if (sizing?.lines.length) report.sizing = sizing;
  if (tls) {
    const daysLeft = Math.floor((Date.parse(tls.notAfter) - Date.now()) / 86_400_000);
    report.https = {
      port: tls.port,
      redirect: tls.redirect,
      names: tls.names,
      notAfter: tls.notAfter,
      daysLeft,
      generated: tls.source.kind === 'generated',
    };
    // a generated certificate is renewed by the next apply; the user's own must be replaced by the user
    if (daysLeft < 14 && tls.source.kind === 'files')
      problems.push(`HTTPS: the certificate expires in ${daysLeft} days (${tls.notAfter.slice(0, 10)}): replace ${tls.source.certificate}`);
  }
  return report;
}

function detail(h: HostReport, all: HostReport[]): string {
  if (!h.reachable) return `UNREACHABLE ${h.error ?? ''}`;
  const parts: string[] = [];
  if (h.group === 'lb') {
    if (h.vrrp)
      parts.push(
        `${h.vrrp.state} priority ${h.vrrp.priority ?? '?'}${h.vrrp.basePriority !== undefined && h.vrrp.basePriority !== h.vrrp.priority ? ` (base ${h.vrrp.basePriority})` : ''} ${h.vrrp.engine}`,
      );
    else parts.push('no VRRP daemon');
    if (h.holdsVip) parts.push('holds the VIP');
  }
  if (h.group === 'web') {
    // each proxy's view of this node
    for (const lb of all.filter((x) => x.group === 'lb' && x.servers)) {
      const s = lb.servers?.find((x) => x.server === h.name);
      parts.push(
        s ? `${lb.name}: ${s.status}${s.sessions || s.queued ? ` ${s.sessions} sess ${s.queued} queued` : ''}` : `${lb.name}: not listed`,
      );
    }
    if (h.apache) parts.push(`apache ${h.apache.busy} busy ${h.apache.idle} idle`);
  }
  if (h.group === 'db' && h.db) {
    parts.push(h.db.primary ? 'primary' : 'replica');
    if (!h.db.answers) parts.push('MariaDB does not answer');
    const r = h.db.replication;
    if (r)
      parts.push(
        r.io === 'Yes' && r.sql === 'Yes'
          ? `replicating, lag ${r.lagSeconds ?? '?'} s`
          : `replication IO ${r.io} SQL ${r.sql}${r.error ? `: ${r.error}` : ''}`,
      );
  }
  return parts.join(', ');
}

const lastApply = (h: HostReport): string =>
  h.lastApply
    ? `${h.lastApply.at.replace('T', ' ').slice(0, 19)} changed=${h.lastApply.changed}${h.lastApply.failed ? ` failed=${h.lastApply.failed}` : ''}${h.lastApply.interrupted ? ' interrupted' : ''}`
    : 'never';

export function renderTable(r: StatusReport): string {
  const rows = r.hosts.map((h) => [
    h.name,
    h.group,
    h.address,
    h.reachable
      ? Object.entries(h.services)
          .map(([u, a]) => (a === 'active' ? u : `${u}:${a}`))
          .join(' ') + (h.firewall === 'loaded' ? ' firewall' : '')
      : '-',
    detail(h, r.hosts),
    h.reachable ? lastApply(h) : '-',
  ]);
  const head = ['HOST', 'GROUP', 'ADDRESS', 'SERVICES', 'STATE', 'LAST APPLY'];
  const w = head.map((x, i) => Math.max(x.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(w[i]))).join('  ');
  const out = [line(head), ...rows.map(line)];
  const holders = r.vip.holders;
  out.push(
    holders.length === 1
      ? `VIP ${r.vip.address}: on ${holders[0]}`
      : holders.length === 0
        ? `VIP ${r.vip.address}: on no load balancer`
        : `VIP ${r.vip.address}: on ${holders.join(' and ')} (split brain)`,
  );
  if (r.https) {
    const h = r.https;
    out.push(
      `HTTPS :${h.port}${h.redirect ? ' (HTTP redirected)' : ''}: ${h.generated ? 'self-signed' : 'certificate'} for ${h.names.join(', ') || '(no DNS name)'} until ${h.notAfter.slice(0, 10)}`,
    );
  }
  if (r.sizing) out.push('concurrency (requests at once, from what the hosts have):', ...r.sizing.lines.map((l) => `  ${l}`));
  for (const p of r.problems.filter((p) => !p.startsWith('VIP '))) out.push(`! ${p}`);
  return out.join('\n') + '\n';
}
