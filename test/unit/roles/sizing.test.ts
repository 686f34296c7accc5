// The cluster's concurrency (roles/sizing.ts): each tier sized from the one behind it, and a fixed
// number that contradicts the chain refused with both numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  apacheSizing,
  CAPACITY,
  clusterSizing,
  contradictions,
  lbSizing,
  mysqlSizing,
  phpSizing,
  webSizing,
} from '../../../roles/sizing.ts';
import type { Facts } from '../../../cli/engine/facts.ts';
import type { Host, Inventory } from '../../../inventory/types.ts';
import { fixtureInventory } from '../../helpers/fixture-role.ts';

const facts = (memoryMb: number, cpuCores = 1) => ({ hostname: 'x', memoryMb, cpus: 2, cpuCores, records: {} }) as unknown as Facts;
const host = (name: string, group: Host['group']): Host => ({
  name,
  address: '10.0.0.1',
  group,
  ssh: { host: '10.0.0.1', user: 'root', port: 22, become: false, connectTimeout: 5 },
});

function cluster(webs = 2, dbs = 1, mysql: number | 'auto' = 'auto'): Inventory {
  const inv = fixtureInventory([]);
  inv.hosts = [
    host('lb01', 'lb'),
    host('lb02', 'lb'),
    ...Array.from({ length: webs }, (_, i) => host(`web0${i + 1}`, 'web')),
    ...Array.from({ length: dbs }, (_, i) => host(`db0${i + 1}`, 'db')),
  ];
  inv.roles.mysql.maxConnections = mysql;
  return inv;
}

