// The cluster's concurrency, computed and explained in one place for every tier: what each web node
// runs at once, what each LB lets through to it, and what the database must accept. The roles render
// these numbers (app: pm.max_children; apache: MaxRequestWorkers; proxy: each server's maxconn and
// the frontend's; mysql: max_connections), `hasetup apply` prints them once, `hasetup status` shows
// them, and the capacity test reads them (clusterSizing).
//
// The chain, from the web node's real limit outwards (figures in inventory/capacity.ts):
//   dynamic      the requests a web node runs at once: its PHP-FPM pool's pm.max_children, sized from
//                the memory the node really has (its cgroup's limit, see cli/engine/facts.ts):
//                  reserve      = max(256 MB, 25% of memory)   the OS, page cache, sshd, logs, opcache
//                  for PHP      = (memory - reserve) x 1/2     the other half: Apache's threads
//                  max_children = max(2, floor(for PHP / 40 MB per child))
//                (roles.app.php.max_children overrides it). Without PHP (roles.app.php: false):
//                Apache's own workers, sized from memory (roles/apache/sizing.ts)
//   apache       MaxRequestWorkers >= dynamic + 2 per LB (health checks) + 1 (the operator) + 10
//                (static files), in whole children of 25 threads. The event MPM keeps idle keep-alive
//                connections on its listener thread, so client keep-alive holds no worker
//   maxconn      per server on each LB: dynamic less a margin (1 when the pool has more than 4
//                children: its status page), divided by the LBs that serve at once (one: the VIP is
//                on one LB at a time). A request beyond it waits in the LB's queue (`timeout queue`,
//                then a 503): the web node itself never overflows
//   frontend     each LB's own maxconn, from its memory (64 KB per session), at most the global one
//   mysql        max_connections >= sum over web nodes of dynamic x 1 connection per request
//                + 1 per replica (its replication thread) + 10 for the admins; auto: that, at least
//                MariaDB's default 151
//
// Fixed numbers that contradict the chain are refused before any host is contacted when both are
// fixed (inventory/capacity.ts), and, when one side is sized from memory, by the run once every
// host's facts are in and before any change (contradictions(), apply's preflight).
import {
  apacheHeadroom,
  CAPACITY,
  dbRequired,
  dynamicMargin,
  serverMaxconn,
  servingLbs,
  type Facts,
  type Host,
  type Inventory,
} from '../cli/engine/api.ts';
import { mpmSizing, SIZING as MPM, type MpmSizing } from './apache/sizing.ts';

export { CAPACITY };

/** What the sizing reads of a host: the memory (MB) and CPU (cores) its cgroup allows (Facts has both). */
export type HostResources = Pick<Facts, 'memoryMb' | 'cpuCores'>;

/** A web node's PHP-FPM pool: pm.max_children and FPM's dynamic numbers. */
export interface PhpSizing {
  maxChildren: number;
  startServers: number;
  minSpareServers: number;
  maxSpareServers: number;
  /** A child is replaced after this many requests (a leak in the application stays bounded). */
  maxRequests: number;
  /** One line saying where the numbers come from (written into the pool file and reported). */
  explain: string;
  /** Just the reason (without "pm.max_children N: "). */
  why: string;
}

/**
 * The pool's size for a host of `memoryMb` (what its facts say it has), or the inventory's number.
 * `apacheWorkers`, when the inventory fixes Apache's, caps what the memory would give (Apache must
 * keep its headroom beside the pool: `lbs` LBs' health checks, the operator, static files).
 */
export function phpSizing(memoryMb: number, setting: number | 'auto', apacheWorkers: number | 'auto' = 'auto', lbs = 0): PhpSizing {
  if (setting !== 'auto') {
    if (!Number.isInteger(setting) || setting < 1)
      throw new Error(`roles.app.php.max_children must be a positive integer or "auto", got ${setting}`);
    return pool(setting, `roles.app.php.max_children ${setting}`);
  }
  const mem = Math.max(0, Math.floor(memoryMb));
  const reserve = Math.max(MPM.reserveMinMb, Math.round(mem * MPM.reserveShare));
  const forPhp = Math.floor(Math.max(0, mem - reserve) * CAPACITY.phpShare);
  const byMemory = Math.floor(forPhp / CAPACITY.phpPerChildMb);
  const cap = apacheWorkers === 'auto' ? Infinity : Math.max(CAPACITY.phpMinChildren, apacheWorkers - apacheHeadroom(lbs));
  const n = Math.max(CAPACITY.phpMinChildren, Math.min(byMemory, cap));
  const why =
    `(memory ${mem} MB - reserve ${reserve} MB) x ${CAPACITY.phpShare} = ${forPhp} MB / ${CAPACITY.phpPerChildMb} MB per child = ${byMemory}` +
    (byMemory > cap ? `, capped at roles.apache.workers ${apacheWorkers} - ${apacheHeadroom(lbs)} = ${cap}` : '') +
    (byMemory < CAPACITY.phpMinChildren ? `, raised to the floor of ${CAPACITY.phpMinChildren}` : '');
  return pool(n, why);
}

