// The figures of the cluster's concurrency chain and its arithmetic on numbers (roles/sizing.ts
// applies them to each host's facts and explains the result), and the part of the chain that can be
// checked before any host is contacted: the inventory's fixed numbers against each other.
import type { InventoryIssue, PathSegment, YamlSource } from './errors.ts';

export const CAPACITY = {
  /** Resident memory of one PHP-FPM child (MB): the figure to change for a heavier application. */
  phpPerChildMb: 40,
  /** The share of a web node's memory, after the reserve, given to PHP (the rest: Apache's threads). */
  phpShare: 0.5,
  /** A pool never has fewer children (one may be recycling after pm.max_requests). */
  phpMinChildren: 2,
  /** A pool of more children than this keeps one out of the LBs' reach: its status page, an operator's request. */
  dynamicMarginFrom: 4,
  /** Apache workers kept per LB for its health checks. */
  workersPerLb: 2,
  /** ... and for the operator (server-status, a curl by hand). */
  workersSpare: 1,
  /** ... and for static files in flight beside the dynamic requests (idle keep-alive holds none: event MPM). */
  staticHeadroom: 10,
  /** MariaDB connections one dynamic request holds (the application opens one per request). */
  dbConnectionsPerRequest: 1,
  /** MariaDB connections each replica's replication thread holds on the primary. */
  dbPerReplica: 1,
  /** MariaDB connections kept for the administrators, the roles' own SQL, monitoring. */
  dbAdminReserve: 10,
  /** MariaDB's own default max_connections: "auto" never goes below it. */
  dbFloor: 151,
  /** An LB's memory per session (both sides' buffers of 16 KiB, TLS state, the session), and its reserve. */
  lbSessionKb: 64,
  lbReserveMb: 128,
  lbMinMaxconn: 256,
} as const;

/**
 * The LBs that serve at once. One VIP held by one LB at a time (VRRP): the other only takes over, so
 * each LB may send a node all of its concurrency. With N LBs serving together, each gets 1/N of it.
 */
export function servingLbs(_lbs: number): number {
  return 1;
}

/** The workers of a node's pool kept out of the LBs' reach (its status page, an operator). */
export const dynamicMargin = (children: number): number => (children > CAPACITY.dynamicMarginFrom ? 1 : 0);

/** Each LB's per-server maxconn for a node running `dynamic` requests at once. */
export function serverMaxconn(dynamic: number, margin: number, serving: number): number {
  return Math.max(1, Math.floor((dynamic - margin) / Math.max(1, serving)));
}

/** What Apache must have beside a pool of `children`: health checks per LB, the operator, static files. */
export function apacheHeadroom(lbs: number): number {
  return CAPACITY.workersPerLb * lbs + CAPACITY.workersSpare + CAPACITY.staticHeadroom;
}

/** The connections MariaDB must accept: the web tier's (`dynamic` per node with a pool), replication, admins. */
export function dbRequired(dynamicPerNode: number[], replicas: number): number {
  const web = dynamicPerNode.reduce((n, d) => n + d * CAPACITY.dbConnectionsPerRequest, 0);
  return web + replicas * CAPACITY.dbPerReplica + CAPACITY.dbAdminReserve;
}

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => v !== null && typeof v === 'object' && !Array.isArray(v);
const fixedInt = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) ? v : null);

/**
 * The inventory's fixed numbers against the chain, before any host is contacted:
 *  - roles.app.php.max_children (or, when auto, the pool's floor) + Apache's headroom above a fixed
 *    roles.apache.workers;
 *  - a fixed roles.mysql.max_connections below what the web tier opens at the least (fixed pools, or
 *    each node's floor when auto) + replication + admins. With pools sized from memory, the run
 *    checks the real total once every host's facts are in, before any change (roles/sizing.ts).
 */
export function capacityChecks(src: YamlSource): InventoryIssue[] {
  const d = src.data;
  if (!isObj(d) || !isObj(d.roles)) return [];
  const roles = d.roles;
  const hosts = isObj(d.hosts) ? d.hosts : {};
  const count = (g: string) => (Array.isArray(hosts[g]) ? hosts[g].length : 0);
  const webs = count('web');
  const lbs = count('lb');
  const replicas = Math.max(0, count('db') - 1);
  const app = isObj(roles.app) ? roles.app : {};
  const php = app.php === false ? false : isObj(app.php) ? app.php : {};
  const childrenSet = php === false ? null : fixedInt(php.max_children);
  // the least a pool may have: the inventory's number, or the floor of the sizing from memory
  const children = php === false ? 0 : (childrenSet ?? CAPACITY.phpMinChildren);
  const out: InventoryIssue[] = [];

  const workers = isObj(roles.apache) ? fixedInt(roles.apache.workers) : null;
  if (php !== false && workers !== null && webs > 0) {
    const needed = children + apacheHeadroom(lbs);
    if (workers < needed) {
      const why = `${childrenSet === null ? `the pool's floor of ${children} children` : `${children} PHP-FPM children`} + ${CAPACITY.workersPerLb} per LB x ${lbs} for the health checks + ${CAPACITY.workersSpare} for the operator + ${CAPACITY.staticHeadroom} for static files`;
      if (childrenSet !== null)
        out.push(
          src.issue(
            ['roles', 'app', 'php', 'max_children'],
            `${childrenSet} children need ${needed} Apache workers (${why}), above roles.apache.workers ${workers} (line ${src.at(['roles', 'apache', 'workers']).line}): lower max_children or raise workers`,
          ),
        );
      else
        out.push(
          src.issue(
            ['roles', 'apache', 'workers'],
            `${workers} is below the ${needed} workers a web node needs (${why}): raise it, or set it to auto`,
          ),
        );
    }
  }

  const mysql = isObj(roles.mysql) ? roles.mysql : {};
  const set = fixedInt(mysql.max_connections);
  if (set !== null) {
    const web = Array.from({ length: webs }, () => children);
    const required = dbRequired(web, replicas);
    if (set < required) {
      const at: PathSegment[] = ['roles', 'mysql', 'max_connections'];
      const webWhy =
        php === false
          ? 'no PHP on the web nodes'
          : childrenSet === null
            ? `${webs} web nodes x at least ${children} PHP-FPM children, the floor of the pools sized from memory, x ${CAPACITY.dbConnectionsPerRequest} connection`
            : `${webs} web nodes x ${children} PHP-FPM children (roles.app.php.max_children, line ${src.at(['roles', 'app', 'php', 'max_children']).line}) x ${CAPACITY.dbConnectionsPerRequest} connection`;
      out.push(
        src.issue(
          at,
          `${set} is below the ${required} connections the cluster may open at once (${webWhy} + ${replicas} for replication + ${CAPACITY.dbAdminReserve} for the admins): MariaDB would refuse the rest with "Too many connections"; raise it, or set it to auto`,
        ),
      );
    }
  }
  return out;
}