test('sizing: a web node with PHP: the pool from its memory, Apache the pool plus headroom, each LB the pool less the margin', () => {
  const inv = cluster();
  const w = webSizing(inv.hosts[2], facts(1024), inv);
  assert.equal(w.php?.maxChildren, 9, '(1024 - 256) x 0.5 / 40');
  assert.equal(w.dynamic, 9);
  // 9 + 2 x 2 LBs + 1 + 10 = 24 -> 2 children of 25 (the floor)
  assert.equal(w.apache.maxRequestWorkers, 50);
  assert.ok(w.apache.maxRequestWorkers >= w.dynamic + 15);
  assert.equal(w.maxconn, 8, 'one child kept for the status page');
  assert.match(w.maxconnWhy, /the pool's 9 children - 1 for its status page/);
  // the lab's web node: 512 MB -> 3 children, no margin below 5
  const small = webSizing(inv.hosts[2], facts(512, 0.5), inv);
  assert.equal(small.php?.maxChildren, 3);
  assert.equal(small.maxconn, 3);
  // a big pool: Apache grows with it, in whole children of 25
  inv.roles.app.php = { maxChildren: 100 };
  const big = webSizing(inv.hosts[2], facts(512), inv);
  assert.equal(big.apache.maxRequestWorkers, 125, '100 + 15 = 115 -> 5 children of 25');
  assert.match(
    big.apache.explain,
    /the pool's 100 \+ 4 for the LBs' health checks \+ 1 for the operator \+ 10 for static files = 115, in 5 children/,
  );
});

test('sizing: a static-only web node (php: false): its concurrency is Apache, each LB lets it MaxRequestWorkers less the health checks', () => {
  const inv = cluster();
  inv.roles.app.php = false;
  const w = webSizing(inv.hosts[2], facts(512), inv);
  assert.equal(w.php, null);
  assert.equal(w.apache.maxRequestWorkers, 200, '(512 - 256) / 32 = 8 children of 25');
  assert.equal(w.dynamic, 200);
  assert.equal(w.maxconn, 200 - (2 * CAPACITY.workersPerLb + CAPACITY.workersSpare));
  assert.match(w.maxconnWhy, /MaxRequestWorkers 200 - 5 for health checks/);
  assert.equal(mysqlSizing(inv, [w]).required, CAPACITY.dbAdminReserve, 'no PHP: no connection from the web tier');
});

test('sizing: a fixed Apache caps the pool sized from memory, and a fixed pool above it is refused with both numbers', () => {
  const inv = cluster();
  inv.roles.apache.workers = 40;
  assert.equal(phpSizing(4096, 'auto', 40, 2).maxChildren, 25, '40 - 15');
  const p = phpSizing(512, 30);
  assert.throws(
    () => apacheSizing(facts(512), inv, p, 2),
    /roles\.apache\.workers 40 is below the 45 workers this node needs \(the pool's 30 \+ 4/,
  );
  inv.roles.app.php = { maxChildren: 30 };
  assert.deepEqual(
    contradictions(inv, (h) => (h.group === 'web' ? facts(512) : undefined)),
    [
      "roles.apache.workers 40 is below the 45 workers this node needs (the pool's 30 + 4 for the LBs' health checks + 1 for the operator + 10 for static files = 45)",
    ],
  );
});

test('sizing: the LB frontend maxconn from its memory, at most the global maxconn', () => {
  const inv = cluster();
  assert.equal(lbSizing(inv.hosts[0], facts(256), inv).maxconn, 2048, '(256 - 128) MB / 64 KB');
  assert.equal(lbSizing(inv.hosts[0], facts(4096), inv).maxconn, 4096, 'capped at roles.proxy.maxconn');
  assert.match(lbSizing(inv.hosts[0], facts(4096), inv).why, /capped at roles\.proxy\.maxconn 4096/);
  assert.equal(lbSizing(inv.hosts[0], facts(100), inv).maxconn, CAPACITY.lbMinMaxconn);
});

test('sizing: MariaDB max_connections from the web tier, replication and the admins', () => {
  const inv = cluster(2, 2);
  inv.roles.app.php = { maxChildren: 20 };
  const webs = inv.hosts.filter((h) => h.group === 'web').map((h) => webSizing(h, facts(512), inv));
  const auto = mysqlSizing(inv, webs);
  assert.equal(auto.required, 20 + 20 + 1 + 10);
  assert.equal(auto.maxConnections, 151, "never below MariaDB's default");
  assert.equal(auto.fixed, false);
  inv.roles.app.php = { maxChildren: 100 };
  const big = mysqlSizing(
    inv,
    inv.hosts.filter((h) => h.group === 'web').map((h) => webSizing(h, facts(512), inv)),
  );
  assert.equal(big.maxConnections, 211);
  assert.match(big.requiredWhy, /web01 100 \+ web02 100 PHP-FPM children x 1 connection \+ 1 for replication \+ 10 for the admins = 211/);

  inv.roles.mysql.maxConnections = 40;
  const low = mysqlSizing(inv, webs);
  assert.equal(low.maxConnections, 40);
  assert.match(
    low.problem ?? '',
    /^roles\.mysql\.max_connections 40 \(\/nonexistent\/inventory\.yaml\) is below the 51 connections the cluster may open at once/,
  );
  inv.roles.mysql.maxConnections = 51;
  assert.equal(mysqlSizing(inv, webs).problem, undefined);
});

test('sizing: a pool sized from memory against a fixed max_connections: the contradiction found from the facts', () => {
  const inv = cluster(2, 2, 30);
  // 4 GB web nodes: (4096 - 1024) x 0.5 / 40 = 38 children each -> 38 + 38 + 1 + 10 = 87
  const found = contradictions(inv, (h) => facts(h.group === 'web' ? 4096 : 1024));
  assert.equal(found.length, 1);
  assert.match(found[0], /max_connections 30 .* is below the 87 connections .*web01 38 \+ web02 38 PHP-FPM children/);
  assert.deepEqual(
    contradictions(inv, (h) => facts(h.group === 'web' ? 512 : 1024)),
    [],
    '3 + 3 + 1 + 10 = 17: fits',
  );
});

test('sizing: the whole cluster explained, one line per host and the database', () => {
  const inv = cluster();
  const s = clusterSizing(inv, (h) => (h.group === 'db' ? undefined : facts(h.group === 'lb' ? 512 : 512, 0.5)));
  assert.equal(s.webs.length, 2);
  assert.equal(s.lbs.length, 2);
  assert.equal(s.lines.length, 5);
  assert.deepEqual(s.totals, { dynamic: 6, maxconn: 6 });
  assert.equal(s.servingLbs, 1);
  assert.equal(s.queueTimeoutMs, 5000);
  assert.match(
    s.lines[0],
    /^web01 \(512 MB, 0\.5 CPU\): PHP-FPM pm\.max_children 3: .*; Apache MaxRequestWorkers 50: .*each LB lets 3 requests through at once \(the pool's 3 children\), the rest wait in its queue up to 5000 ms, then get a 503$/,
  );
  assert.match(
    s.lines[2],
    /^lb01 \(512 MB\): frontend maxconn 4096 \(memory 512 MB - 128 MB reserve = 384 MB \/ 64 KB per session = 6144, capped/,
  );
  assert.match(s.lines[4], /^MariaDB max_connections 151 \(auto, at least 151\): the cluster may open web01 3 \+ web02 3 PHP-FPM children/);
  // a web node without facts: no database line
  assert.equal(clusterSizing(inv, (h) => (h.name === 'web02' ? undefined : facts(512))).mysql, null);
});