function pool(n: number, why: string): PhpSizing {
  // pm = dynamic: FPM wants min_spare <= start <= max_spare <= max_children
  const minSpare = Math.min(n, 2);
  const maxSpare = Math.min(n, Math.max(minSpare, Math.min(16, Math.ceil(n / 4))));
  const start = Math.min(maxSpare, Math.max(minSpare, 4));
  return {
    maxChildren: n,
    startServers: start,
    minSpareServers: minSpare,
    maxSpareServers: maxSpare,
    maxRequests: 1000,
    explain: `pm.max_children ${n}: ${why}`,
    why,
  };
}

export interface WebSizing {
  name: string;
  memoryMb: number;
  cpuCores: number;
  /** The PHP-FPM pool, when the node runs PHP. */
  php: PhpSizing | null;
  /** Requests the node runs at once (the pool's children, or Apache's workers without PHP). */
  dynamic: number;
  apache: MpmSizing;
  /** Each LB's per-server maxconn for this node. */
  maxconn: number;
  maxconnWhy: string;
}

export interface MysqlSizing {
  /** The connections the web tier, replication and the admins may open at once. */
  required: number;
  requiredWhy: string;
  /** What the role writes: the inventory's number, or "auto" sized from `required`. */
  maxConnections: number;
  fixed: boolean;
  /** A fixed number below `required`: the problem, with both numbers. */
  problem?: string;
}

export interface LbSizing {
  name: string;
  memoryMb: number;
  maxconn: number;
  why: string;
}

const lbCount = (inv: Inventory) => inv.hosts.filter((h) => h.group === 'lb').length;

/** Apache's workers for a node whose pool runs `php.maxChildren` requests at once (or none: static only). */
export function apacheSizing(facts: HostResources, inv: Inventory, php: PhpSizing | null, lbs: number): MpmSizing {
  const workers = inv.roles.apache.workers;
  if (!php) return mpmSizing(facts.memoryMb, workers, inv.roles.proxy.maxconn);
  const headroom = apacheHeadroom(lbs);
  const needed = php.maxChildren + headroom;
  const parts = `the pool's ${php.maxChildren} + ${CAPACITY.workersPerLb * lbs} for the LBs' health checks + ${CAPACITY.workersSpare} for the operator + ${CAPACITY.staticHeadroom} for static files = ${needed}`;
  if (workers !== 'auto') {
    // also refused when the inventory is loaded (inventory/capacity.ts), with the lines
    if (workers < needed) throw new Error(`roles.apache.workers ${workers} is below the ${needed} workers this node needs (${parts})`);
    return mpmSizing(facts.memoryMb, workers, inv.roles.proxy.maxconn);
  }
  const children = Math.max(MPM.minChildren, Math.ceil(needed / MPM.threadsPerChild));
  const n = children * MPM.threadsPerChild;
  return {
    ...mpmSizing(facts.memoryMb, n, inv.roles.proxy.maxconn),
    explain: `MaxRequestWorkers ${n}: ${parts}, in ${children} children of ${MPM.threadsPerChild} threads`,
  };
}

/** A web node's pool, Apache and the per-server maxconn each LB gives it, from its facts. */
export function webSizing(host: Host, facts: HostResources, inv: Inventory): WebSizing {
  const lbs = lbCount(inv);
  const setting = inv.roles.app.php === false ? null : inv.roles.app.php.maxChildren;
  const php = setting === null ? null : phpSizing(facts.memoryMb, setting, inv.roles.apache.workers, lbs);
  const apache = apacheSizing(facts, inv, php, lbs);
  const serving = servingLbs(lbs);
  const per = serving > 1 ? `, / ${serving} LBs serving at once` : '';
  let dynamic: number;
  let margin: number;
  let maxconnWhy: string;
  if (php) {
    dynamic = php.maxChildren;
    margin = dynamicMargin(dynamic);
    maxconnWhy = `the pool's ${dynamic} children${margin ? ` - ${margin} for its status page` : ''}${per}`;
  } else {
    dynamic = apache.maxRequestWorkers;
    margin = CAPACITY.workersPerLb * lbs + CAPACITY.workersSpare;
    maxconnWhy = `MaxRequestWorkers ${dynamic} - ${margin} for health checks${per}`;
  }
  const maxconn = serverMaxconn(dynamic, margin, serving);
  return { name: host.name, memoryMb: facts.memoryMb, cpuCores: facts.cpuCores, php, dynamic, apache, maxconn, maxconnWhy };
}

/** An LB's frontend maxconn: what its memory holds, at most the global roles.proxy.maxconn. */
export function lbSizing(host: Host, facts: HostResources, inv: Inventory): LbSizing {
  const global = inv.roles.proxy.maxconn;
  const spare = Math.max(0, facts.memoryMb - CAPACITY.lbReserveMb);
  const byMemory = Math.max(CAPACITY.lbMinMaxconn, Math.floor((spare * 1024) / CAPACITY.lbSessionKb));
  const maxconn = Math.min(global, byMemory);
  return {
    name: host.name,
    memoryMb: facts.memoryMb,
    maxconn,
    why:
      `memory ${facts.memoryMb} MB - ${CAPACITY.lbReserveMb} MB reserve = ${spare} MB / ${CAPACITY.lbSessionKb} KB per session = ${byMemory}` +
      (byMemory > global ? `, capped at roles.proxy.maxconn ${global}` : ''),
  };
}

/** MariaDB's max_connections against what the web tier (sized from its facts) may open. */
export function mysqlSizing(inv: Inventory, webs: WebSizing[]): MysqlSizing {
  const replicas = Math.max(0, inv.hosts.filter((h) => h.group === 'db').length - 1);
  const withPhp = webs.filter((w) => w.php);
  const required = dbRequired(
    withPhp.map((w) => w.dynamic),
    replicas,
  );
  const requiredWhy =
    (withPhp.length
      ? `${withPhp.map((w) => `${w.name} ${w.dynamic}`).join(' + ')} PHP-FPM children x ${CAPACITY.dbConnectionsPerRequest} connection`
      : 'no PHP on the web nodes') + ` + ${replicas} for replication + ${CAPACITY.dbAdminReserve} for the admins = ${required}`;
  const set = inv.roles.mysql.maxConnections;
  if (set === 'auto') return { required, requiredWhy, maxConnections: Math.max(CAPACITY.dbFloor, required), fixed: false };
  const res: MysqlSizing = { required, requiredWhy, maxConnections: set, fixed: true };
  if (set < required)
    res.problem = `roles.mysql.max_connections ${set} (${inv.file}) is below the ${required} connections the cluster may open at once (${requiredWhy}): MariaDB would refuse the rest with "Too many connections"; raise it to ${required} or set it to auto`;
  return res;
}

/** The cluster's chain: every web node, every LB, the database, and the explanation. */
export interface ClusterSizing {
  webs: WebSizing[];
  lbs: LbSizing[];
  /** Null when a web node's facts are missing (the database's figure needs them all). */
  mysql: MysqlSizing | null;
  /** The LBs that serve at once (each server's maxconn is divided by it). */
  servingLbs: number;
  /** How long a request waits in an LB's queue for a server slot before its 503 (ms). */
  queueTimeoutMs: number;
  /** The requests the web tier runs at once, and what the LBs let through to it. */
  totals: { dynamic: number; maxconn: number };
  /** The explanation, one line per host and tier. */
  lines: string[];
}

/**
 * The cluster's concurrency for an inventory and the hosts' facts (a host without facts is left out;
 * the database's line needs every web node's). Throws when a fixed Apache number contradicts a pool.
 */
export function clusterSizing(inv: Inventory, factsOf: (h: Host) => HostResources | undefined): ClusterSizing {
  const webs: WebSizing[] = [];
  const lbs: LbSizing[] = [];
  for (const h of inv.hosts) {
    const f = factsOf(h);
    if (!f) continue;
    if (h.group === 'web') webs.push(webSizing(h, f, inv));
    if (h.group === 'lb') lbs.push(lbSizing(h, f, inv));
  }
  const allWebs = webs.length === inv.hosts.filter((h) => h.group === 'web').length;
  const mysql = allWebs ? mysqlSizing(inv, webs) : null;
  const queue = inv.roles.proxy.timeouts.queue;
  const limits = (w: WebSizing) => `${w.memoryMb} MB, ${w.cpuCores} CPU`;
  const lines = [
    ...webs.map(
      (w) =>
        `${w.name} (${limits(w)}): ${w.php ? `PHP-FPM ${w.php.explain}; ` : ''}Apache ${w.apache.explain}; ` +
        `each LB lets ${w.maxconn} requests through at once (${w.maxconnWhy}), the rest wait in its queue up to ${queue} ms, then get a 503`,
    ),
    ...lbs.map((l) => `${l.name} (${l.memoryMb} MB): frontend maxconn ${l.maxconn} (${l.why})`),
  ];
  if (mysql)
    lines.push(
      `MariaDB max_connections ${mysql.maxConnections}${mysql.fixed ? ' (from the inventory)' : ' (auto, at least 151)'}: the cluster may open ${mysql.requiredWhy}`,
    );
  return {
    webs,
    lbs,
    mysql,
    servingLbs: servingLbs(lbCount(inv)),
    queueTimeoutMs: queue,
    totals: { dynamic: webs.reduce((n, w) => n + w.dynamic, 0), maxconn: webs.reduce((n, w) => n + w.maxconn, 0) },
    lines,
  };
}

/**
 * What the hosts' facts show against the inventory's fixed numbers (none when they agree): run by
 * apply once every host's facts are in, before any change.
 */
export function contradictions(inv: Inventory, factsOf: (h: Host) => HostResources | undefined): string[] {
  try {
    const s = clusterSizing(inv, factsOf);
    return s.mysql?.problem ? [s.mysql.problem] : [];
  } catch (e) {
    return [(e as Error).message];
  }
}
